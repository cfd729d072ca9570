from __future__ import annotations

from typing import TypedDict

from .._files import FileTypes
from .lipsync_generate_params import ModelName, SyncMode

__all__ = ["LipsyncGenerateWithMediaParams"]


class LipsyncGenerateWithMediaParams(TypedDict, total=False):
    video: FileTypes
    """Source video file. Required."""

    audio: FileTypes
    """Target audio file. Required."""

    disable_active_speaker_detection: bool
    model: ModelName
    reference_id: str
    sync_mode: SyncMode
