from __future__ import annotations

from typing import TypedDict

from .._files import FileTypes
from .lipsync_generate_params import ModelName, SpeakerPoint, SyncMode

__all__ = ["LipsyncGenerateWithMediaParams"]


class _RequiredUploadParams(TypedDict):
    # Required keys live in a total base class (typing.Required needs Python 3.11).
    video: FileTypes
    """Source video file."""

    audio: FileTypes
    """Target audio file."""


class LipsyncGenerateWithMediaParams(_RequiredUploadParams, total=False):
    disable_active_speaker_detection: bool
    model: ModelName
    reference_id: str
    sync_mode: SyncMode
    webhook_url: str
    transcript: str
    transcript_language: str
    speaker: SpeakerPoint
