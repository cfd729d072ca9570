"""Target mouth shapes from audio: one `MouthShape` per output video frame.

A shape has three numbers, each visible on a face from the front:
- `opening`: inner-lip gap as a fraction of the mouth's width (0 closed, about 0.45 wide open);
  it follows speech loudness and F1 (jaw height), and is 0 in silence;
- `spread`: relative change of mouth width (+0.12 spread as in /i/, -0.15 rounded as in /u/);
  read from F2 relative to the speaker's own F2 range, weighted by how close the vowel is
  (open vowels leave the lips neutral), so it adapts to any voice and language;
- closures: frames where the audio says the lips are shut (/p b m/) get opening 0, applied after
  smoothing so they stay crisp.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from chamelaion.engine.features import FRAME_RATE, AudioFeatures

MAX_OPENING = 0.36
MAX_SPREAD = 0.15
MAX_ROUNDING = 0.26
# Lips move slightly ahead of the sound they shape; this shift (seconds) reads the audio that
# much later for each frame. Calibrated so the measured audio-visual lag is 0 (see `score`).
VISUAL_LEAD = 0.03


@dataclass(frozen=True)
class MouthTrack:
    """Per output frame: target opening, spread, and whether the lips are shut."""

    opening: np.ndarray
    spread: np.ndarray
    closed: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.opening)


def mouth_track(features: AudioFeatures, fps: float, frames: int) -> MouthTrack:
    """Sample the audio features at each video frame's time and turn them into mouth targets."""
    opening_audio, spread_audio = _articulation(features)
    times = np.arange(frames) / fps + VISUAL_LEAD
    half = 0.5 / fps
    opening = _window_mean(opening_audio, times - half, times + half)
    spread = _window_mean(spread_audio, times - half, times + half)
    closure = _window_max(features.closure, times - half * 0.8, times + half * 0.8)
    speech = _window_mean(features.speech.astype(np.float64), times - half, times + half)

    opening = gaussian_filter1d(opening, 0.7, mode="nearest")
    spread = gaussian_filter1d(spread, 1.0, mode="nearest")
    closed = (closure >= 0.5) | (speech < 0.25)
    opening = np.where(closed, 0.0, opening * (1.0 - closure))
    return MouthTrack(opening.astype(np.float32), spread.astype(np.float32), closed)


def _articulation(features: AudioFeatures) -> tuple[np.ndarray, np.ndarray]:
    """Opening and spread per audio frame (10 ms)."""
    f1_open = _normalise(features.f1, 250.0, 750.0, default=0.45)
    jaw = 0.5 * features.loudness**0.7 + 0.5 * f1_open
    # Fricatives and bursts (energy high in frequency) barely open the mouth.
    hiss = np.clip((features.high_fraction - 0.3) / 0.4, 0.0, 1.0)
    opening = MAX_OPENING * (0.1 + 0.9 * jaw) * (1.0 - 0.7 * hiss)
    opening = np.where(features.speech, opening, 0.0)

    voiced_f2 = features.f2[~np.isnan(features.f2)]
    spread = np.zeros(features.frames)
    if len(voiced_f2) >= 10:
        lo, hi = np.percentile(voiced_f2, [10, 90])
        f2n = _normalise(features.f2, lo, max(hi, lo + 300.0), default=np.nan)
        closeness = 1.0 - f1_open
        direction = 2.0 * f2n - 1.0
        amount = np.where(direction > 0, MAX_SPREAD, MAX_ROUNDING)
        spread = np.nan_to_num(direction * amount * closeness, nan=0.0)
        spread = _hold_last(spread, ~np.isnan(features.f2) & features.speech)
    return opening, spread


def _normalise(values: np.ndarray, lo: float, hi: float, default: float) -> np.ndarray:
    out = np.clip((values - lo) / (hi - lo), 0.0, 1.0)
    return np.where(np.isnan(values), default, out)


def _hold_last(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Carry the last valid value through invalid frames (consonants keep the vowel's lips)."""
    index = np.where(valid, np.arange(len(values)), 0)
    np.maximum.accumulate(index, out=index)
    held = values[index]
    return np.where(valid | (index > 0), held, 0.0)


def _window_mean(series: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Mean of a 100 Hz series over [start, stop) seconds for each window (0 past the end)."""
    cumsum = np.concatenate([[0.0], np.cumsum(series, dtype=np.float64)])
    a = np.clip(np.round(start * FRAME_RATE).astype(int), 0, len(series))
    b = np.clip(np.round(stop * FRAME_RATE).astype(int), 0, len(series))
    b = np.maximum(b, np.minimum(a + 1, len(series)))
    count = np.maximum(b - a, 1)
    return (cumsum[b] - cumsum[a]) / count * (b > a)


def _window_max(series: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    a = np.clip(np.round(start * FRAME_RATE).astype(int), 0, len(series))
    b = np.clip(np.round(stop * FRAME_RATE).astype(int), 0, len(series))
    return np.array([series[i:max(j, i + 1)].max() if i < len(series) else 0.0
                     for i, j in zip(a, b, strict=True)])  # fmt: skip
