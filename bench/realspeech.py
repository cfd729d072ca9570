"""Real-speech benchmark: does the output mouth say the words of real speech?

    python bench/realspeech.py [--seconds N] [--clips NAME,...] [--model NAME] [--json PATH]

Cross-reconstruction on held-out real talking heads (`train/footage.py`: speakers never trained
on). Each clip, cut to `--seconds` if given, is split into halves A and B of equal frame counts.
The engine gets video A (A's frames with A's own sound track, as a dubbing input has one) and
B's speech as the new audio, and the other way round. For that speech the true mouth is known:
the clip's own frames of the other half. Output and truth are measured per frame with a
landmarker the engine does not render with (mediapipe's face mesh without refined landmarks,
face_landmark.tflite, not the engine's attention model), so the figures are not the engine
grading its own landmarks.

Figures per clip and direction (Pearson r between output and true mouth at lag 0): the
inner-lip gap and the mouth's width (`geometry.mouth_params`, eye-span units) and the first
three PCA coefficients of the pose-normalised lip shape, the PCA fitted on the true mouth;
the best r within +-2 frames is reported beside, never used for a verdict, and so is the r at
the clip's own timing: footage sources disagree on when a sound is heard relative to the mouth
that makes it by up to a few frames, and the true mouth carries its clip's error while the
engine's output follows the typical timing, so each clip's offset as the learned sync scorer
(`chamelaion eval`, independent of the engine's mouth model) measures it on the whole clip is
applied to the truth. The floor is the
untouched source: video A's own mouth against the true mouth of B. A "cut check" (video A as
fed to the engine, measured, against the clip's own frames of A) guards the cutting itself: a
frame offset there would make every other figure meaningless.

The clips are third-party media outside the repository; the benchmark writes its cuts and
outputs to a temporary folder that it removes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "train"))

from chamelaion.engine import EngineError, LipsyncOptions, lipsync, media  # noqa: E402
from chamelaion.engine.faces import (  # noqa: E402
    INNER_LOWER_LIP,
    INNER_UPPER_LIP,
    MOUTH_CORNERS,
    OUTER_LOWER_LIP,
    OUTER_UPPER_LIP,
    RIGID_POINTS,
    apply_affine,
    canonical_frame,
    fit_similarity,
)
from chamelaion.engine.geometry import GAP, WIDTH, mouth_params  # noqa: E402
from chamelaion.engine.score import sync_score  # noqa: E402

SAMPLE_RATE = media.ANALYSIS_SAMPLE_RATE
MEASURE_POINTS = 468  # the face mesh without refined lips and irises
LIP_POINTS = tuple(
    sorted(set(OUTER_UPPER_LIP + OUTER_LOWER_LIP + INNER_UPPER_LIP + INNER_LOWER_LIP))
)
PCA_COMPONENTS = 3
METRICS = ("gap", "width", "pc1", "pc2", "pc3")
VERDICT_METRICS = ("gap", "width")  # the targets; "above the floor" is judged on these
MAX_LAG = 2  # frames either way for the reported best-lag figure
AV_MAX_LAG = 8  # frames either way for the own-track check
MIN_HALF_SECONDS = 1.0  # shorter halves give correlations too noisy to say anything
MIN_FACE_FRACTION = 0.8  # a half whose true mouth is unknown in more frames says little
CUT_CHECK_MIN_R = 0.9  # below this the cut video does not show the frames it should


# ----------------------------------------------------------------------------------------------
# Measuring


class MeasuringLandmarker:
    """mediapipe's face mesh with `refine_landmarks=False`: face_landmark.tflite, a different
    network from the attention model the engine tracks and renders with, so an output is not
    judged by the landmarker it was drawn to please. Video mode, one face: frames in order."""

    def __init__(self) -> None:
        import mediapipe as mp

        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False,
            max_num_faces=1,
            refine_landmarks=False,
            min_detection_confidence=0.5,
            min_tracking_confidence=0.5,
        )

    def __call__(self, rgb: NDArray[Any]) -> NDArray[Any] | None:
        """(468, 2) pixel landmarks of the face in `rgb`, or None."""
        h, w = rgb.shape[:2]
        result = self._mesh.process(rgb)
        if not result.multi_face_landmarks:
            return None
        face = result.multi_face_landmarks[0]
        return np.array([(p.x * w, p.y * h) for p in face.landmark], dtype=np.float32)

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> MeasuringLandmarker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def measure_video(path: Path, fps: Fraction, frames: int | None = None) -> NDArray[Any]:
    """(frames, 468, 2) measured landmarks of `path` at `fps`, NaN where no face was found."""
    rows = []
    missing = np.full((MEASURE_POINTS, 2), np.nan, np.float32)
    with MeasuringLandmarker() as measure:
        for i, rgb in enumerate(media.read_frames(path, fps)):
            if frames is not None and i >= frames:
                break
            points = measure(rgb)
            rows.append(missing if points is None else points)
    return np.array(rows, dtype=np.float32).reshape(-1, MEASURE_POINTS, 2)


def face_fraction(landmarks: NDArray[Any]) -> float:
    return float(np.mean(np.isfinite(landmarks[:, 0, 0]))) if len(landmarks) else 0.0


def pearson(a: NDArray[Any], b: NDArray[Any]) -> float:
    """Pearson r over the frames where both are known; NaN with fewer than 3 or no variance."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    known = np.isfinite(a) & np.isfinite(b)
    if known.sum() < 3:
        return float("nan")
    x, y = a[known] - a[known].mean(), b[known] - b[known].mean()
    denom = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / denom) if denom > 0 else float("nan")


def lagged(a: NDArray[Any], b: NDArray[Any], lag: int) -> tuple[NDArray[Any], NDArray[Any]]:
    """`a` from frame `lag` on against `b` from frame 0: a positive lag pairs a[t + lag] with
    b[t], so it is the number of frames `a` runs late."""
    if lag > 0:
        return a[lag:], b[: len(b) - lag]
    if lag < 0:
        return a[: len(a) + lag], b[-lag:]
    return a, b


def best_lag(a: NDArray[Any], b: NDArray[Any], max_lag: int = MAX_LAG) -> tuple[float, int]:
    """The highest r of `a` against `b` over lags within +-max_lag, and that lag (see `lagged`)."""
    scores = [(pearson(*lagged(a, b, lag)), lag) for lag in range(-max_lag, max_lag + 1)]
    known = [(r, lag) for r, lag in scores if np.isfinite(r)]
    if not known:
        return float("nan"), 0
    return max(known, key=lambda s: s[0])


def rigid_reference(landmarks: NDArray[Any]) -> NDArray[Any]:
    """The face's rigid points averaged in a level, unit-eye-span frame: the common frame lip
    shapes of the output, the truth and the source are all brought into."""
    rigid = list(RIGID_POINTS)
    shapes = [
        apply_affine(canonical_frame(points), points[rigid])
        for points in landmarks.astype(np.float64)
        if np.isfinite(points[0, 0])
    ]
    if not shapes:
        raise ValueError("no face to take a reference from")
    reference: NDArray[Any] = np.mean(shapes, axis=0)
    return reference


def lip_shapes(landmarks: NDArray[Any], reference: NDArray[Any]) -> NDArray[Any]:
    """(frames, 2 * lip points) lip shapes with the head's pose taken out, NaN rows where no face.

    Each frame's rigid points are fitted to `reference` (rotation, scale, shift), and the lips
    are measured from their corners' midpoint: what is left is the lips' own shape (opening,
    spread, rounding) in eye-span units, not where the head or the mouth happen to be.
    """
    out = np.full((len(landmarks), 2 * len(LIP_POINTS)), np.nan)
    for i, points in enumerate(landmarks):
        if not np.isfinite(points[0, 0]):
            continue
        to_reference = fit_similarity(points[list(RIGID_POINTS)].astype(np.float64), reference)
        lips = apply_affine(to_reference, points.astype(np.float64))
        origin = (lips[MOUTH_CORNERS[0]] + lips[MOUTH_CORNERS[1]]) / 2
        out[i] = (lips[list(LIP_POINTS)] - origin).ravel()
    return out


@dataclass(frozen=True)
class LipPCA:
    """Principal axes of a true mouth's lip shapes: the coefficients an output must follow."""

    mean: NDArray[Any]
    axes: NDArray[Any]  # (components, dims), unit rows

    @classmethod
    def fit(cls, shapes: NDArray[Any], components: int = PCA_COMPONENTS) -> LipPCA:
        known = shapes[np.isfinite(shapes).all(axis=1)]
        if len(known) <= components:
            raise ValueError("too few frames with a face to fit the lip-shape PCA")
        mean = known.mean(axis=0)
        _, _, vt = np.linalg.svd(known - mean, full_matrices=False)
        return cls(mean, vt[:components])

    def project(self, shapes: NDArray[Any]) -> NDArray[Any]:
        projected: NDArray[Any] = (shapes - self.mean) @ self.axes.T
        return projected


@dataclass(frozen=True)
class TrueMouth:
    """What outputs are compared against: a half's measured landmarks, the lip-shape frame and
    PCA fitted on them, and its per-frame features."""

    landmarks: NDArray[Any]
    reference: NDArray[Any]
    pca: LipPCA

    @classmethod
    def of(cls, landmarks: NDArray[Any]) -> TrueMouth:
        reference = rigid_reference(landmarks)
        return cls(landmarks, reference, LipPCA.fit(lip_shapes(landmarks, reference)))

    def features(self, landmarks: NDArray[Any]) -> dict[str, NDArray[Any]]:
        """Per-frame gap, width and lip-shape PCA coefficients of any measured landmarks."""
        params = mouth_params(landmarks) if len(landmarks) else np.zeros((0, 4))
        coefficients = self.pca.project(lip_shapes(landmarks, self.reference))
        named = {"gap": params[:, GAP], "width": params[:, WIDTH]}
        for k in range(PCA_COMPONENTS):
            named[f"pc{k + 1}"] = coefficients[:, k]
        return named


@dataclass(frozen=True)
class Comparison:
    """One measured mouth against the true one: r at lag 0, and the best r within +-2 frames."""

    r: dict[str, float]
    best_r: dict[str, float]
    lag: dict[str, int]  # where best_r was found (see `lagged`)
    frames: int
    timed: dict[str, float]  # r at the clip's own timing (see `compare`)


def compare(landmarks: NDArray[Any], truth: TrueMouth, timing: int = 0) -> Comparison:
    """Frame i of `landmarks` against frame i of the truth, over the frames both have.
    `timing`: the clip's sound comes this many frames after its mouth, so frame i + timing of
    an output that follows the sound pairs with frame i of the truth (`Comparison.timed`)."""
    n = min(len(landmarks), len(truth.landmarks))
    got, want = truth.features(landmarks[:n]), truth.features(truth.landmarks[:n])
    r, best, lags, timed = {}, {}, {}, {}
    for name in METRICS:
        r[name] = pearson(got[name], want[name])
        best[name], lags[name] = best_lag(got[name], want[name])
        timed[name] = pearson(*lagged(got[name], want[name], timing))
    return Comparison(r, best, lags, n, timed)


def energy_envelope(samples: NDArray[Any], fps: float, frames: int) -> NDArray[Any]:
    """Log RMS of the audio over each video frame's period."""
    out = np.full(frames, np.nan)
    for i in range(frames):
        chunk = samples[round(i / fps * SAMPLE_RATE) : round((i + 1) / fps * SAMPLE_RATE)]
        if len(chunk):
            out[i] = np.log(np.sqrt(np.mean(chunk.astype(np.float64) ** 2)) + 1e-4)
    return out


# ----------------------------------------------------------------------------------------------
# Cutting


@dataclass(frozen=True)
class Source:
    """A clip's picture and speech, the speech aligned so sample 0 is shown with frame 0."""

    path: Path
    fps: Fraction
    width: int
    height: int
    frames: int  # frames used: two halves of `half` frames each
    audio: NDArray[Any]  # float32 mono at SAMPLE_RATE
    audio_offset: float  # seconds of the audio track dropped (or padded, if negative) to align

    @property
    def half(self) -> int:
        return self.frames // 2

    def decoded(self, frames: int) -> Source:
        """This source cut to the `frames` that really decoded (a container's duration can
        promise a frame or two more), still an even number."""
        return dataclasses.replace(self, frames=min(self.frames, frames - frames % 2))


def open_source(path: Path, seconds: float | None) -> Source:
    """The clip as the benchmark uses it: at most `seconds` long (as the container's duration
    says: see `Source.decoded`), an even number of frames.

    A sound track may start before the first picture (an MP4 whose video begins at 0.08 s):
    the speech is shifted so that it lines up with the frames as a player shows them.
    Raises EngineError (a subclass) when the file has no video or no audio.
    """
    info = media.probe(path)
    media.require_video(info, "clip")
    media.require_audio(info, "clip")
    total = info.frame_count
    if seconds is not None:
        total = min(total, int(seconds * info.fps))
    audio = media.read_audio(path, with_video=True)
    offset = media.audio_lead(path)
    return Source(path, info.fps, info.width, info.height, total - total % 2, audio, offset)


def _samples(source: Source, first: int, last: int) -> NDArray[Any]:
    """The speech of frames [first, last), zero-padded if the track ends early."""
    a = round(first / float(source.fps) * SAMPLE_RATE)
    b = round(last / float(source.fps) * SAMPLE_RATE)
    chunk = source.audio[a:b]
    return np.pad(chunk, (0, b - a - len(chunk)))


def write_wav(path: Path, samples: NDArray[Any]) -> Path:
    pcm = np.clip(samples * 32767.0, -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())
    return path


def write_half(source: Source, which: int, folder: Path) -> tuple[Path, Path]:
    """Half `which` (0: A, 1: B) as a video with its own speech, and its speech as a WAV."""
    name = "AB"[which]
    first, last = which * source.half, (which + 1) * source.half
    speech = _samples(source, first, last)
    video = folder / f"{name}.mp4"
    writer = media.VideoWriter(video, source.width, source.height, source.fps, SAMPLE_RATE, "mono")
    try:
        for i, rgb in enumerate(media.read_frames(source.path, source.fps, start=first)):
            if i >= last - first:
                break
            writer.write_frame(rgb)
            writer.write_audio(_samples(source, first + i, first + i + 1)[None])
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return video, write_wav(folder / f"{name}.wav", speech)


# ----------------------------------------------------------------------------------------------
# One clip


@dataclass(frozen=True)
class Direction:
    """Video `video` dubbed with the speech of half `speech`."""

    video: str  # "A" or "B"
    speech: str
    output: Comparison
    floor: Comparison  # the untouched source video against the same true mouth
    cut_check: float  # r_gap of the cut video, measured, against the clip's own frames of it
    output_face: float  # fraction of the half's frames the measuring landmarker found in output
    engine_seconds: float


@dataclass(frozen=True)
class ClipResult:
    name: str
    language: str
    fps: float
    half_frames: int
    audio_offset: float  # seconds, see `open_source`
    timing: int  # frames the clip's sound comes after its mouth, as the sync scorer finds
    directions: tuple[Direction, ...]
    # The clip's own sound against its own mouth: r of the true gap and the speech energy at lag
    # 0, and the best r within +-8 frames with its lag (positive: the mouth moves late). Real
    # mouths follow loudness loosely, so this hints at an offset; it does not prove one.
    own_track_r: float
    own_track_best: tuple[float, int]

    def mean(self, which: str, name: str) -> float:
        """`which` ("output" or "floor") r of metric `name`, averaged over both directions."""
        return float(np.mean([getattr(d, which).r[name] for d in self.directions]))

    def mean_timed(self, name: str) -> float:
        """The output's r of metric `name` at the clip's own timing, both directions."""
        return float(np.mean([d.output.timed[name] for d in self.directions]))

    def above_floor(self) -> bool:
        return all(self.mean("output", m) > self.mean("floor", m) for m in VERDICT_METRICS)

    @property
    def engine_seconds(self) -> float:
        return sum(d.engine_seconds for d in self.directions)


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


def evaluate(
    path: Path,
    name: str,
    language: str,
    seconds: float | None = None,
    options: LipsyncOptions | None = None,
) -> ClipResult | Skipped:
    """Cross-reconstruct one clip both ways; a clip that cannot be measured is Skipped, with why
    (no sound, too short, no face in a half, an engine error): one bad clip never ends a run."""
    try:
        source = open_source(path, seconds)
    except EngineError as exc:
        return Skipped(name, f"unusable clip: {exc}")
    measured = measure_video(path, source.fps, source.frames)
    source = source.decoded(len(measured))
    if source.half < MIN_HALF_SECONDS * float(source.fps):
        return Skipped(name, f"too short: halves of {source.half} frames")
    measured = measured[: source.frames]
    halves = (measured[: source.half], measured[source.half :])
    for label, half in zip("AB", halves, strict=True):
        found = face_fraction(half)
        if found < MIN_FACE_FRACTION:
            return Skipped(name, f"no face in half {label} (measured in {found:.0%} of frames)")
    truths = tuple(TrueMouth.of(h) for h in halves)
    timing = sync_score(path).offset_frames
    directions = []
    with tempfile.TemporaryDirectory(prefix="chamelaion-realspeech-") as tmp:
        folder = Path(tmp)
        cuts = [write_half(source, k, folder) for k in (0, 1)]
        for video, speech in ((0, 1), (1, 0)):
            out = folder / f"{'AB'[video]}_with_{'AB'[speech]}.mp4"
            start = time.perf_counter()
            try:
                lipsync(cuts[video][0], cuts[speech][1], out, options)
            except EngineError as exc:
                return Skipped(name, f"engine on video {'AB'[video]}: {exc}")
            wall = time.perf_counter() - start
            output = measure_video(out, source.fps, source.half)
            cut = measure_video(cuts[video][0], source.fps, source.half)
            directions.append(
                Direction(
                    video="AB"[video],
                    speech="AB"[speech],
                    output=compare(output, truths[speech], timing),
                    floor=compare(cut, truths[speech]),
                    cut_check=compare(cut, truths[video]).r["gap"],
                    output_face=face_fraction(output) * len(output) / source.half,
                    engine_seconds=wall,
                )
            )
    gap = mouth_params(measured)[:, GAP]
    energy = energy_envelope(source.audio, float(source.fps), source.frames)
    return ClipResult(
        name=name,
        language=language,
        fps=float(source.fps),
        half_frames=source.half,
        audio_offset=source.audio_offset,
        timing=timing,
        directions=tuple(directions),
        own_track_r=pearson(gap, energy),
        own_track_best=best_lag(gap, energy, AV_MAX_LAG),
    )


# ----------------------------------------------------------------------------------------------
# Report


@dataclass(frozen=True)
class Summary:
    """Means over clips of the per-clip r (both directions averaged), by language group."""

    output: dict[str, float]
    floor: dict[str, float]
    output_en: dict[str, float]
    floor_en: dict[str, float]
    output_other: dict[str, float]
    floor_other: dict[str, float]
    timed: dict[str, float]  # the output at each clip's own timing
    clips: int
    clips_en: int
    every_clip_above_floor: bool
    below_floor: tuple[str, ...]


def summarise(results: Sequence[ClipResult]) -> Summary:
    def means(group: Sequence[ClipResult], which: str) -> dict[str, float]:
        if not group:
            return dict.fromkeys(METRICS, float("nan"))
        return {m: float(np.mean([c.mean(which, m) for c in group])) for m in METRICS}

    english = [c for c in results if c.language == "en"]
    other = [c for c in results if c.language != "en"]
    below = tuple(c.name for c in results if not c.above_floor())
    return Summary(
        output=means(results, "output"),
        floor=means(results, "floor"),
        output_en=means(english, "output"),
        floor_en=means(english, "floor"),
        output_other=means(other, "output"),
        floor_other=means(other, "floor"),
        timed={
            m: float(np.mean([c.mean_timed(m) for c in results])) if results else float("nan")
            for m in METRICS
        },
        clips=len(results),
        clips_en=len(english),
        every_clip_above_floor=bool(results) and not below,
        below_floor=below,
    )


def _row(label: str, r: dict[str, float]) -> str:
    return f"{label:<36}" + "".join(f"{r[m]:>7.2f}" for m in METRICS)


def report(results: Sequence[ClipResult], skipped: Sequence[Skipped]) -> str:
    """The table: per clip (both directions averaged, then each), the means, the verdict."""
    head = f"{'r at lag 0 vs the true mouth':<36}" + "".join(f"{m:>7}" for m in METRICS)
    lines = [head]
    for c in results:
        seconds = 2 * c.half_frames / c.fps
        lines.append(f"{c.name} [{c.language}] {c.half_frames}+{c.half_frames} frames")
        lines.append(_row("  output, both directions", {m: c.mean("output", m) for m in METRICS}))
        for d in c.directions:
            lines.append(_row(f"    video {d.video} + speech {d.speech}", d.output.r))
        lines.append(_row("  floor (untouched source)", {m: c.mean("floor", m) for m in METRICS}))
        for d in c.directions:
            lines.append(_row(f"    video {d.video} vs true {d.speech}", d.floor.r))
        for d in c.directions:
            best = ", ".join(
                f"{m} {d.output.best_r[m]:.2f} at {d.output.lag[m]:+d}" for m in VERDICT_METRICS
            )
            lines.append(
                f"  {d.video}+{d.speech}: best within +-{MAX_LAG} fr: {best}; cut check "
                f"r_gap {d.cut_check:.3f}; face in output {d.output_face:.0%}; "
                f"engine {d.engine_seconds:.1f} s"
            )
            if d.cut_check < CUT_CHECK_MIN_R:
                lines.append(f"  WARNING: cut check under {CUT_CHECK_MIN_R}: figures unreliable")
        best_r, best_at = c.own_track_best
        lines.append(
            f"  at the clip's own timing ({c.timing:+d} fr by the sync scorer): "
            + ", ".join(f"{m} {c.mean_timed(m):.2f}" for m in VERDICT_METRICS)
        )
        lines.append(
            f"  own track: true gap vs speech energy r {c.own_track_r:.2f} at lag 0, best "
            f"{best_r:.2f} at {best_at:+d} fr; audio shifted {c.audio_offset:+.3f} s to align; "
            f"engine {c.engine_seconds:.1f} s for {seconds:.1f} s of video"
        )
    s = summarise(results)
    lines += ["", head]
    lines.append(_row(f"mean over {s.clips} clips: output", s.output))
    lines.append(_row("  floor", s.floor))
    lines.append(_row(f"English ({s.clips_en}): output", s.output_en))
    lines.append(_row("  floor", s.floor_en))
    lines.append(_row(f"other languages ({s.clips - s.clips_en}): output", s.output_other))
    lines.append(_row("  floor", s.floor_other))
    lines.append(_row("output at each clip's own timing", s.timed))
    verdict = "yes" if s.every_clip_above_floor else f"no (not: {', '.join(s.below_floor)})"
    lines.append(f"every clip above the floor (gap and width): {verdict}")
    lines += [f"skipped {skip.name}: {skip.reason}" for skip in skipped]
    return "\n".join(lines)


def machine() -> dict[str, object]:
    """Where and on what the figures were measured."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "platform": platform.platform(),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit or "unknown",
    }


def options_for(model: str | None) -> LipsyncOptions:
    """Engine options; `model` only where this engine has such an option, else an error (a
    figure silently measured on the default model would be worse than none)."""
    if model is None:
        return LipsyncOptions()
    if "model" not in {f.name for f in dataclasses.fields(LipsyncOptions)}:
        raise SystemExit("this engine's LipsyncOptions has no `model`; run without --model")
    return LipsyncOptions(model=model)


def main() -> None:
    import footage

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=None, help="cap each clip's length")
    parser.add_argument("--clips", default="", help="comma-separated names (default: held out)")
    parser.add_argument("--model", default=None, help="LipsyncOptions.model, if the engine has it")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    args = parser.parse_args()
    options = options_for(args.model)
    names = [n.strip() for n in args.clips.split(",") if n.strip()]
    clips = [footage.by_name(n) for n in names] if names else footage.held_out_clips()
    results: list[ClipResult] = []
    skipped: list[Skipped] = []
    for clip in clips:
        if not clip.held_out:
            print(f"note: {clip.name} is a training clip: its figures say little", flush=True)
        if not clip.path.exists():
            skipped.append(Skipped(clip.name, f"not found at {clip.path}"))
            continue
        got = evaluate(clip.path, clip.name, clip.language, args.seconds, options)
        if isinstance(got, Skipped):
            skipped.append(got)
            print(f"skipped {clip.name}: {got.reason}", flush=True)
        else:
            results.append(got)
            print(f"measured {clip.name} ({got.engine_seconds:.1f} s in the engine)", flush=True)
    where = machine()
    length = "whole clips" if args.seconds is None else f"first {args.seconds:g} s of each clip"
    print(f"\nreal-speech cross-reconstruction; model: {args.model or 'default'}; {length}")
    print(f"{where['platform']}, nproc {where['nproc']}, {where['date']}, commit {where['commit']}")
    print(report(results, skipped))
    if args.json:
        payload = {
            "machine": where,
            "model": args.model,
            "seconds": args.seconds,
            "clips": [dataclasses.asdict(c) for c in results],
            "skipped": [dataclasses.asdict(s) for s in skipped],
            "summary": dataclasses.asdict(summarise(results)),
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
