"""Sync scorer benchmark, on real clips of speakers it was never trained on.

    python bench/sync.py

Prints, for the held-out clips of `train/footage.py`:
- tracking: each clip's own audio delayed by -6, -3, +3, +6 frames; the share of cases where the
  estimated offset moves by the shift, within ±1 frame (target >= 90 %);
- separation: each clip scored against every other clip's speech; the share of pairs where its
  own speech gets the higher confidence (target >= 90 %), and the confidences;
- speed: `chamelaion eval` end to end (decoding, face mesh, features, scoring) on the 512x512
  held-out clips, as a fraction of their duration (target < 0.5).
The accuracy figures use the cached landmarks (the same face mesh as `eval`); the speed figure
runs everything from the video file.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "train"))

import footage  # noqa: E402
from heldout import held_out_figures  # noqa: E402

from chamelaion.engine import media  # noqa: E402
from chamelaion.engine.score import sync_score  # noqa: E402


def speed(clip: footage.Clip) -> str:
    info = media.probe(clip.path)
    start = time.perf_counter()
    score = sync_score(clip.path)
    wall = time.perf_counter() - start
    return (
        f"{clip.name}: {info.width}x{info.height}, {info.duration:.1f} s -> {wall:.1f} s "
        f"({wall / info.duration:.2f}x real time; offset {score.offset_frames:+d}, "
        f"confidence {score.confidence:.3f})"
    )


def main() -> None:
    print(f"date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.processor() or '?'}, "
        f"python {platform.python_version()}"
    )
    figures = held_out_figures()
    print("\nheld-out clips (offset and confidence with the clip's own audio):")
    print("\n".join(f"  {line}" for line in figures.lines))
    print(
        f"\ntracking: offset moved by the shift ±1 in {figures.tracked}/{figures.shifted_cases} "
        f"cases = {figures.tracking:.1%} (target >= 90 %)"
    )
    own, other = np.array(figures.own_confidence), np.array(figures.other_confidence)
    print(
        f"separation: own speech more confident than another clip's in "
        f"{figures.own_wins}/{figures.pairs} pairs = {figures.separation:.1%} (target >= 90 %)"
    )
    print(
        f"  confidence, own speech: median {np.median(own):.3f}, min {own.min():.3f}; "
        f"other speech: median {np.median(other):.3f}, max {other.max():.3f}"
    )
    print("\nspeed, `chamelaion eval` end to end (target < 0.5x real time at 512x512):")
    for clip in footage.held_out_clips():
        info = media.probe(clip.path)
        if (info.width, info.height) == (512, 512):
            print(f"  {speed(clip)}")


if __name__ == "__main__":
    main()
