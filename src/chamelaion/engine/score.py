"""Measuring lip sync on any video: what `chamelaion eval` prints and the tests assert on.

The mouth is measured by the same face mesh the engine uses, on the decoded output, so the
figures describe what a viewer sees, not the engine's intentions:

- `offset_frames`, `confidence`, `distance`: the learned sync scorer (`engine/sync.py`, trained
  on real footage, independent of the engine's audio-to-mouth model). `offset_frames` is the
  shift, within ±15 frames, that best aligns sound and picture, positive when the audio is late
  (the sound comes after the mouth movement that makes it); `confidence` is how far the distance
  at that offset stands below the median over all offsets (SyncNet's confidence: about 0.1 for a
  real speaker with their own speech on held-out footage, about 0.03 for someone else's speech);
  `distance` is the mean embedding distance (0..2) at that offset. When there is nothing to
  score (no face, no speech, a mouth that never moves, audio that covers too little of the
  video), `confidence` is 0, `offset_frames` 0, `distance` None and `note` says why;
- `silent_closed_share`: of the frames well inside silences, the share with a closed mouth;
- `face_detection_rate`: share of frames where a face was found;
- `loudness_correlation`, `loudness_lag_frames`: Pearson r between the mouth opening (inner-lip
  gap over mouth width) and the speech loudness, at the lag within ±5 frames where it is
  highest. Kept as what it is: a check that a mouth opens with loudness, which the engine's own
  output is designed to do. It is not a sync measure for real speech (real mouths do not open in
  step with loudness: r = 0.1-0.3 on correctly synced real footage), the learned scorer is.

What these cannot see: articulation (closures on /p b m/, rounding on /u/) needs phoneme-level
checks, which the test suite makes with speech of known timing. Nor do they judge how the mouth
looks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chamelaion.engine import features, media, sync
from chamelaion.engine.faces import (
    EYE_OUTER_CORNERS,
    JAWLINE,
    NOSE_BOTTOM,
    LandmarkDetector,
    box_of,
)
from chamelaion.engine.geometry import inner_gap, mouth_width

CLOSED_OPENING = 0.05  # inner gap under 5 % of the mouth width counts as closed
MAX_LAG = 5
# Points the engine does not mean to move: eyes, nose, cheeks, the jawline above the chin.
# (The lips and chin move with speech by design, so their motion is not jitter.)
_STEADY_POINTS = (33, 133, 362, 263, NOSE_BOTTOM, 1, 4, 5, 195, 197, 50, 280, 205, 425,
                  *JAWLINE[:4], *JAWLINE[-4:])  # fmt: skip


@dataclass(frozen=True)
class MouthMeasurements:
    """Per frame of a video, NaN where no face was found."""

    fps: float
    opening: NDArray[Any]  # inner-lip gap / mouth width
    width: NDArray[Any]  # mouth width / eye span
    landmarks: NDArray[Any]  # (frames, 478, 2) of the largest face

    @property
    def found(self) -> NDArray[np.bool_]:
        found: NDArray[np.bool_] = ~np.isnan(self.opening)
        return found


def measure_mouth(
    video: str | Path, on_frame: Callable[[int, int], None] | None = None
) -> MouthMeasurements:
    """The largest face's mouth in every frame. `on_frame(done, total)` after each frame (total
    as probed): a caller may show progress, or raise to stop the pass."""
    info = media.probe(video)
    media.require_video(info, "video")
    openings, widths, points = [], [], []
    with LandmarkDetector(max_faces=1) as detect:
        for index, rgb in enumerate(media.read_frames(video, info.fps)):
            if on_frame is not None:
                on_frame(index, info.frame_count)
            faces = detect(rgb)
            if not faces:
                openings.append(np.nan)
                widths.append(np.nan)
                points.append(np.full((478, 2), np.nan, np.float32))
                continue
            face = max(faces, key=lambda f: box_of(f).area)
            span = float(np.linalg.norm(face[EYE_OUTER_CORNERS[1]] - face[EYE_OUTER_CORNERS[0]]))
            openings.append(inner_gap(face))
            widths.append(mouth_width(face) / span)
            points.append(face)
    return MouthMeasurements(
        float(info.fps), np.array(openings), np.array(widths), np.array(points)
    )


MIN_SPEECH_SECONDS = 0.5
# A mouth whose shape strays less than this (eye spans, RMS over the lip points) from its mean
# in 95 % of the frames does not move: a still picture's landmark jitter is about 0.002, the
# least moving real speaker of the footage (train/footage.py) about 0.016.
STILL_MOUTH = 0.006


@dataclass(frozen=True)
class SyncScore:
    offset_frames: int
    confidence: float
    distance: float | None
    scored_frames: int
    face_detection_rate: float
    silent_closed_share: float
    frames: int
    silent_frames: int
    loudness_correlation: float
    loudness_lag_frames: int
    note: str | None = None

    def as_dict(self) -> dict[str, float | int | str | None]:
        return asdict(self)


def sync_score(
    video: str | Path,
    audio: str | Path | None = None,
    on_frame: Callable[[int, int], None] | None = None,
) -> SyncScore:
    """Score `video` against `audio` (default: the video's own sound track); `on_frame` as
    `measure_mouth` takes it (the face-mesh pass is nearly all of the time)."""
    measured = measure_mouth(video, on_frame)
    # A separate audio file starts with the video's first frame; a video's own sound track may
    # start before its first picture, and is aligned to it.
    samples = media.read_audio(audio) if audio else media.read_audio(video, with_video=True)
    n = len(measured.opening)
    loud, speech = features.per_video_frame(features.analyze(samples), measured.fps, n)
    correlation, lag = best_lag_correlation(measured.opening, loud)
    # Frames well inside silence: no speech within two frames either side.
    quiet = np.convolve(speech > 0, np.ones(5), mode="same") == 0
    silent = quiet & measured.found
    closed = measured.opening[silent] < CLOSED_OPENING
    learned = learned_sync(measured, samples, float(speech.sum() / measured.fps))
    return SyncScore(
        offset_frames=learned.offset_frames,
        confidence=learned.confidence,
        distance=learned.distance,
        scored_frames=learned.scored_frames,
        face_detection_rate=round(float(measured.found.mean()) if n else 0.0, 4),
        silent_closed_share=round(float(closed.mean()) if closed.size else 1.0, 4),
        frames=n,
        silent_frames=int(silent.sum()),
        loudness_correlation=round(correlation, 4),
        loudness_lag_frames=lag,
        note=learned.note,
    )


@dataclass(frozen=True)
class LearnedSync:
    offset_frames: int
    confidence: float
    distance: float | None
    scored_frames: int
    note: str | None


def learned_sync(
    measured: MouthMeasurements, audio: NDArray[Any], speech_seconds: float
) -> LearnedSync:
    """The learned scorer's verdict, or confidence 0 and the reason when there is nothing it
    could judge (scoring a flat curve would only report noise)."""

    def unscored(note: str, frames: int = 0) -> LearnedSync:
        return LearnedSync(0, 0.0, None, frames, note)

    if not measured.found.any():
        return unscored("no face detected in video")
    if speech_seconds < MIN_SPEECH_SECONDS:
        return unscored("no speech in the audio")
    shapes = sync.lip_shapes(measured.landmarks)
    strays = np.sqrt(np.mean(shapes**2, axis=1))
    if float(np.nanpercentile(strays, 95)) < STILL_MOUTH:
        return unscored("the mouth never moves (a still picture?)")
    curve = sync.sync_curve(sync.frame_distances(measured.landmarks, measured.fps, audio))
    if np.isnan(curve.distances).all():
        return unscored(
            f"too little to score: audio and face overlap on fewer than "
            f"{sync.MIN_SCORED_FRAMES} frames",
            curve.scored_frames,
        )
    return LearnedSync(
        curve.offset,
        round(max(curve.confidence, 0.0), 4),
        round(curve.distance, 4),
        curve.scored_frames,
        None,
    )


def best_lag_correlation(opening: NDArray[Any], envelope: NDArray[Any]) -> tuple[float, int]:
    """Highest Pearson r of opening[t] against envelope[t - lag], for |lag| <= MAX_LAG."""
    best = (-1.0, 0)
    for lag in range(-MAX_LAG, MAX_LAG + 1):
        a = opening[max(lag, 0) : len(opening) + min(lag, 0)]
        b = envelope[max(-lag, 0) : len(envelope) + min(-lag, 0)]
        good = ~np.isnan(a) & ~np.isnan(b)
        if good.sum() < 3 or np.std(a[good]) == 0 or np.std(b[good]) == 0:
            continue
        r = float(np.corrcoef(a[good], b[good])[0, 1])
        if r > best[0] + 1e-9 or (abs(r - best[0]) <= 1e-9 and abs(lag) < abs(best[1])):
            best = (r, lag)
    return best


def landmark_jitter(measured: MouthMeasurements) -> float:
    """Median frame-to-frame roughness of the steady face landmarks, in eye spans.

    Roughness is the distance of each point from the midpoint of its neighbours in time (the
    second difference): smooth motion scores near zero, tracking noise and flicker do not.
    """
    points = measured.landmarks[:, list(_STEADY_POINTS)]
    span = np.linalg.norm(
        measured.landmarks[:, EYE_OUTER_CORNERS[1]] - measured.landmarks[:, EYE_OUTER_CORNERS[0]],
        axis=1,
    )
    rough = np.linalg.norm(points[1:-1] - (points[:-2] + points[2:]) / 2, axis=2)
    rough = rough / span[1:-1, None]
    return float(np.nanmedian(rough))
