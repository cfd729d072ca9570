"""Where the real-speech correlation is lost between the model's prediction and the rendered mouth.

    python bench/mouthladder.py [--weights PATH] [--clips NAME,...]

`train/articulation.py` reports the model's prediction on whole held-out clips (r_gap 0.38 with
the weights of 2026-12-02); `bench/realspeech.py` measures the rendered output of the same
clips (0.29). This walks the steps in between, on the benchmark's own cut (each held-out clip
split into halves; video A dubbed with B's speech and the other way round; truth = the clip's
own mouth in the speech half), and prints Pearson r (gap, width; lag 0; mean over clips of the
two directions' mean) after each step:

  1. whole clip: the prediction on the whole clip's audio, scored per half (as the
     training script scores it, but over the benchmark's halves);
  2. half audio: the prediction from the speech half's audio alone (what the engine hears);
  3. speech track: `mouth.speech_track` (light smoothing, z-scoring over the utterance);
  4. target: `SpeakerMouth.target` of the video half's face (its speaking range, pauses
     closed, the width added to the video half's own slowly varying width);
     4w: the same width target without the video half's slow width (articulation only);
  5. target against the measuring landmarker's truth (the non-refined face mesh the benchmark
     measures with) instead of the engine's landmarker's;
  6. with --render (the shipped model; as long as bench/realspeech.py, ~8 min quiet): the
     engine's output, measured as the benchmark measures it, against the truth (the
     benchmark's figure); 6e the same with the engine's own landmarker on output and truth;
  7. the rendered output against the target it was asked to draw (step 4), measured with
     the measuring landmarker and (7e) with the engine's: how faithfully the renderer, and
     the measuring of a rendered mouth, carry the target;
  8. what the output shows beyond the target (its residual after the best linear fit on the
     target, engine's landmarker) against the source video's own mouth in that frame: the
     source's mouth showing through; 8f that source mouth against the truth (the floor).
The steps' tracks use the clip's landmarks (`train/footage.py`, the landmarker the engine
tracks with), not the engine's smoothed canonical track: step 4 is close to, not identical
with, what the engine draws.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "train"))
sys.path.insert(0, str(ROOT / "bench"))

import footage  # noqa: E402

from chamelaion.engine import lipsync, media  # noqa: E402
from chamelaion.engine.geometry import GAP, WIDTH, mouth_params  # noqa: E402
from chamelaion.engine.mouth import ARTICULATION_GAIN, speaker_mouth, speech_track  # noqa: E402
from chamelaion.engine.mouthmodel import MouthModel, get_model, load_model  # noqa: E402
from realspeech import measure_video, open_source, pearson, write_half  # noqa: E402

STEPS = ("1 whole clip", "2 half audio", "3 speech track", "4 target", "4w target, no slow width",
         "5 target vs measuring truth")  # fmt: skip
RENDER_STEPS = ("6 rendered vs truth (bench)", "6e rendered vs truth, engine lm",
                "7 rendered vs target", "7e rendered vs target, engine lm",
                "8 residual vs source mouth", "8f source mouth vs truth")  # fmt: skip
SAMPLE_RATE = media.ANALYSIS_SAMPLE_RATE


def leftover(got: NDArray[np.float64], target: NDArray[np.float64]) -> NDArray[np.float64]:
    """`got` less its best linear fit on `target` (NaN where either is)."""
    good = np.isfinite(got) & np.isfinite(target)
    out = np.full(len(got), np.nan)
    slope, intercept = np.polyfit(target[good], got[good], 1)
    out[good] = got[good] - (slope * target[good] + intercept)
    return out


def clip_ladder(
    clip: footage.Clip, model: MouthModel, render: bool
) -> dict[str, tuple[float, float]]:
    """Per step, (r_gap, r_width) averaged over the clip's two directions. Halves as the
    benchmark cuts them (`realspeech.open_source`, frames that really decode)."""
    data = footage.load(clip)
    cut = open_source(clip.path, None)
    measured_landmarks = measure_video(clip.path, cut.fps, cut.frames)
    cut = cut.decoded(min(len(measured_landmarks), data.frames))
    half = cut.half
    fps = data.fps
    params = mouth_params(data.landmarks)
    measured = mouth_params(measured_landmarks)
    whole = model.predict(data.audio, fps, data.frames)
    rows: dict[str, list[tuple[float, float]]] = {step: [] for step in STEPS + RENDER_STEPS}
    folder = Path(tempfile.mkdtemp(prefix="chamelaion-ladder-"))
    halves = [write_half(cut, k, folder) for k in (0, 1)] if render else []
    for video in (0, 1):
        speech = 1 - video
        frames = slice(speech * half, (speech + 1) * half)
        audio = data.audio[
            round(frames.start / fps * SAMPLE_RATE) : round(frames.stop / fps * SAMPLE_RATE)
        ]
        truth, truth_measured = params[frames], measured[frames]
        source = params[video * half : (video + 1) * half]
        found = np.isfinite(source[:, GAP])
        mouth = speaker_mouth(np.nan_to_num(source), found, fps, speaks=True)
        track = speech_track(audio, fps, half, model)
        targets = np.array(
            [mouth.target(track.shape[i], bool(track.closed[i]), i) for i in range(half)]
        )
        articulation = mouth.width_scale * ARTICULATION_GAIN * track.shape[:, WIDTH]

        def score(
            gap: NDArray[Any], width: NDArray[Any], against: NDArray[Any] = truth
        ) -> tuple[float, float]:
            return pearson(gap, against[:, GAP]), pearson(width, against[:, WIDTH])

        half_only = model.predict(audio, fps, half)
        rows[STEPS[0]].append(score(whole[frames, GAP], whole[frames, WIDTH]))
        rows[STEPS[1]].append(score(half_only[:, GAP], half_only[:, WIDTH]))
        rows[STEPS[2]].append(score(track.shape[:, GAP], track.shape[:, WIDTH]))
        rows[STEPS[3]].append(score(targets[:, 0], targets[:, 1]))
        rows[STEPS[4]].append(score(targets[:, 0], articulation))
        rows[STEPS[5]].append(score(targets[:, 0], targets[:, 1], truth_measured))
        if render:
            out = folder / f"{video}_with_{speech}.mp4"
            lipsync(halves[video][0], halves[speech][1], out)
            seen = mouth_params(measure_video(out, cut.fps, half))
            seen_engine = mouth_params(footage.extract_landmarks(out, cut.fps))[:half]

            def rendered(got: NDArray[Any], against: NDArray[Any]) -> tuple[float, float]:
                n = min(len(got), len(against))
                return pearson(got[:n, GAP], against[:n, GAP]), pearson(
                    got[:n, WIDTH], against[:n, WIDTH]
                )

            rows[RENDER_STEPS[0]].append(rendered(seen, truth_measured))
            rows[RENDER_STEPS[1]].append(rendered(seen_engine, truth))
            rows[RENDER_STEPS[2]].append(rendered(seen, targets))
            rows[RENDER_STEPS[3]].append(rendered(seen_engine, targets))
            residual = np.stack(
                [leftover(seen_engine[:, k], targets[: len(seen_engine), k]) for k in (GAP, WIDTH)],
                axis=1,
            )
            rows[RENDER_STEPS[4]].append(rendered(residual, source))
            rows[RENDER_STEPS[5]].append(rendered(source, truth))
    shutil.rmtree(folder)
    rows = {step: rs for step, rs in rows.items() if rs}
    means = {step: np.nanmean(np.array(rs), axis=0) for step, rs in rows.items()}
    return {step: (float(m[0]), float(m[1])) for step, m in means.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None, help="default: the shipped model")
    parser.add_argument("--clips", default="", help="comma-separated names (default: held out)")
    parser.add_argument("--render", action="store_true", help="also run the engine (steps 6-7)")
    args = parser.parse_args()
    if args.render and args.weights:
        raise SystemExit("--render runs the engine, which uses the shipped model: no --weights")
    model: MouthModel = load_model(args.weights) if args.weights else get_model()
    names = [n.strip() for n in args.clips.split(",") if n.strip()]
    clips = [footage.by_name(n) for n in names] if names else footage.held_out_clips()
    per_clip: dict[str, dict[str, tuple[float, float]]] = {}
    for clip in clips:
        per_clip[clip.name] = clip_ladder(clip, model, args.render)
        print(f"measured {clip.name}", flush=True)

    def show(r: tuple[float, float]) -> str:
        return f"{r[0]:6.2f} {r[1]:6.2f}"

    print(f"\nweights: {args.weights or 'shipped'}; r (gap width) at lag 0, held-out halves")
    print(f"{'step':32s} {'mean':>13s}   " + "  ".join(f"{n[:12]:>13s}" for n in per_clip))
    for step in per_clip[next(iter(per_clip))]:
        m = np.nanmean([per_clip[n][step] for n in per_clip], axis=0)
        mean = (float(m[0]), float(m[1]))
        cells = "  ".join(show(per_clip[n][step]) for n in per_clip)
        print(f"{step:32s} {show(mean)}   {cells}")


if __name__ == "__main__":
    main()
