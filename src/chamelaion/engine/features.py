"""Voice activity and loudness of speech, 100 frames a second, from mono 16 kHz samples.

The mouth's shape comes from the learned model (`mouthmodel`); these plain measures say where
there is speech at all (pauses close the lips) and how loud it is (the envelope the old
`loudness_correlation` of `chamelaion eval` is measured against).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chamelaion.engine import logmel

SAMPLE_RATE = 16000
HOP = 160  # 10 ms
WINDOW = 400  # 25 ms
FFT_SIZE = 512
FRAME_RATE = SAMPLE_RATE / HOP
SILENCE_DB = -120.0


@dataclass(frozen=True)
class AudioFeatures:
    """Per 10 ms frame (frame k is centred at k * 10 ms)."""

    energy_db: NDArray[Any]  # speech-band energy, dB (relative, floored)
    speech: NDArray[np.bool_]  # bool: voice activity
    loudness: NDArray[Any]  # 0..1 within the speech dynamic range

    @property
    def frames(self) -> int:
        return len(self.energy_db)


BLOCK = 2048  # analysis windows per block: the spectrum is never held whole in memory
_BANDS = {"speech": (80, 5000)}


class _Windows:
    """Overlapping analysis windows centred on each hop (zero padded at both ends), made on
    demand so an hour of audio costs no more memory than a block of them."""

    def __init__(self, samples: NDArray[Any]) -> None:
        self.samples = samples
        self.count = max(1, int(np.ceil(len(samples) / HOP)))

    def block(self, start: int, stop: int) -> NDArray[Any]:
        return logmel.windows(self.samples, start, stop, np.float64)


def _band_energies(windows: _Windows) -> dict[str, NDArray[Any]]:
    """Power in each of `_BANDS` per window, computed block by block."""
    taper = np.hanning(WINDOW)
    freqs = np.fft.rfftfreq(FFT_SIZE, 1 / SAMPLE_RATE)
    masks = {name: (freqs >= lo) & (freqs < hi) for name, (lo, hi) in _BANDS.items()}
    out = {name: np.empty(windows.count) for name in _BANDS}
    for start in range(0, windows.count, BLOCK):
        stop = min(start + BLOCK, windows.count)
        spectrum = np.abs(np.fft.rfft(windows.block(start, stop) * taper, FFT_SIZE)) ** 2
        for name, mask in masks.items():
            out[name][start:stop] = spectrum[:, mask].sum(axis=1)
    return out


def analyze(samples: NDArray[Any]) -> AudioFeatures:
    """Features of `samples` (mono, 16 kHz)."""
    windows = _Windows(samples)
    bands = _band_energies(windows)
    speech_band = bands["speech"]
    peak = float(speech_band.max())
    if peak > 0:
        energy_db = np.maximum(10 * np.log10(speech_band / peak + 1e-12), SILENCE_DB)
    else:
        energy_db = np.full(windows.count, SILENCE_DB)

    speech, floor_db, top_db = _voice_activity(energy_db)
    loudness = np.clip((energy_db - floor_db) / max(top_db - floor_db, 1e-6), 0.0, 1.0)
    return AudioFeatures(energy_db, speech, loudness)


def _voice_activity(energy_db: NDArray[Any]) -> tuple[NDArray[Any], float, float]:
    """Speech frames by an adaptive energy threshold between the noise floor and speech level.

    Returns (speech mask, threshold in dB, speech level in dB). The floor is a low percentile,
    the speech level a high one, so the split adapts to recording level and background noise.
    """
    top = float(np.percentile(energy_db, 98))
    floor = float(np.percentile(energy_db, 10))
    threshold = max(floor + 0.35 * (top - floor), top - 45.0)
    speech = energy_db > threshold
    # Drop blips under 40 ms; bridge dropouts under 30 ms.
    speech = _remove_short_runs(speech, True, 4)
    speech = _remove_short_runs(speech, False, 3)
    return speech, threshold, top


def _remove_short_runs(mask: NDArray[Any], value: bool, min_length: int) -> NDArray[Any]:
    out = mask.copy()
    edges = np.flatnonzero(
        np.diff(np.concatenate([[not value], mask == value, [not value]]).astype(np.int8))
    )
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if stop - start < min_length and start > 0 and stop < len(mask):
            out[start:stop] = not value
    return out


def per_video_frame(
    features: AudioFeatures, fps: float, frames: int
) -> tuple[NDArray[Any], NDArray[Any]]:
    """Per video frame: mean loudness (0..1) and the share of the frame that is speech."""
    edges = np.round(np.arange(frames + 1) * FRAME_RATE / fps).astype(int)
    loud = np.zeros(frames)
    speech = np.zeros(frames)
    for i in range(frames):
        a, b = edges[i], max(edges[i + 1], edges[i] + 1)
        if a < features.frames:
            loud[i] = features.loudness[a:b].mean()
            speech[i] = features.speech[a:b].mean()
    return loud, speech


def window_mean(
    series: NDArray[Any], start: NDArray[Any], stop: NDArray[Any]
) -> NDArray[np.float64]:
    """Mean of a 100 Hz series over [start, stop) seconds for each window (0 past the end)."""
    cumsum = np.concatenate([[0.0], np.cumsum(series, dtype=np.float64)])
    a = np.clip(np.round(start * FRAME_RATE).astype(int), 0, len(series))
    b = np.clip(np.round(stop * FRAME_RATE).astype(int), 0, len(series))
    b = np.maximum(b, np.minimum(a + 1, len(series)))
    count = np.maximum(b - a, 1)
    means: NDArray[np.float64] = (cumsum[b] - cumsum[a]) / count * (b > a)
    return means
