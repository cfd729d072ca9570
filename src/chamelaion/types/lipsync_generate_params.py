from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, TypedDict

__all__ = ["Input", "LipsyncGenerateParams", "ModelName", "SyncMode"]

ModelName = Literal["lipsync-2"]
"""The models the service offers."""

SyncMode = Literal["cut_off", "loop", "bounce", "silence", "remap"]
"""What to do when the audio and the video differ in length."""


class Input(TypedDict):
    type: Literal["video", "audio"]
    """Type of input media."""

    url: str
    """Absolute http(s) URL of the media."""


class _RequiredGenerateParams(TypedDict):
    # Required keys live in a total base class (typing.Required needs Python 3.11).
    inputs: Iterable[Input]
    """Exactly one video input and one audio input (order does not matter)."""


class LipsyncGenerateParams(_RequiredGenerateParams, total=False):
    disable_active_speaker_detection: bool
    reference_id: str
    model: ModelName
    sync_mode: SyncMode
    webhook_url: str
    transcript: str
    transcript_language: str
