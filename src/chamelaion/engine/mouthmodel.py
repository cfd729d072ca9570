"""Audio-to-mouth models: speech in, one mouth shape per video frame out.

`MouthModel` is the seam: anything that turns mono 16 kHz speech into speaker-normalised mouth
parameters (the columns of `geometry.mouth_params`, each z-scored: 0 is this speaker's average,
1 one standard deviation of their own movement) for given video frame times. The request's
`model` field names the one to use (one of `options.MODELS`); the engine adapts the normalised
track to the speaker at hand (see `adapt`).

"lipsync-2" is a small dilated convolution network over log-mel speech (engine/logmel.py) and
phone posteriors (engine/phones.py), trained on real talking heads by train/articulation.py;
its weights ship in the package (weights/lipsync2.npz, data card weights/lipsync2.md) and run
here in numpy: no download, no deep-learning runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Protocol

import numpy as np

from chamelaion.engine import logmel, phones
from chamelaion.engine.options import DEFAULT_MODEL, MODELS


def speech_features(samples: np.ndarray) -> np.ndarray:
    """(frames, features) model input at 100 frames a second: normalised log-mel, then phone
    posteriors. The training script calls this very function."""
    mel = logmel.normalise(logmel.log_mel(samples))
    return np.concatenate([mel, phones.phone_posteriors(samples)[: len(mel)]], axis=1)


class MouthModel(Protocol):
    @property
    def name(self) -> str: ...

    def predict(self, samples: np.ndarray, fps: float, frames: int) -> np.ndarray:
        """(frames, 4) normalised mouth parameters for video frames at k / fps seconds of
        `samples` (mono, 16 kHz); frames past the audio's end get the model's silence."""
        ...


@dataclass(frozen=True)
class ConvolutionalMouthModel:
    """A stack of dilated 1-D convolutions (GELU between), then a per-frame linear head."""

    name: str
    weights: tuple[tuple[np.ndarray, np.ndarray, int], ...]  # (out, in, k) kernel, bias, dilation
    head: tuple[np.ndarray, np.ndarray]  # (P, C), (P,)
    output_scale: np.ndarray  # (P,) undoes the regression's shrinkage towards the mean

    def predict(self, samples: np.ndarray, fps: float, frames: int) -> np.ndarray:
        hidden = self._body(speech_features(samples).T)
        out = (self.head[0] @ hidden + self.head[1][:, None]).T * self.output_scale
        index = np.round(np.arange(frames) / fps * logmel.FRAME_RATE).astype(int)
        return out[np.clip(index, 0, len(out) - 1)].astype(np.float32)

    def _body(self, x: np.ndarray) -> np.ndarray:
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


def _gelu(x: np.ndarray) -> np.ndarray:
    """GELU as torch computes it by default (the exact, erf-based form)."""
    from scipy.special import erf

    return (0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))).astype(np.float32)


def load_model(path: str | Path) -> ConvolutionalMouthModel:
    with np.load(path) as data:
        dilations = [int(d) for d in data["dilations"]]
        layers = tuple((data[f"conv{i}_w"], data[f"conv{i}_b"], d) for i, d in enumerate(dilations))
        return ConvolutionalMouthModel(
            DEFAULT_MODEL, layers, (data["head_w"], data["head_b"]), data["output_scale"]
        )


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
