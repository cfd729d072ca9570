"""Which source frame each output frame shows, for each `SyncMode`, and how to deliver them.

The plan is an array: `plan[i]` is the source frame shown at output frame i. Delivery decodes
as little as it can: forward stretches stream from one seek, backward stretches (bounce) are
decoded in windows that fit a memory budget and played in reverse.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chamelaion.engine.media import PictureFormat, read_frames
from chamelaion.engine.options import SyncMode

REVERSE_WINDOW_BYTES = 192 * 1024 * 1024


def plan_frames(
    mode: SyncMode, video_frames: int, fps: Fraction, audio_seconds: float
) -> NDArray[np.integer[Any]]:
    """Source frame index for every output frame."""
    audio_frames = max(1, math.ceil(audio_seconds * float(fps) - 1e-6))
    v = video_frames
    if mode is SyncMode.CUT_OFF:
        return np.arange(min(v, audio_frames))
    if mode is SyncMode.SILENCE:
        return np.arange(v)
    i = np.arange(audio_frames)
    if mode is SyncMode.LOOP:
        return i % v
    if mode is SyncMode.BOUNCE:
        if v == 1:
            return np.zeros(audio_frames, dtype=int)
        period = 2 * v - 2
        k = i % period
        return np.where(k < v, k, period - k)
    if mode is SyncMode.REMAP:
        if audio_frames == 1:
            return np.zeros(1, dtype=int)
        nearest: NDArray[np.integer[Any]] = np.floor(i * (v - 1) / (audio_frames - 1) + 0.5).astype(
            int
        )
        return nearest
    raise ValueError(f"unknown sync mode {mode!r}")


def _runs(plan: NDArray[Any]) -> Iterator[tuple[int, int, bool]]:
    """(start, stop, forward) stretches of the plan: non-decreasing or strictly decreasing."""
    start = 0
    n = len(plan)
    while start < n:
        stop = start + 1
        if stop < n and plan[stop] < plan[start]:
            while stop < n and plan[stop] < plan[stop - 1]:
                stop += 1
            yield start, stop, False
        else:
            while stop < n and plan[stop] >= plan[stop - 1]:
                stop += 1
            yield start, stop, True
        start = stop


def deliver(
    path: str | Path,
    fps: Fraction,
    plan: NDArray[Any],
    frame_bytes: int,
    picture: PictureFormat | None = None,
) -> Iterator[NDArray[Any]]:
    """Yield the source frames named by `plan`, in order, as `picture` makes them (see
    `media.read_frames`); `frame_bytes` is the size of one."""
    for start, stop, forward in _runs(plan):
        wanted = plan[start:stop]
        if forward:
            yield from _forward(path, fps, wanted, picture)
        else:
            window = max(4, REVERSE_WINDOW_BYTES // max(frame_bytes, 1))
            yield from _backward(path, fps, wanted, window, picture)


def _forward(
    path: str | Path, fps: Fraction, wanted: NDArray[Any], picture: PictureFormat | None
) -> Iterator[NDArray[Any]]:
    frames = read_frames(path, fps, start=int(wanted[0]), picture=picture)
    index = int(wanted[0])
    current = next(frames, None)
    last = current
    for target in wanted:
        while index < target and current is not None:
            current = next(frames, None)
            index += 1
            last = current if current is not None else last
        if last is None:
            return
        yield last


def _backward(
    path: str | Path,
    fps: Fraction,
    wanted: NDArray[Any],
    window: int,
    picture: PictureFormat | None,
) -> Iterator[NDArray[Any]]:
    """`wanted` strictly decreasing: decode windows of ascending frames, emit them reversed."""
    position = 0
    while position < len(wanted):
        chunk = wanted[position : position + window]
        low, high = int(chunk[-1]), int(chunk[0])
        held = {}
        for index, frame in zip(
            range(low, high + 1), read_frames(path, fps, start=low, picture=picture), strict=False
        ):
            held[index] = frame
        if not held:
            return
        for target in chunk:
            # A frame the decoder could not deliver (truncated file) shows its nearest neighbour.
            nearest = min(held, key=lambda k: abs(k - int(target)))
            yield held[nearest]
        position += window
