"""Audio features for articulation, 100 frames a second, from mono 16 kHz samples.

What the mouth does can be read off the speech signal without knowing the language:
- loudness of the speech band, and voice activity (silence means a closed, resting mouth);
- the first two formants by linear prediction: F1 rises as the jaw opens (/a/ high, /i/ and
  /u/ low), F2 falls as the lips round (/u/ low) and rises as they spread (/i/ high);
- lip closures: a bilabial /m/ is a quiet, low-passed murmur between louder vowels; a /b/ or /p/
  is a short gap (silent, or only a low voice bar) ended by a weak burst whose energy stays low
  in frequency, where a /t/ or /k/ release is dominated by high frequencies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_toeplitz
from scipy.ndimage import maximum_filter1d, median_filter

SAMPLE_RATE = 16000
HOP = 160  # 10 ms
WINDOW = 400  # 25 ms
FFT_SIZE = 512
FRAME_RATE = SAMPLE_RATE / HOP
LPC_ORDER = 16
SILENCE_DB = -120.0


@dataclass(frozen=True)
class AudioFeatures:
    """Per 10 ms frame (frame k is centred at k * 10 ms)."""

    energy_db: np.ndarray  # speech-band energy, dB (relative, floored)
    speech: np.ndarray  # bool: voice activity
    loudness: np.ndarray  # 0..1 within the speech dynamic range
    f1: np.ndarray  # Hz, NaN where not voiced or not found
    f2: np.ndarray  # Hz, NaN likewise
    low_fraction: np.ndarray  # share of 80-5000 Hz energy below 400 Hz
    high_fraction: np.ndarray  # share of 80-8000 Hz energy above 3500 Hz
    closure: np.ndarray  # 0..1 evidence that the lips are closed (bilabial)

    @property
    def frames(self) -> int:
        return len(self.energy_db)


BLOCK = 2048  # analysis windows per block: the spectrum is never held whole in memory
_BANDS = {"speech": (80, 5000), "low": (80, 400), "high": (3500, 8000), "all": (80, 8000)}


class _Windows:
    """Overlapping analysis windows centred on each hop (zero padded at both ends), made on
    demand so an hour of audio costs no more memory than a block of them."""

    def __init__(self, samples: np.ndarray) -> None:
        self.padded = np.pad(samples.astype(np.float64), (WINDOW // 2, WINDOW))
        self.count = max(1, int(np.ceil(len(samples) / HOP)))

    def block(self, start: int, stop: int) -> np.ndarray:
        index = np.arange(WINDOW)[None, :] + HOP * np.arange(start, stop)[:, None]
        return self.padded[index]


def _band_energies(windows: _Windows) -> dict[str, np.ndarray]:
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


def analyze(samples: np.ndarray, formants: bool = True) -> AudioFeatures:
    """Features of `samples` (mono, 16 kHz); without `formants`, F1 and F2 are left NaN (the
    costly part, not needed to find who speaks)."""
    windows = _Windows(samples)
    bands = _band_energies(windows)
    speech_band = bands["speech"]
    peak = float(speech_band.max())
    if peak > 0:
        energy_db = np.maximum(10 * np.log10(speech_band / peak + 1e-12), SILENCE_DB)
    else:
        energy_db = np.full(windows.count, SILENCE_DB)
    low_fraction = bands["low"] / (speech_band + 1e-20)
    high_fraction = bands["high"] / (bands["all"] + 1e-20)

    speech, floor_db, top_db = _voice_activity(energy_db)
    loudness = np.clip((energy_db - floor_db) / max(top_db - floor_db, 1e-6), 0.0, 1.0)
    voiced = speech & (high_fraction < 0.5) if formants else np.zeros_like(speech)
    f1, f2 = _formants(windows, voiced)
    closure = _closure_evidence(energy_db, speech, low_fraction, high_fraction, top_db)
    return AudioFeatures(energy_db, speech, loudness, f1, f2, low_fraction, high_fraction, closure)


def _voice_activity(energy_db: np.ndarray) -> tuple[np.ndarray, float, float]:
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


def _remove_short_runs(mask: np.ndarray, value: bool, min_length: int) -> np.ndarray:
    out = mask.copy()
    edges = np.flatnonzero(
        np.diff(np.concatenate([[not value], mask == value, [not value]]).astype(np.int8))
    )
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if stop - start < min_length and start > 0 and stop < len(mask):
            out[start:stop] = not value
    return out


def _formants(windows: _Windows, voiced: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F1 and F2 from the roots of an order-16 LPC polynomial, on voiced frames only."""
    f1 = np.full(windows.count, np.nan)
    f2 = np.full(windows.count, np.nan)
    window = np.hamming(WINDOW)
    for k in np.flatnonzero(voiced):
        x = windows.padded[k * HOP : k * HOP + WINDOW]
        x = np.append(x[0], x[1:] - 0.97 * x[:-1]) * window
        r = np.correlate(x, x, "full")[WINDOW - 1 : WINDOW + LPC_ORDER]
        if r[0] <= 0:
            continue
        r[0] *= 1.0001  # a touch of white noise keeps the system well conditioned
        try:
            a = solve_toeplitz(r[:-1], -r[1:])
        except np.linalg.LinAlgError:
            continue
        roots = np.roots(np.concatenate([[1.0], a]))
        roots = roots[roots.imag > 0]
        freq = np.angle(roots) * SAMPLE_RATE / (2 * np.pi)
        bandwidth = -np.log(np.abs(roots)) * SAMPLE_RATE / np.pi
        candidates = np.sort(freq[(freq > 200) & (freq < 4000) & (bandwidth < 450)])
        if len(candidates) >= 2:
            f1[k], f2[k] = candidates[0], candidates[1]
    # LPC picks a wrong peak now and then; a short median removes isolated errors.
    for track in (f1, f2):
        good = ~np.isnan(track)
        if good.sum() >= 3:
            track[good] = median_filter(track[good], size=5, mode="nearest")
    return f1, f2


def _closure_evidence(
    energy_db: np.ndarray,
    speech: np.ndarray,
    low_fraction: np.ndarray,
    high_fraction: np.ndarray,
    top_db: float,
) -> np.ndarray:
    """0..1 per frame: how strongly the signal says the lips are shut here.

    A frame scores when it is clearly quieter than the speech around it (a dip of 8 dB or more
    under the loudest frame within ±120 ms) and what energy it has sits low in frequency (a
    nasal murmur or a voice bar). A short gap inside speech scores when the release that ends it
    is not dominated by high frequencies (bilabial, not alveolar or velar).
    """
    neighbourhood = maximum_filter1d(energy_db, size=25, mode="nearest")
    dip = neighbourhood - energy_db
    loud_around = neighbourhood > top_db - 25
    murmur = _ramp(dip, 5.0, 10.0) * _ramp(low_fraction, 0.80, 0.88) * loud_around
    murmur *= energy_db > top_db - 45  # still voiced: a murmur, not silence
    evidence = murmur
    gap = ~speech
    edges = np.flatnonzero(np.diff(np.concatenate([[0], gap.astype(np.int8), [0]])))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if start == 0 or stop >= len(gap) or stop - start > 25:
            continue  # leading/trailing silence or a pause, not a stop closure
        release = slice(stop, min(stop + 3, len(gap)))
        bilabial = 1.0 - _ramp(float(high_fraction[release].mean()), 0.35, 0.6)
        evidence[start:stop] = np.maximum(evidence[start:stop], bilabial)
    return np.clip(evidence, 0.0, 1.0)


def _ramp(x: np.ndarray | float, lo: float, hi: float) -> np.ndarray:
    return np.clip((np.asarray(x, dtype=np.float64) - lo) / (hi - lo), 0.0, 1.0)


def per_video_frame(
    features: AudioFeatures, fps: float, frames: int
) -> tuple[np.ndarray, np.ndarray]:
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
