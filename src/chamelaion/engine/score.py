"""Measuring lip sync on any video: what `chamelaion eval` prints and the tests assert on.

The mouth is measured by the same face mesh the engine uses, on the decoded output, so the
figures describe what a viewer sees, not the engine's intentions:

- `correlation`: Pearson r between the mouth opening (inner-lip gap over mouth width) and the
  audio's speech envelope, at the lag (within ±5 frames) where it is highest;
- `lag_frames`: that lag; positive means the mouth moves after the sound;
- `silent_closed_share`: of the frames well inside silences, the share with a closed mouth;
- `face_detection_rate`: share of frames where a face was found.

What these cannot see: a mouth that merely opens with loudness scores well on correlation
alone; articulation (closures on /p b m/, rounding on /u/) needs phoneme-level checks, which the
test suite makes with speech of known timing. Nor do they judge how the mouth looks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from chamelaion.engine import features, media
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
    opening: np.ndarray  # inner-lip gap / mouth width
    width: np.ndarray  # mouth width / eye span
    landmarks: np.ndarray  # (frames, 478, 2) of the largest face

    @property
    def found(self) -> np.ndarray:
        return ~np.isnan(self.opening)


def measure_mouth(video: str | Path) -> MouthMeasurements:
    info = media.probe(video)
    media.require_video(info, "video")
    openings, widths, points = [], [], []
    with LandmarkDetector(max_faces=1) as detect:
        for rgb in media.read_frames(video, info.fps):
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


def speech_envelope(audio: str | Path, fps: float, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Per video frame: speech loudness (0..1) and the share of the frame that is speech."""
    return features.per_video_frame(features.analyze(media.read_audio(audio)), fps, frames)


@dataclass(frozen=True)
class SyncScore:
    correlation: float
    lag_frames: int
    silent_closed_share: float
    face_detection_rate: float
    frames: int
    silent_frames: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def sync_score(video: str | Path, audio: str | Path | None = None) -> SyncScore:
    """Score `video` against `audio` (default: the video's own sound track)."""
    measured = measure_mouth(video)
    n = len(measured.opening)
    loud, speech = speech_envelope(audio or video, measured.fps, n)
    correlation, lag = best_lag_correlation(measured.opening, loud)
    # Frames well inside silence: no speech within two frames either side.
    quiet = np.convolve(speech > 0, np.ones(5), mode="same") == 0
    silent = quiet & measured.found
    closed = measured.opening[silent] < CLOSED_OPENING
    return SyncScore(
        correlation=round(correlation, 4),
        lag_frames=lag,
        silent_closed_share=round(float(closed.mean()) if closed.size else 1.0, 4),
        face_detection_rate=round(float(measured.found.mean()) if n else 0.0, 4),
        frames=n,
        silent_frames=int(silent.sum()),
    )


def best_lag_correlation(opening: np.ndarray, envelope: np.ndarray) -> tuple[float, int]:
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
