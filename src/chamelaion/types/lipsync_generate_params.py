from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, TypedDict

import typing_extensions

__all__ = ["Input", "LipsyncGenerateParams", "ModelName", "SpeakerPoint", "SyncMode"]

ModelName = Literal["lipsync-2"]
"""The models the service offers."""

SyncMode = Literal["cut_off", "loop", "bounce", "silence", "remap"]
"""What to do when the audio and the video differ in length."""


class Input(TypedDict):
    type: Literal["video", "audio"]
    """Type of input media."""

    url: str
    """Absolute http(s) URL of the media."""


# typing_extensions' TypedDict (pydantic's own dependency): the request object carries this
# type too, and pydantic reads a TypedDict field only from typing_extensions before 3.12.
class SpeakerPoint(typing_extensions.TypedDict):
    """The person to re-animate, pointed at: a point on their face in one source frame."""

    frame: int
    """The source video's frame (0-based, at its own frame rate)."""

    x: float
    """From the left edge, as a fraction (0-1) of the picture's width."""

    y: float
    """From the top edge, as a fraction (0-1) of the picture's height."""


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
    speaker: SpeakerPoint
