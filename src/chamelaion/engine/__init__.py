"""The lip-sync engine: re-animates a speaker's mouth to new audio, on CPU.

from chamelaion.engine import lipsync, LipsyncOptions
lipsync("talk.mp4", "dub.wav", "out.mp4", LipsyncOptions(), progress=print)

The pipeline (mediapipe, OpenCV, PyAV) is imported on first use of `lipsync` or
`LipsyncResult`, not with the package: the API process reads `chamelaion.engine.options` (the
one source of the job options) and must not pay for the engine to do so.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from chamelaion.engine.errors import (
    EmptyMediaError,
    EngineError,
    HdrVideoError,
    InputTooLargeError,
    InvalidMediaError,
    NoAudioStreamError,
    NoFaceError,
    NoVideoStreamError,
    SpeakerPointError,
    StillImageError,
    TooLongError,
    TooManyPixelsError,
    TranscriptError,
    TranscriptTooLongError,
)
from chamelaion.engine.options import (
    LipsyncOptions,
    Progress,
    ProgressCallback,
    SpeakerPoint,
    SyncMode,
)

if TYPE_CHECKING:
    from chamelaion.engine.pipeline import LipsyncResult, lipsync

__all__ = [
    "EmptyMediaError",
    "EngineError",
    "HdrVideoError",
    "InputTooLargeError",
    "InvalidMediaError",
    "LipsyncOptions",
    "LipsyncResult",
    "NoAudioStreamError",
    "NoFaceError",
    "NoVideoStreamError",
    "Progress",
    "ProgressCallback",
    "SpeakerPoint",
    "SpeakerPointError",
    "StillImageError",
    "SyncMode",
    "TooLongError",
    "TooManyPixelsError",
    "TranscriptError",
    "TranscriptTooLongError",
    "lipsync",
]

_FROM_PIPELINE = ("LipsyncResult", "lipsync")


def __getattr__(name: str) -> Any:
    if name in _FROM_PIPELINE:
        return getattr(importlib.import_module("chamelaion.engine.pipeline"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
