"""Errors the engine raises. Each carries a message fit to show a user as is.

The job service stores `str(error)` as the request's `error_message`, and the CLI prints it, so
every message names the input at fault and what is wrong with it, never an internal detail.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base class: the lip-sync could not be produced from these inputs."""


class InvalidMediaError(EngineError):
    """A file could not be opened or decoded (not media, truncated, unsupported codec)."""


class NoVideoStreamError(InvalidMediaError):
    """The video input has no video stream."""


class NoAudioStreamError(InvalidMediaError):
    """The audio input has no audio stream."""


class EmptyMediaError(InvalidMediaError):
    """An input decodes to zero frames or zero samples."""


class StillImageError(InvalidMediaError):
    """The video input is a single picture (a PNG or JPEG, or a one-frame video)."""


class HdrVideoError(InvalidMediaError):
    """The video input is HDR (PQ or HLG transfer): the engine renders and encodes 8-bit SDR,
    and HDR pictures shown as SDR without tone mapping look wrong, so they are refused."""


class InputTooLargeError(EngineError):
    """An input exceeds a configured cap (pixels, duration)."""


class TooManyPixelsError(InputTooLargeError):
    """The video's picture is larger than `LipsyncOptions.max_pixels`."""


class TooLongError(InputTooLargeError):
    """An input lasts longer than `LipsyncOptions.max_duration_s`."""


class NoFaceError(EngineError):
    """No face was found in any frame of the video."""

    def __init__(self, message: str = "no face detected in video") -> None:
        super().__init__(message)


class SpeakerPointError(EngineError):
    """The `speaker` point cannot be used: outside the picture, past the video's last frame,
    or with no face at or near it in its frame."""


class TranscriptError(EngineError):
    """A transcript that cannot be used as given: its language has no espeak-ng voice here
    (`transcript.resolve_language`; the pipeline notes it and goes on), or it is too long."""


class TranscriptTooLongError(TranscriptError):
    """A transcript longer than `options.MAX_TRANSCRIPT_CHARS`."""
