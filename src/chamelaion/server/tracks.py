"""The output's mouth track: what the Studio plots to show how the mouth follows the sound.

Written by the worker beside the output as a small JSON document and served as it is by
`GET /v1/lipsync/requests/{id}/mouth`:

    {"fps": 25.0,
     "opening": [0.31, 0.28, null, ...],          # per output frame, lip gap / mouth width
     "waveform": {"rate": 50, "peaks": [0.0, 0.42, ...]}}   # the output's sound, |peak| per bin

`opening` is null where no face was re-animated. Both series start at the output's first frame,
so they share one time axis. Like the sync score, the track is information about an output, never
a reason to fail a job that rendered.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger("chamelaion.worker")

PEAKS_PER_SECOND = 50  # enough for a plot a few thousand pixels wide over a minute
_PEAK_SAMPLE_RATE = 8000  # the envelope needs no more


def mouth_track(fps: float, opening: NDArray[Any], output: Path) -> dict[str, Any] | None:
    """The track of a rendered `output`, or None if its sound cannot be read."""
    from chamelaion.engine import EngineError
    from chamelaion.engine.media import read_audio

    try:
        samples = read_audio(output, _PEAK_SAMPLE_RATE, with_video=True)
    except EngineError as exc:
        log.warning("%s: no mouth track: %s", output.name, exc)
        return None
    return {
        "fps": fps,
        "opening": [None if math.isnan(v) else round(float(v), 4) for v in opening],
        "waveform": {"rate": PEAKS_PER_SECOND, "peaks": _peaks(samples)},
    }


def _peaks(samples: NDArray[Any]) -> list[float]:
    """The largest absolute sample in each 1/PEAKS_PER_SECOND s bin (the last may be short)."""
    size = _PEAK_SAMPLE_RATE // PEAKS_PER_SECOND
    padded = np.pad(np.abs(samples), (0, -len(samples) % size))
    return [round(float(v), 3) for v in padded.reshape(-1, size).max(axis=1)]


def write_track(path: Path, track: dict[str, Any]) -> None:
    """Written whole under a temporary name, then renamed: a reader never sees a part."""
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    draft.write_text(json.dumps(track, separators=(",", ":")))
    os.replace(draft, path)
