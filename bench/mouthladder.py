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
  6. the rendered output: not rendered here (bench/realspeech.py does, ~8 min); compare with
     its figures. The steps' tracks use the clip's landmarks (`train/footage.py`, the
     landmarker the engine tracks with), not the engine's smoothed canonical track: step 4 is
     close to, not identical with, what the engine draws.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "train"))
sys.path.insert(0, str(ROOT / "bench"))

import footage  # noqa: E402

from chamelaion.engine import media  # noqa: E402
from chamelaion.engine.geometry import GAP, WIDTH, mouth_params  # noqa: E402
from chamelaion.engine.mouth import ARTICULATION_GAIN, speaker_mouth, speech_track  # noqa: E402
from chamelaion.engine.mouthmodel import MouthModel, get_model, load_model  # noqa: E402
from realspeech import measure_video  # noqa: E402

STEPS = ("1 whole clip", "2 half audio", "3 speech track", "4 target", "4w target, no slow width",
         "5 target vs measuring truth")  # fmt: skip
SAMPLE_RATE = media.ANALYSIS_SAMPLE_RATE


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    good = np.isfinite(a) & np.isfinite(b)
    if good.sum() < 3 or np.std(a[good]) == 0 or np.std(b[good]) == 0:
        return float("nan")
    return float(np.corrcoef(a[good], b[good])[0, 1])


def clip_ladder(clip: footage.Clip, model: MouthModel) -> dict[str, tuple[float, float]]:
    """Per step, (r_gap, r_width) averaged over the clip's two directions."""
    data = footage.load(clip)
    half = data.frames // 2
    fps = data.fps
    params = mouth_params(data.landmarks)
    measured = mouth_params(measure_video(clip.path, media.probe(clip.path).fps, 2 * half))
    whole = model.predict(data.audio, fps, data.frames)
    rows: dict[str, list[tuple[float, float]]] = {step: [] for step in STEPS}
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
            gap: np.ndarray, width: np.ndarray, against: np.ndarray = truth
        ) -> tuple[float, float]:
            return pearson(gap, against[:, GAP]), pearson(width, against[:, WIDTH])

        half_only = model.predict(audio, fps, half)
        rows[STEPS[0]].append(score(whole[frames, GAP], whole[frames, WIDTH]))
        rows[STEPS[1]].append(score(half_only[:, GAP], half_only[:, WIDTH]))
        rows[STEPS[2]].append(score(track.shape[:, GAP], track.shape[:, WIDTH]))
        rows[STEPS[3]].append(score(targets[:, 0], targets[:, 1]))
        rows[STEPS[4]].append(score(targets[:, 0], articulation))
        rows[STEPS[5]].append(score(targets[:, 0], targets[:, 1], truth_measured))
    means = {step: np.nanmean(np.array(rs), axis=0) for step, rs in rows.items()}
    return {step: (float(m[0]), float(m[1])) for step, m in means.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None, help="default: the shipped model")
    parser.add_argument("--clips", default="", help="comma-separated names (default: held out)")
    args = parser.parse_args()
    model: MouthModel = load_model(args.weights) if args.weights else get_model()
    names = [n.strip() for n in args.clips.split(",") if n.strip()]
    clips = [footage.by_name(n) for n in names] if names else footage.held_out_clips()
    per_clip: dict[str, dict[str, tuple[float, float]]] = {}
    for clip in clips:
        per_clip[clip.name] = clip_ladder(clip, model)
        print(f"measured {clip.name}", flush=True)

    def show(r: tuple[float, float]) -> str:
        return f"{r[0]:6.2f} {r[1]:6.2f}"

    print(f"\nweights: {args.weights or 'shipped'}; r (gap width) at lag 0, held-out halves")
    print(f"{'step':32s} {'mean':>13s}   " + "  ".join(f"{n[:12]:>13s}" for n in per_clip))
    for step in STEPS:
        m = np.nanmean([per_clip[n][step] for n in per_clip], axis=0)
        mean = (float(m[0]), float(m[1]))
        cells = "  ".join(show(per_clip[n][step]) for n in per_clip)
        print(f"{step:32s} {show(mean)}   {cells}")


if __name__ == "__main__":
    main()
