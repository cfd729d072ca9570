"""Audio-to-mouth models: speech in, one mouth shape per video frame out.

`MouthModel` is the seam: anything that turns mono 16 kHz speech into speaker-normalised mouth
parameters (the columns of `geometry.mouth_params`, each z-scored: 0 is this speaker's average,
1 one standard deviation of their own movement) for given video frame times. The request's
`model` field names the one to use (one of `options.MODELS`); the engine adapts the normalised
track to the speaker at hand (see `mouth`).

"lipsync-2" averages two regressors trained on real talking heads by train/articulation.py, a
small dilated convolution network and a ridge regression, over the same input: log-mel speech
(engine/logmel.py) and articulator tracks (engine/phonetics.py) derived from phone posteriors
(engine/phones.py). Its weights ship in the package (weights/lipsync2.npz, data card
weights/lipsync2.md) and run here in numpy: no download, no deep-learning runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

from chamelaion.engine import logmel, phones, phonetics
from chamelaion.engine.options import DEFAULT_MODEL
from chamelaion.engine.options import MODELS as MODELS  # the registry's names, re-exported

if TYPE_CHECKING:
    from chamelaion.engine.alignment import PhoneGuide


def speech_evidence(
    samples: NDArray[Any],
    guide: PhoneGuide | None = None,
    between: Callable[[], None] | None = None,
) -> NDArray[Any]:
    """(frames, BANDS + tokens) at 100 frames a second: normalised log-mel, then phone
    posteriors, sharpened by the transcript's `guide` when there is one (same shape, same
    scale: the model's input does not change with it). The slow part of `speech_features`
    (phone recognition), which training caches. `between`: see `phones.posterior_pieces`."""
    mel = logmel.normalise(logmel.log_mel(samples))
    posteriors = phones.phone_posteriors(samples, between)[: len(mel)]
    if guide is not None:
        posteriors = guide.sharpen(posteriors)
    return np.concatenate([mel, posteriors], axis=1)


def model_inputs(evidence: NDArray[Any]) -> NDArray[Any]:
    """(frames, BANDS + articulators): the log-mel of `speech_evidence`, then its posteriors as
    `phonetics.articulators` tracks."""
    mel = evidence[:, : logmel.BANDS]
    return np.concatenate([mel, phonetics.articulators(evidence[:, logmel.BANDS :])], axis=1)


def speech_features(
    samples: NDArray[Any],
    guide: PhoneGuide | None = None,
    between: Callable[[], None] | None = None,
) -> NDArray[Any]:
    """The model's input for mono 16 kHz `samples`; the training script calls this very code."""
    return model_inputs(speech_evidence(samples, guide, between))


class MouthModel(Protocol):
    @property
    def name(self) -> str: ...

    def predict(
        self,
        samples: NDArray[Any],
        fps: float,
        frames: int,
        guide: PhoneGuide | None = None,
        between: Callable[[], None] | None = None,
    ) -> NDArray[np.float32]:
        """(frames, 4) normalised mouth parameters for video frames at k / fps seconds of
        `samples` (mono, 16 kHz); frames past the audio's end get the model's silence. A
        transcript's `guide`, when given, sharpens the phone evidence and records its outcome
        in `guide.notes`. `between`, when given, is called between pieces of a long audio (a
        few seconds of work apart) and may raise to give the prediction up: a cancelled job
        stops here rather than after an hour's audio was recognised."""
        ...


class Regressor(Protocol):
    def track(self, inputs: NDArray[Any]) -> NDArray[Any]:
        """(T, P) mouth parameters, each with unit spread on training speech, from (T, F)
        `speech_features` rows (100 a second)."""
        ...


@dataclass(frozen=True)
class ConvolutionalRegressor:
    """A stack of dilated 1-D convolutions (GELU between), then a per-frame linear head."""

    weights: tuple[
        tuple[NDArray[Any], NDArray[Any], int], ...
    ]  # (out, in, k) kernel, bias, dilation
    head: tuple[NDArray[Any], NDArray[Any]]  # (P, C), (P,)
    output_scale: NDArray[Any]  # (P,) undoes the regression's shrinkage towards the mean

    def track(self, inputs: NDArray[Any]) -> NDArray[Any]:
        hidden = self._body(inputs.T)
        tracked: NDArray[Any] = (
            self.head[0] @ hidden + self.head[1][:, None]
        ).T * self.output_scale
        return tracked

    def _body(self, x: NDArray[Any]) -> NDArray[Any]:
        """(C, T) -> (C', T): 'same' convolutions, one matrix product per kernel tap."""
        for kernel, bias, dilation in self.weights:
            taps = kernel.shape[2]
            pad = dilation * (taps // 2)
            padded = np.pad(x, ((0, 0), (pad, pad)))
            t = x.shape[1]
            y = np.repeat(bias[:, None], t, axis=1)
            for k in range(taps):
                y += kernel[:, :, k] @ padded[:, k * dilation : k * dilation + t]
            x = _gelu(y)
        return x


def in_context(inputs: NDArray[Any], frames: NDArray[Any], offsets: NDArray[Any]) -> NDArray[Any]:
    """(len(frames), len(offsets) * F): the rows of `inputs` (T, F) at each of `frames` plus
    each offset, side by side; rows before the start or past the end repeat the edge one."""
    rows = np.clip(frames[:, None] + offsets[None, :], 0, len(inputs) - 1)
    rows_in_context: NDArray[Any] = inputs[rows].reshape(len(frames), -1)
    return rows_in_context


@dataclass(frozen=True)
class LinearRegressor:
    """Ridge regression over the features at a few fixed offsets around each frame: fewer ways
    to overfit three minutes of speech than the network, and it errs differently, so the two
    together beat either (weights/lipsync2.md)."""

    offsets: NDArray[Any]  # (K,) feature frames relative to the predicted one
    mean: NDArray[Any]  # (K * F,) standardisation of the stacked features
    std: NDArray[Any]
    weights: NDArray[Any]  # (K * F, P)
    output_scale: NDArray[Any]  # (P,)

    def track(self, inputs: NDArray[Any]) -> NDArray[Any]:
        stacked = in_context(inputs, np.arange(len(inputs)), self.offsets)
        tracked: NDArray[Any] = (
            ((stacked - self.mean) / self.std) @ self.weights * self.output_scale
        )
        return tracked


@dataclass(frozen=True)
class EnsembleMouthModel:
    """Speech features computed once, the members' tracks averaged, sampled at video frames
    `delay` seconds after the sound that shapes them.

    The delay is measured, not assumed. Footage sources disagree on sound-to-picture timing by
    up to a quarter of a second, so training pairs each clip's frames with the sound its own
    measured lag earlier (one timing for the whole training set), and the delay is how much
    later the mouth of footage the model never learned from follows that timing
    (train/articulation.py measures it on the validation clips and stores it with the
    weights)."""

    name: str
    members: tuple[Regressor, ...]
    delay: float = 0.0  # seconds

    def track(self, inputs: NDArray[Any]) -> NDArray[Any]:
        """The members' tracks averaged, at the input's 100 frames a second (no delay)."""
        mean_track: NDArray[Any] = np.mean(
            [member.track(inputs) for member in self.members], axis=0
        )
        return mean_track

    def predict(
        self,
        samples: NDArray[Any],
        fps: float,
        frames: int,
        guide: PhoneGuide | None = None,
        between: Callable[[], None] | None = None,
    ) -> NDArray[Any]:
        # A transcript is aligned over the whole utterance's posteriors: that takes them whole.
        out = (
            self.track_speech(samples, between)
            if guide is None
            else self.track(speech_features(samples, guide, between))
        )
        times = np.arange(frames) / fps - self.delay
        index = np.round(times * logmel.FRAME_RATE).astype(int)
        at_frames: NDArray[np.float32] = out[np.clip(index, 0, len(out) - 1)].astype(np.float32)
        return at_frames

    def track_speech(
        self, samples: NDArray[Any], between: Callable[[], None] | None = None
    ) -> NDArray[Any]:
        """`track(speech_features(samples))`, a phone recogniser run at a time: memory stays
        flat however long the audio (the phone posteriors, and the features of every offset
        the ridge stacks, about 0.5 MB a second together, held for an hour-long dub, did not).
        Both members see `CONTEXT_SECONDS` around each piece, far more than they reach, so the
        track is the same as in one go. The log-mel (and its normalisation over the whole
        utterance) is still computed whole: 16 KB a second. `between` is called before each
        recogniser run (`phones.posterior_pieces`)."""
        mel = logmel.normalise(logmel.log_mel(samples))
        total = len(mel)
        context = CONTEXT_SECONDS * logmel.FRAME_RATE
        step = int(phones.CHUNK_SECONDS * logmel.FRAME_RATE)
        pieces = phones.posterior_pieces(samples, between)
        held, held_from = next(pieces), 0  # posteriors of rows held_from onwards
        tracked = []
        for start in range(0, total, step):
            stop = min(start + step, total)
            lo, hi = max(0, start - context), min(total, stop + context)
            while held_from + len(held) < hi:
                held = np.concatenate([held, next(pieces)])
            held, held_from = held[lo - held_from :], lo
            evidence = np.concatenate([mel[lo:hi], held[: hi - lo]], axis=1)
            tracked.append(self.track(model_inputs(evidence))[start - lo : stop - lo])
        return np.concatenate(tracked)


CONTEXT_SECONDS = 2  # each side of a piece: the network reaches 0.32 s, the ridge 0.2 s


def _gelu(x: NDArray[Any]) -> NDArray[np.float32]:
    """GELU as torch computes it by default (the exact, erf-based form)."""
    from scipy.special import erf

    activated: NDArray[np.float32] = (0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))).astype(np.float32)
    return activated


def load_model(path: str | Path) -> EnsembleMouthModel:
    """The members stored in one weights file: `conv{i}_w/_b`, `head_w/_b`, `output_scale` and
    `dilations` of the network; `linear_*` of the ridge regression and the measured
    `delay_seconds`, if present."""
    with np.load(path) as data:
        dilations = [int(d) for d in data["dilations"]]
        layers = tuple((data[f"conv{i}_w"], data[f"conv{i}_b"], d) for i, d in enumerate(dilations))
        members: list[Regressor] = [
            ConvolutionalRegressor(layers, (data["head_w"], data["head_b"]), data["output_scale"])
        ]
        if "linear_weights" in data:
            members.append(
                LinearRegressor(
                    data["linear_offsets"],
                    data["linear_mean"],
                    data["linear_std"],
                    data["linear_weights"],
                    data["linear_output_scale"],
                )
            )
        delay = float(data["delay_seconds"]) if "delay_seconds" in data else 0.0
        return EnsembleMouthModel(DEFAULT_MODEL, tuple(members), delay)


@cache
def _shipped(name: str) -> MouthModel:
    weights = resources.files("chamelaion.engine") / "weights" / "lipsync2.npz"
    with resources.as_file(weights) as path:
        return load_model(path)


def get_model(name: str = DEFAULT_MODEL) -> MouthModel:
    """The named model, loaded once per process."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(MODELS)}")
    return _shipped(name)
