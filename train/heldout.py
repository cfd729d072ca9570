"""Held-out figures of the sync scorer: the procedure `train/sync.py` reports after training and
`bench/sync.py` prints, on the cached landmarks of clips whose speakers were never trained on.

- tracking: each clip's own audio delayed by -6, -3, +3, +6 frames must move the estimated offset
  by as much, within ±1 frame, relative to the unshifted estimate (a clip's true offset is not
  known, so the change is what is judged);
- separation: each clip's own speech must get a higher confidence than every other held-out
  clip's speech (repeated or cut to the clip's length) on the same face.
"""

from __future__ import annotations

from dataclasses import dataclass

import footage
import numpy as np
from numpy.typing import NDArray

from chamelaion.engine import media, sync

SHIFTS = (-6, -3, 0, 3, 6)


def shifted(audio: NDArray[np.float32], frames: int, fps: float) -> NDArray[np.float32]:
    """`audio` delayed by `frames` video frames (negative: advanced), its length kept."""
    n = round(abs(frames) * media.ANALYSIS_SAMPLE_RATE / fps)
    if frames >= 0:
        delayed: NDArray[np.float32] = np.concatenate([np.zeros(n, np.float32), audio])
        return delayed[: len(audio)]
    return np.concatenate([audio[n:], np.zeros(n, np.float32)])


def fitted(audio: NDArray[np.float32], seconds: float) -> NDArray[np.float32]:
    """`audio` repeated or cut to `seconds`."""
    return np.resize(audio, round(seconds * media.ANALYSIS_SAMPLE_RATE)).astype(np.float32)


@dataclass(frozen=True)
class Figures:
    tracked: int  # (clip, shift) cases where the offset moved by the shift ±1
    shifted_cases: int
    own_wins: int  # (clip, other speech) pairs where the clip's own speech is more confident
    pairs: int
    own_confidence: list[float]  # per clip
    other_confidence: list[float]  # per pair
    lines: list[str]  # per clip: offset, confidence, distance, offset changes per shift

    @property
    def tracking(self) -> float:
        return self.tracked / self.shifted_cases

    @property
    def separation(self) -> float:
        return self.own_wins / self.pairs


def held_out_figures(model: sync.SyncModel | None = None) -> Figures:
    loaded = [footage.load(c) for c in footage.held_out_clips()]

    def curve(f: footage.Footage, audio: NDArray[np.float32]) -> sync.SyncCurve:
        return sync.sync_curve(sync.frame_distances(f.landmarks, f.fps, audio, model=model))

    lines, tracked, cases = [], 0, 0
    own: list[float] = []
    for f in loaded:
        curves = {s: curve(f, shifted(f.audio, s, f.fps)) for s in SHIFTS}
        base = curves[0].offset
        moved = {s: curves[s].offset - base for s in SHIFTS if s}
        tracked += sum(abs(m - s) <= 1 for s, m in moved.items())
        cases += len(moved)
        own.append(curves[0].confidence)
        lines.append(
            f"{f.clip.name:30s} {f.seconds:5.1f} s  offset {base:+3d}  "
            f"confidence {curves[0].confidence:.3f}  distance {curves[0].distance:.3f}  "
            "shift->moved " + " ".join(f"{s:+d}->{m:+d}" for s, m in moved.items())
        )
    wins, pairs = 0, 0
    other: list[float] = []
    for i, f in enumerate(loaded):
        for j, g in enumerate(loaded):
            if i != j:
                other.append(curve(f, fitted(g.audio, f.seconds)).confidence)
                wins += own[i] > other[-1]
                pairs += 1
    return Figures(tracked, cases, wins, pairs, own, other, lines)
