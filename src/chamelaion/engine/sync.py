"""A learned audio-visual sync scorer: does this mouth say these sounds, and with what offset?

Two small encoders map a short window of lip shape and a window of speech to points on a unit
sphere, trained (`train/sync.py`, on real footage, see `weights/sync.md`) so that a mouth and the
sound it makes land close together and a mouth and the sound of another moment land far apart.
Scoring a video then follows SyncNet: for every offset within ±`MAX_OFFSET` frames, the mean
distance between each frame's lip embedding and the audio embedding that many frames later; the
offset with the smallest distance is the estimate, and how far it stands below the median over
offsets is the confidence (a flat curve, confidence near 0, means nothing in the sound matches
the mouth).

It is deliberately independent of the engine's audio-to-mouth model, so the engine cannot grade
itself: the picture side is the raw contour of the 40 lip landmarks (not `geometry.mouth_params`,
which the engine learns), the sound side is MFCC with deltas (not the engine's log-mel), and the
objective is contrastive, not regression. Inference is numpy only.

Features:
- lip shape: the inner and outer lip contours in canonical coordinates (eyes level, one unit the
  outer-eye-corner span), relative to the mouth's centre, the clip's mean shape removed (who is
  speaking should not matter, only how the shape moves); sampled at `VISUAL_TAPS` instants
  `VISUAL_STEP` seconds apart around a frame;
- sound: 13 MFCC and their deltas every 10 ms, normalised over the whole utterance, the
  `AUDIO_TAPS` frames (0.2 s) around the same instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chamelaion.engine import logmel
from chamelaion.engine.faces import (
    EYE_OUTER_CORNERS,
    INNER_LOWER_LIP,
    INNER_UPPER_LIP,
    OUTER_LOWER_LIP,
    OUTER_UPPER_LIP,
)

WEIGHTS = Path(__file__).parent / "weights" / "sync.npz"

# The 40 lip landmarks: both contours, corners once.
LIP_POINTS = tuple(
    dict.fromkeys(OUTER_UPPER_LIP + OUTER_LOWER_LIP + INNER_UPPER_LIP + INNER_LOWER_LIP)
)
VISUAL_TAPS = 5
VISUAL_STEP = 0.04  # seconds between the lip shapes of a window: 5 taps span 0.16 s
SAMPLE_RATE = 16000
HOP = 160  # 10 ms
WINDOW = 400  # 25 ms
FFT_SIZE = 512
MEL_BANDS = logmel.BANDS  # the engine's mel filterbank (60 Hz to 7.6 kHz), cepstra on top
CEPSTRA = 13
AUDIO_RATE = SAMPLE_RATE / HOP
AUDIO_TAPS = 20  # 0.2 s of MFCC frames around the instant
MAX_OFFSET = 15  # frames searched either way
MIN_SCORED_FRAMES = 10
MEL_FLOOR = 1e-4


def lip_shapes(landmarks: NDArray[Any]) -> NDArray[np.float32]:
    """(frames, 80) lip contours in canonical units relative to the mouth centre, the clip's mean
    removed; NaN rows where no face was found."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    left = landmarks[:, EYE_OUTER_CORNERS[0]]
    right = landmarks[:, EYE_OUTER_CORNERS[1]]
    span = right - left
    length = np.hypot(span[:, 0], span[:, 1])
    length = np.where(length > 0, length, np.nan)
    cos, sin = span[:, 0] / length, span[:, 1] / length
    lips = landmarks[:, list(LIP_POINTS)]
    rel = lips - lips.mean(axis=1, keepdims=True)
    # Rotate by -angle (eyes level) and scale to unit eye span.
    x = (cos[:, None] * rel[..., 0] + sin[:, None] * rel[..., 1]) / length[:, None]
    y = (-sin[:, None] * rel[..., 0] + cos[:, None] * rel[..., 1]) / length[:, None]
    shapes = np.concatenate([x, y], axis=1)
    found = ~np.isnan(shapes).any(axis=1)
    if found.any():
        shapes = shapes - shapes[found].mean(axis=0)
    contours: NDArray[np.float32] = shapes.astype(np.float32)
    return contours


@cache
def _dct_matrix() -> NDArray[np.float64]:
    n = np.arange(MEL_BANDS)
    k = np.arange(CEPSTRA)[:, None]
    dct: NDArray[np.float64] = np.sqrt(2.0 / MEL_BANDS) * np.cos(
        np.pi * k * (2 * n + 1) / (2 * MEL_BANDS)
    )
    return dct


def mfcc(audio: NDArray[Any]) -> NDArray[np.float32]:
    """(frames, 26): MFCC and deltas every 10 ms (frame k centred at k * 10 ms), each column
    normalised to zero mean and unit variance over the utterance, so loudness and channel do not
    matter, only how the spectrum changes."""
    samples = np.asarray(audio, dtype=np.float64)
    count = max(1, int(np.ceil(len(samples) / HOP)))
    padded = np.pad(samples, (WINDOW // 2, WINDOW + HOP))
    window = np.hanning(WINDOW)
    out = np.empty((count, CEPSTRA))
    for start in range(0, count, 4096):  # blocks: an hour of audio never sits whole in memory
        stop = min(count, start + 4096)
        index = np.arange(WINDOW)[None, :] + HOP * np.arange(start, stop)[:, None]
        power = np.abs(np.fft.rfft(padded[index] * window, FFT_SIZE)) ** 2
        # The floor (about 80 dB under full scale) makes digital silence look like a quiet room.
        log_power = np.log(power @ logmel.filterbank().T + MEL_FLOOR)
        out[start:stop] = log_power @ _dct_matrix().T
    padded_c = np.pad(out, ((2, 2), (0, 0)), mode="edge")
    delta = (
        2 * (padded_c[4:] - padded_c[:-4]) + (padded_c[3:-1] - padded_c[1:-3])
    ) / 10.0  # regression over ±2 frames
    feats = np.concatenate([out, delta], axis=1)
    feats = (feats - feats.mean(axis=0)) / (feats.std(axis=0) + 1e-6)
    standardised: NDArray[np.float32] = feats.astype(np.float32)
    return standardised


def visual_windows(shapes: NDArray[Any], fps: float) -> NDArray[np.float32]:
    """(frames, VISUAL_TAPS * 80): for each frame, the lip shapes at VISUAL_STEP-spaced instants
    around it, interpolated between frames (so 25 and 30 fps footage give the same window in
    time); NaN where the window reaches a frame without a face or past either end."""
    n = len(shapes)
    taps = (np.arange(VISUAL_TAPS) - VISUAL_TAPS // 2) * VISUAL_STEP * fps
    pos = np.arange(n)[:, None] + taps[None, :]
    lo = np.floor(pos).astype(int)
    frac = (pos - lo)[..., None]
    inside = (lo >= 0) & (lo + 1 < n) | (lo == n - 1) & (frac[..., 0] == 0)
    lo_c = lo.clip(0, n - 1)
    hi_c = (lo + 1).clip(0, n - 1)
    out = shapes[lo_c] * (1 - frac) + shapes[hi_c] * frac
    out[~inside] = np.nan
    windows: NDArray[np.float32] = out.reshape(n, -1).astype(np.float32)
    return windows


def audio_windows(features: NDArray[Any], times: NDArray[Any]) -> NDArray[Any]:
    """(len(times), AUDIO_TAPS * 26): the MFCC frames around each instant (seconds); NaN where
    the window reaches past the audio."""
    centre = np.round(np.asarray(times) * AUDIO_RATE).astype(int)
    index = centre[:, None] + np.arange(AUDIO_TAPS)[None, :] - AUDIO_TAPS // 2
    inside = ((index >= 0) & (index < len(features))).all(axis=1)
    out: NDArray[Any] = features[index.clip(0, len(features) - 1)].reshape(len(times), -1)
    out[~inside] = np.nan
    return out


@dataclass(frozen=True)
class SyncModel:
    """The two encoders: input standardisation, then layers of (weight, bias) with ReLU between
    them, the output normalised to unit length."""

    visual_mean: NDArray[Any]
    visual_scale: NDArray[Any]
    visual_layers: tuple[tuple[NDArray[Any], NDArray[Any]], ...]
    audio_layers: tuple[tuple[NDArray[Any], NDArray[Any]], ...]

    @classmethod
    def load(cls, path: Path = WEIGHTS) -> SyncModel:
        with np.load(path) as data:
            arrays = {k: data[k].astype(np.float32) for k in data.files}

        def layers(prefix: str) -> tuple[tuple[NDArray[Any], NDArray[Any]], ...]:
            count = sum(1 for k in arrays if k.startswith(f"{prefix}_w"))
            return tuple((arrays[f"{prefix}_w{i}"], arrays[f"{prefix}_b{i}"]) for i in range(count))

        return cls(arrays["visual_mean"], arrays["visual_scale"], layers("visual"), layers("audio"))

    def embed_visual(self, windows: NDArray[Any]) -> NDArray[Any]:
        return _encode((windows - self.visual_mean) / self.visual_scale, self.visual_layers)

    def embed_audio(self, windows: NDArray[Any]) -> NDArray[Any]:
        return _encode(windows, self.audio_layers)


def _encode(x: NDArray[Any], layers: tuple[tuple[NDArray[Any], NDArray[Any]], ...]) -> NDArray[Any]:
    """NaN rows (no face, past the audio) stay NaN."""
    out = np.full((len(x), layers[-1][0].shape[1]), np.nan, np.float32)
    good = ~np.isnan(x).any(axis=1)
    h = x[good].astype(np.float32)
    for i, (w, b) in enumerate(layers):
        h = h @ w + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
    out[good] = h / (np.linalg.norm(h, axis=1, keepdims=True) + 1e-8)
    return out


@cache
def default_model() -> SyncModel:
    return SyncModel.load()


def embed_lips(landmarks: NDArray[Any], fps: float, model: SyncModel | None = None) -> NDArray[Any]:
    """(frames, dim): one face's lip embedding per frame (NaN where it is missing). The face's
    mean shape is taken over these frames: pass one face's track, not a mixture of faces."""
    return (model or default_model()).embed_visual(visual_windows(lip_shapes(landmarks), fps))


def embed_sound(
    audio: NDArray[Any],
    fps: float,
    frames: int,
    max_offset: int = MAX_OFFSET,
    model: SyncModel | None = None,
) -> NDArray[Any]:
    """(frames + 2 * max_offset, dim): the sound's embedding at video frames -max_offset ..
    frames + max_offset - 1 (NaN where the window reaches past the audio)."""
    times = np.arange(-max_offset, frames + max_offset) / fps
    return (model or default_model()).embed_audio(audio_windows(mfcc(audio), times))


def distances(
    lips: NDArray[Any], sound: NDArray[Any], max_offset: int, first: int = 0
) -> NDArray[Any]:
    """(len(lips), 2 * max_offset + 1): distance (0..2, one minus the cosine) between the lip
    embedding of video frame first + t and the sound embedding d frames later, column
    d + max_offset (`sound` as `embed_sound` gives it for the whole video, with the same
    `max_offset`); NaN where either is missing. Positive d: the sound comes after the mouth."""
    offsets = np.arange(-max_offset, max_offset + 1)
    rows = first + np.arange(len(lips))[:, None] + offsets[None, :] + max_offset
    distance: NDArray[Any] = 1.0 - np.einsum("td,tkd->tk", lips, sound[rows])
    return distance


def frame_distances(
    landmarks: NDArray[Any],
    fps: float,
    audio: NDArray[Any],
    max_offset: int = MAX_OFFSET,
    model: SyncModel | None = None,
) -> NDArray[Any]:
    """`distances` for one face's landmarks over a whole video and its audio."""
    lips = embed_lips(landmarks, fps, model)
    return distances(lips, embed_sound(audio, fps, len(landmarks), max_offset, model), max_offset)


@dataclass(frozen=True)
class SyncCurve:
    """Mean distance per offset, and what it says."""

    offsets: NDArray[Any]
    distances: NDArray[Any]  # NaN where no frame could be scored
    scored_frames: int

    @property
    def best(self) -> int:
        """Index of the smallest distance (the one nearest offset 0 among ties)."""
        order = np.lexsort((np.abs(self.offsets), np.nan_to_num(self.distances, nan=np.inf)))
        return int(order[0])

    @property
    def offset(self) -> int:
        return int(self.offsets[self.best])

    @property
    def distance(self) -> float:
        return float(self.distances[self.best])

    @property
    def confidence(self) -> float:
        """Median distance over offsets minus the smallest (SyncNet's confidence)."""
        return float(np.nanmedian(self.distances) - self.distances[self.best])


def sync_curve(distances: NDArray[Any], frames: slice | None = None) -> SyncCurve:
    """Average `frame_distances` over `frames` (all by default); offsets scored on fewer than
    MIN_SCORED_FRAMES frames are left out (NaN)."""
    block = distances[frames] if frames is not None else distances
    valid = ~np.isnan(block)
    count = valid.sum(axis=0)
    total = np.where(valid, block, 0.0).sum(axis=0)
    mean = np.where(count >= MIN_SCORED_FRAMES, total / np.maximum(count, 1), np.nan)
    half = (block.shape[1] - 1) // 2
    offsets = np.arange(-half, half + 1)
    centre = int(count[half])
    return SyncCurve(offsets, mean, centre)
