"""Log-mel spectrogram: the speaker-independent speech features of the audio-to-mouth model.

100 frames a second (frame k centred at k * 10 ms), 25 ms Hann windows, 40 mel bands from 60 Hz
to 7.6 kHz, log power. `normalise` removes each band's mean and scales by its deviation over
the utterance, so a recording's level, microphone colour and room hardly matter.

The training script computes the very same features with these functions, so the shipped model
sees at run time exactly what it learned from.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

SAMPLE_RATE = 16000
HOP = 160
WINDOW = 400
FFT_SIZE = 512
FRAME_RATE = SAMPLE_RATE // HOP
BANDS = 40
_LOW_HZ, _HIGH_HZ = 60.0, 7600.0
_BLOCK = 1024  # windows per block (about 10 MB of spectrum), so memory does not grow with the audio


def _hz_to_mel(hz: NDArray[Any]) -> NDArray[Any]:
    mel: NDArray[Any] = 2595.0 * np.log10(1.0 + hz / 700.0)
    return mel


def _mel_to_hz(mel: NDArray[Any]) -> NDArray[Any]:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


@cache
def filterbank() -> NDArray[np.float64]:
    """(BANDS, FFT_SIZE // 2 + 1) triangular mel filters."""
    freqs = np.fft.rfftfreq(FFT_SIZE, 1 / SAMPLE_RATE)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(_LOW_HZ)), _hz_to_mel(np.array(_HIGH_HZ)),
                                   BANDS + 2))  # fmt: skip
    bank = np.zeros((BANDS, len(freqs)))
    for b in range(BANDS):
        lo, mid, hi = edges[b : b + 3]
        rising = (freqs - lo) / (mid - lo)
        falling = (hi - freqs) / (hi - mid)
        bank[b] = np.clip(np.minimum(rising, falling), 0.0, None)
    return bank


def log_mel(samples: NDArray[Any]) -> NDArray[np.float32]:
    """(frames, BANDS) log mel power of mono 16 kHz `samples`, ceil(len / HOP) frames."""
    count = max(1, -(-len(samples) // HOP))
    taper = np.hanning(WINDOW).astype(np.float32)
    bank = filterbank().T.astype(np.float32)
    out = np.empty((count, BANDS), np.float32)
    for start in range(0, count, _BLOCK):
        stop = min(start + _BLOCK, count)
        block = windows(samples, start, stop, np.float32)
        power = np.abs(np.fft.rfft(block * taper, FFT_SIZE)) ** 2
        out[start:stop] = np.log(power.astype(np.float32) @ bank + 1e-8)
    return out


def windows(
    samples: NDArray[Any], start: int, stop: int, dtype: type[np.floating[Any]] = np.float32
) -> NDArray[Any]:
    """(stop - start, WINDOW) analysis windows centred on hops start..stop-1 of `samples`,
    zeros beyond either end: one block of them at a time, never a padded copy of the whole
    audio (two of which, for an hour in float64, were a gigabyte)."""
    lo = start * HOP - WINDOW // 2
    hi = (stop - 1) * HOP - WINDOW // 2 + WINDOW
    piece: NDArray[Any] = np.zeros(hi - lo, dtype)
    a, b = max(lo, 0), min(hi, len(samples))
    if b > a:
        piece[a - lo : b - lo] = samples[a:b]
    index = np.arange(WINDOW)[None, :] + HOP * np.arange(stop - start)[:, None]
    return piece[index]


def normalise(mel: NDArray[Any]) -> NDArray[np.float32]:
    """Per-band mean and variance normalisation over the utterance's louder half of frames.

    Statistics over speech only: long silences would otherwise decide the mean. The louder half
    of frames by total energy is a language- and level-independent stand-in for "speech".
    """
    energy = mel.mean(axis=1)
    loud = energy >= np.median(energy) if len(mel) > 1 else np.ones(len(mel), bool)
    mean = mel[loud].mean(axis=0)
    std = mel[loud].std(axis=0) + 1e-3
    normalised: NDArray[np.float32] = ((mel - mean) / std).astype(np.float32)
    return normalised
