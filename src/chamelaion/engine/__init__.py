"""The lip-sync engine: re-animates a speaker's mouth to new audio, on CPU.

from chamelaion.engine import lipsync, LipsyncOptions
lipsync("talk.mp4", "dub.wav", "out.mp4", LipsyncOptions(), progress=print)
"""

from chamelaion.engine.errors import (
    EmptyMediaError,
    EngineError,
    InputTooLargeError,
    InvalidMediaError,
    NoAudioStreamError,
    NoFaceError,
    NoVideoStreamError,
)
from chamelaion.engine.options import LipsyncOptions, Progress, ProgressCallback, SyncMode
from chamelaion.engine.pipeline import LipsyncResult, lipsync

__all__ = [
    "EmptyMediaError",
    "EngineError",
    "InputTooLargeError",
    "InvalidMediaError",
    "LipsyncOptions",
    "LipsyncResult",
    "NoAudioStreamError",
    "NoFaceError",
    "NoVideoStreamError",
    "Progress",
    "ProgressCallback",
    "SyncMode",
    "lipsync",
]
