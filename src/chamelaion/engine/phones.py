"""Phone posteriors: how likely each speech sound is, 100 times a second.

Which phone is spoken says more about the lips than loudness does (/u/ rounds, /i/ spreads,
/m/ closes whatever the volume). The recogniser is hama's CTC phoneme model (Apache-2.0, PyPI
`hama`; its 5 MB model ships inside the wheel, CPU only): trained on an IPA phone set across
languages, so it gives usable phone evidence for French or German speech as well as English.

The model emits a distribution over its 191 tokens every 20 ms; we take its log-probabilities,
repeat them to the 10 ms frames of `logmel`, and feed them beside the log-mel to the
audio-to-mouth model. Long audio is recognised in overlapping chunks, so time and memory grow
linearly with duration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chamelaion.engine import logmel

CHUNK_SECONDS = 30.0
CONTEXT_SECONDS = 2.0  # recognised on either side of a chunk and dropped: no edge effects
_SAMPLES_PER_OUTPUT = 320  # the model's 20 ms output step at 16 kHz
FRAMES_PER_OUTPUT = _SAMPLES_PER_OUTPUT // logmel.HOP  # each output row repeats this often
FLOOR = -12.0  # log-probabilities below this carry no information, only noise


@cache
def _model() -> Any:
    """hama's recogniser, loaded once per process."""
    import hama

    return hama.ASRModel()


@cache
def _session() -> tuple[Any, str, str, str]:
    """The recogniser's inference session and its tensor names."""
    model = _model()
    inputs = [node.name for node in model.session.get_inputs()]
    outputs = [node.name for node in model.session.get_outputs()]
    waveform = next(n for n in inputs if n.startswith("waveform") and "length" not in n)
    lengths = next(n for n in inputs if "length" in n)
    log_probs = next(n for n in outputs if n.startswith("log_probs"))
    return model.session, waveform, lengths, log_probs


def tokens() -> int:
    """How many phone tokens a posterior frame has."""
    return len(vocabulary())


@cache
def vocabulary() -> tuple[str, ...]:
    """The recogniser's tokens (IPA phones, "<blank>" and a few markers), in column order."""
    return tuple(_model().decoder_tokens)


def _run(samples: NDArray[Any]) -> NDArray[Any]:
    session, waveform, lengths, log_probs = _session()
    wav = samples.reshape(1, -1).astype(np.float32)
    (out,) = session.run([log_probs], {waveform: wav, lengths: np.array([wav.shape[1]], np.int64)})
    return np.asarray(out[0], np.float32)


def phone_posteriors(
    samples: NDArray[Any], between: Callable[[], None] | None = None
) -> NDArray[Any]:
    """(frames, tokens) log phone probabilities of mono 16 kHz `samples`, one row per `logmel`
    frame (ceil(len / HOP) rows), floored at `FLOOR` and scaled to about -1..1. `between`: as
    `posterior_pieces` takes it."""
    return np.concatenate(list(posterior_pieces(samples, between)))


def posterior_pieces(
    samples: NDArray[Any], between: Callable[[], None] | None = None
) -> Iterator[NDArray[Any]]:
    """The rows of `phone_posteriors`, one recogniser run at a time (`CHUNK_SECONDS` of rows
    each, the last one shorter): a caller that consumes them as they come never holds an
    hour's posteriors.

    `between`, if given, is called before each recogniser run: the one place a long audio's
    recognition can be given up (it may raise; a job's cancel check does), within one chunk's
    time however long the audio, where one call over the whole audio could not be."""
    frames = max(1, -(-len(samples) // logmel.HOP))
    rate = logmel.SAMPLE_RATE
    chunk, context = int(CHUNK_SECONDS * rate), int(CONTEXT_SECONDS * rate)
    for start in range(0, max(len(samples), 1), chunk):
        if between is not None:
            between()
        lo = max(0, start - context)
        hi = min(len(samples), start + chunk + context)
        piece = np.clip(np.asarray(samples[lo:hi], np.float32), -1.0, 1.0)
        if len(piece) < _SAMPLES_PER_OUTPUT * 4:
            piece = np.pad(piece, (0, _SAMPLES_PER_OUTPUT * 4 - len(piece)))
        out = _run(piece)
        first = (start - lo) // _SAMPLES_PER_OUTPUT
        count = -(-(min(start + chunk, len(samples)) - start) // _SAMPLES_PER_OUTPUT)
        posteriors = out[first : first + max(count, 1)]
        rows = min(frames, (start + chunk) // logmel.HOP) - start // logmel.HOP
        index = np.minimum(np.arange(rows) // FRAMES_PER_OUTPUT, len(posteriors) - 1)
        yield scale(posteriors[index])


def scale(log_probs: NDArray[Any]) -> NDArray[np.float32]:
    """Log-probabilities as `phone_posteriors` gives them: floored at `FLOOR`, about -1..1."""
    return ((np.maximum(log_probs, FLOOR) - FLOOR / 2) / (-FLOOR / 2)).astype(np.float32)


def log_probabilities(posteriors: NDArray[Any]) -> NDArray[Any]:
    """`phone_posteriors` output back to log-probabilities (floored at `FLOOR`)."""
    return posteriors * (-FLOOR / 2) + FLOOR / 2
