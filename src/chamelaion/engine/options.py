"""What a caller can ask of the engine, and what it reports back while it works.

This module is the one source of the job options (sync modes, model names, caps): the HTTP
service's request schemas and upload parser, the CLI's choices and the mouth model registry
all derive from it, and tests hold the SDK's literal copies to it. It imports nothing heavy,
so the API process (and `chamelaion --help`) can read it without loading the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


class SyncMode(str, Enum):
    """How to reconcile a video and an audio of different durations."""

    CUT_OFF = "cut_off"  # output lasts as long as the shorter input
    LOOP = "loop"  # video restarts until the audio ends
    BOUNCE = "bounce"  # video plays forward, then backward, until the audio ends
    SILENCE = "silence"  # the whole video; audio padded with silence (mouth closed there)
    REMAP = "remap"  # video time-stretched to the audio's length


DEFAULT_MODEL = "lipsync-2"
MODELS: tuple[str, ...] = (DEFAULT_MODEL,)
"""The audio-to-mouth models the engine ships (`mouthmodel.get_model` loads them)."""

MAX_PIXELS = 3840 * 2160
MAX_DURATION_S = 30 * 60.0
MAX_TRANSCRIPT_CHARS = 20_000  # about 20 minutes of speech; bounds the alignment's work
DEFAULT_TRANSCRIPT_LANGUAGE = "en"


@dataclass(frozen=True)
class SpeakerPoint:
    """The person to re-animate, pointed at: a point on their face in one source frame.

    `frame` is the source video's frame index (0-based, at the rate the engine reads it);
    `x` and `y` are fractions (0..1) of the displayed picture's width and height, from its
    top-left corner. The face there is followed through its shot and, where the same person is
    recognised in other shots, there too (`engine/identity.py`).
    """

    frame: int
    x: float
    y: float

    def problem(self) -> str | None:
        """What is wrong with the point itself (before any video is seen), or None."""
        if self.frame < 0:
            return f"speaker frame must be 0 or more, not {self.frame}"
        for name, value in (("x", self.x), ("y", self.y)):
            if not 0.0 <= value <= 1.0:  # also refuses NaN
                return f"speaker {name} must be a fraction of the picture from 0 to 1, not {value}"
        return None


@dataclass(frozen=True)
class LipsyncOptions:
    sync_mode: SyncMode = SyncMode.CUT_OFF
    # True: find who speaks in the source and re-animate that face. False: the largest face.
    active_speaker_detection: bool = True
    # The person to re-animate, pointed at; overrides `active_speaker_detection` when given.
    speaker: SpeakerPoint | None = None
    # The audio-to-mouth model, one of `MODELS`.
    model: str = DEFAULT_MODEL
    # What the new audio says, if known (a dub's script): its phones, aligned to the audio,
    # sharpen the phone evidence (engine/alignment.py). Its language is a BCP-47-like tag,
    # read with espeak-ng's voice for it (engine/transcript.py; none: a note, not an error).
    transcript: str | None = None
    transcript_language: str = DEFAULT_TRANSCRIPT_LANGUAGE
    # Caps that protect the machine; an input over one fails with InputTooLargeError.
    max_pixels: int = MAX_PIXELS
    max_duration_s: float = MAX_DURATION_S
    # H.264 settings, shared with the benchmark's transcode floor.
    crf: int = 18
    preset: str = "veryfast"


@dataclass(frozen=True)
class Progress:
    """One progress report: `stage` is "analysis" or "render"."""

    stage: str
    frames_done: int
    frames_total: int
    frames_per_second: float

    @property
    def fraction(self) -> float:
        """Overall completion in [0, 1]: analysis counts for the first third, render the rest."""
        within = self.frames_done / self.frames_total if self.frames_total else 0.0
        if self.stage == "analysis":
            return min(1.0, within) / 3.0
        return 1.0 / 3.0 + 2.0 / 3.0 * min(1.0, within)


ProgressCallback = Callable[[Progress], None]
