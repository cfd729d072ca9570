"""Target mouth shapes: what the new audio says, made to move as this speaker's mouth moves.

Two halves meet here:
- `SpeechTrack`: per output frame, the audio-to-mouth model's speaker-normalised shape (gap,
  width, jaw, lips; see `mouthmodel`) and whether the frame lies in a pause, where the lips
  close and rest. Only pauses count, not every quiet frame: on real speech, closing the mouth
  wherever an energy rule says "quiet" or "bilabial" lowered the correlation with the true
  mouth (0.34 -> 0.23, bench/realspeech.py clips): real lips do not follow loudness;
- `SpeakerMouth`: how the face on screen moves its mouth, read off the source video itself: its
  average shape and range while it speaks (its own speech, when the source carries any: the
  dub's original track), or a prior from real talking heads scaled to this mouth when the
  source gives nothing to learn from.

`SpeakerMouth.target` turns a normalised shape into this speaker's gap and width for one frame.
The width is added to the source frame's own slowly varying width, so a smile stays a smile
while the lips articulate; in silences the lips close and rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter1d, median_filter

from chamelaion.engine import features
from chamelaion.engine.alignment import PhoneGuide
from chamelaion.engine.geometry import GAP, WIDTH
from chamelaion.engine.mouthmodel import MouthModel

# Priors, as fractions of the mouth's width, measured on the real talking heads of
# train/footage.py (medians over clips): how far the lips part on average while talking and
# how much gap and width vary.
PRIOR_GAP_MEAN = 0.146
PRIOR_GAP_SCALE = 0.096
PRIOR_WIDTH_SCALE = 0.060
# A source "speaks" when this share of its frames is speech and its mouth moves at least this
# much (std of the gap over the mouth's width): otherwise there is nothing to learn from.
MIN_SPEECH_SHARE = 0.2
MIN_GAP_MOVEMENT = 0.02
EXPRESSION_SECONDS = 1.2  # slower than this, a width change is expression, not speech
# The speaker's own range (one standard deviation of each parameter) times this is one unit of
# the model's output. A real mouth's standard deviation is a few pixels on a small face, and the
# rendered mouth then hardly moves: on the held-out real clips of bench/realspeech.py, 1.0 gave
# r_gap 0.09 / r_width 0.12 and 2.5 gave 0.13 / 0.25 (this one constant was chosen there).
ARTICULATION_GAIN = 2.5
PAUSE_SECONDS = 0.6  # a stretch without speech at least this long is a pause: lips rest


@dataclass(frozen=True)
class SpeechTrack:
    """Per output frame: what the new audio asks of the mouth."""

    shape: NDArray[Any]  # (frames, 4) normalised mouth parameters
    closed: NDArray[np.bool_]  # bool: the frame lies in a pause

    def __len__(self) -> int:
        return len(self.closed)


def speech_track(
    samples: NDArray[Any],
    fps: float,
    frames: int,
    model: MouthModel,
    guide: PhoneGuide | None = None,
    between: Callable[[], None] | None = None,
) -> SpeechTrack:
    """The model's shapes and the pauses of `samples` (mono 16 kHz) at each output frame, its
    phone evidence sharpened by the transcript's `guide` if there is one. `between`: see
    `MouthModel.predict`."""
    # A light temporal smoothing: the model decides each frame on its own.
    predicted = model.predict(samples, fps, frames, guide, between)
    shape = gaussian_filter1d(predicted, 0.7, axis=0, mode="nearest")
    shape = _standardise(shape, fps)
    times = np.arange(frames) / fps
    half = 0.5 / fps
    speech = features.window_mean(
        features.analyze(samples).speech.astype(np.float64), times - half, times + half
    )
    return SpeechTrack(shape, _pauses(speech >= 0.5, round(PAUSE_SECONDS * fps)))


def _pauses(speech: NDArray[Any], min_frames: int) -> NDArray[Any]:
    """Frames in runs without speech of at least `min_frames` (or touching either end)."""
    pause = ~speech
    edges = np.flatnonzero(np.diff(np.concatenate([[0], pause.astype(np.int8), [0]])))
    out = np.zeros_like(pause)
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if stop - start >= min_frames or start == 0 or stop == len(pause):
            out[start:stop] = True
    return out


def _standardise(shape: NDArray[Any], fps: float) -> NDArray[Any]:
    """Each parameter z-scored over the utterance, as the model's training targets were (per
    clip): a model unsure of unfamiliar speech (a synthetic voice, a noisy line) answers with
    muted movement, and this gives the mouth its full range back. Short audio (under two
    seconds) has too few frames for the statistics and is left as predicted."""
    if len(shape) < 2 * fps:
        return shape
    std = shape.std(axis=0)
    standardised: NDArray[np.float32] = (
        (shape - shape.mean(axis=0)) / np.where(std > 1e-3, std, 1.0)
    ).astype(np.float32)
    return standardised


@dataclass(frozen=True)
class SpeakerMouth:
    """One face's mouth: average gap while talking and each parameter's range, in the face's
    canonical units, plus its width per source frame with speech movement removed."""

    gap_mean: float
    gap_scale: float
    width_scale: float
    expression_width: NDArray[Any]  # per frame of the face's track
    adapted: bool  # learned from the source's own speech (else the prior)

    def target(self, shape: NDArray[Any], closed: bool, track_frame: int) -> tuple[float, float]:
        """(gap, width) for a normalised `shape` on track frame `track_frame`."""
        motion = ARTICULATION_GAIN * shape
        width = self.expression_width[track_frame] + self.width_scale * float(motion[WIDTH])
        gap = 0.0 if closed else max(0.0, self.gap_mean + self.gap_scale * float(motion[GAP]))
        return gap, max(width, 1e-6)


def speaker_mouth(
    params: NDArray[Any], found: NDArray[Any], fps: float, speaks: bool
) -> SpeakerMouth:
    """This face's mouth from its track's `params` (frames, 4; `geometry.mouth_params` of the
    smoothed canonical shapes). `speaks`: the source's sound has speech in it."""
    gap, width = params[found, GAP], params[found, WIDTH]
    typical_width = float(np.median(width))
    expression = np.full(len(params), typical_width)
    size = max(3, round(EXPRESSION_SECONDS * fps) | 1)
    expression[found] = median_filter(width, size=size, mode="nearest")
    expression[found] = gaussian_filter1d(expression[found], size / 6, mode="nearest")
    moving = float(np.std(gap)) >= MIN_GAP_MOVEMENT * typical_width
    if speaks and moving and len(gap) >= fps:
        return SpeakerMouth(
            float(np.mean(gap)),
            float(np.std(gap)),
            float(np.std(width - expression[found])) or PRIOR_WIDTH_SCALE * typical_width,
            expression,
            True,
        )
    return SpeakerMouth(
        PRIOR_GAP_MEAN * typical_width,
        PRIOR_GAP_SCALE * typical_width,
        PRIOR_WIDTH_SCALE * typical_width,
        expression,
        False,
    )
