"""A transcript's phones forced onto the recogniser's output: better phone evidence, same shape.

The phone recogniser (`phones`) is a CTC model: every 20 ms it gives a distribution over its
tokens, a phone showing as a spike of a frame or two between runs of "blank". Free recognition
takes what it hears; with the transcript known, the sequence of tokens is known too and only
the timing is not. `align` finds the most likely timing (Viterbi over the CTC topology: blank,
phone, blank, phone, ..., blank; a phone may repeat over frames, a blank may be skipped between
different phones), and `PhoneGuide.sharpen` blends the recognised posteriors towards that path,
so the mouth model (`mouthmodel.speech_features`) reads the same kind of input it was trained
on, only surer: the phones the script says, where the audio says them.

Nothing is lost without a usable transcript. Each way one can fail has a defined outcome: the
recognised posteriors unchanged and a note saying why (`PhoneGuide.notes`):
- the text has no words espeak-ng can say, or too many of its phones have no token of the
  recogniser (`MAX_UNPLACED_SHARE`);
- the transcript does not fit the audio: more phones than the audio has frames, or an aligned
  path far less likely than free recognition (`MAX_DEFICIT`, per phone), as when the script is
  of another take, another scene or another language;
- its language has no espeak-ng voice on this machine.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chamelaion.engine import logmel, phones
from chamelaion.engine.errors import TranscriptError
from chamelaion.engine.transcript import phonemes, resolve_language

# How far the posteriors move to the aligned path: 0 is recognition alone, 1 the path alone.
# Measured (bench/transcript.py): the articulator tracks of espeak-ng sentences agree with the
# true phones' ever better as the weight rises (r 0.66 -> 0.72 at 0.5 -> 0.76 at 1, clean;
# 0.49 -> 0.64 -> 0.74 at 0 dB SNR), but the mouth model, trained on recognised posteriors,
# loses a little on clean GRID clips as the weight rises (its own training clips: biased;
# r_gap / r_width 0.690 / 0.594 at 0, 0.688 / 0.591 at 0.5, 0.685 / 0.580 at 1) while it
# gains under noise (0 dB: 0.536 / 0.404 at 0, 0.575 / 0.484 at 0.5, 0.573 / 0.521 at 1).
# Half way keeps nearly all of the gain for next to none of the loss (weights of 2026-12-02).
SHARPEN_WEIGHT = 0.5
# The aligned path's log-likelihood may fall this far below free recognition's, per transcript
# phone, before the transcript is taken not to match the audio. Measured (bench/transcript.py):
# espeak-ng sentences with their own text 0.6-2.7, with another sentence's text 4.9-9.1; the
# GRID clips with their own sentence 0.03-2.5, with another GRID sentence (sharing up to half
# its words) 4.4-9.9. Under white noise at 10 dB SNR the two still part (own <= 3.0, other
# >= 3.9); at 0 dB they overlap (own <= 3.2, another GRID sentence from 2.2): there a text
# that is nearly the audio's may be taken for it. Per phone rather than per frame, so a short
# text under long audio does not pass for a match by the silence around it.
MAX_DEFICIT = 3.5
# A transcript more than this share of whose phones have no token of the recogniser is not used.
MAX_UNPLACED_SHARE = 0.2
# Cap on the Viterbi's back-pointer table (one byte a cell): long audio with a long transcript
# is aligned within a band of states around the expected position instead of all of them.
MAX_CELLS = 40_000_000

_GAP_TOKENS = ("<blank>", "<wb>", " ")  # what a CTC blank state may emit: silence, word breaks
# Spellings the recogniser's vocabulary has twice, or that espeak-ng writes otherwise.
_EQUIVALENT = {
    "ɡ": ("ɡ", "g"),
    "g": ("ɡ", "g"),
    "ɹ": ("ɹ", "r"),
    "r": ("r", "ɾ", "ɹ"),
    "əʊ": ("oʊ",),  # British English "go"
}


@dataclass(frozen=True)
class Alignment:
    """The Viterbi path over the recogniser's 20 ms frames."""

    tokens: NDArray[Any]  # (frames,) recogniser token of each frame (blank between phones)
    phone_frames: NDArray[Any]  # (phones,) first frame of each transcript phone
    deficit: float  # free recognition's log-likelihood minus the path's, per transcript phone


@dataclass
class PhoneGuide:
    """A transcript ready to sharpen phone posteriors: its phones as recogniser tokens. What
    happened to it (unusable words, a mismatch with the audio) is added to `notes`, as
    `speaker.FaceChoice` collects its notes, for the job's result."""

    text: str
    language: str
    states: list[tuple[int, ...]]  # per transcript phone, the tokens that may stand for it
    unplaced: int = 0  # phones with no token of the recogniser, left out
    refusal: str | None = None  # why it cannot be used at all (a language espeak-ng lacks)
    notes: list[str] = field(default_factory=list)
    alignment: Alignment | None = None  # set by `sharpen` when the transcript was used

    @property
    def usable(self) -> bool:
        total = len(self.states) + self.unplaced
        return (
            self.refusal is None
            and bool(self.states)
            and self.unplaced <= MAX_UNPLACED_SHARE * total
        )

    def sharpen(self, posteriors: NDArray[Any], weight: float = SHARPEN_WEIGHT) -> NDArray[Any]:
        """`phones.phone_posteriors` output moved `weight` of the way to the aligned path, or
        unchanged (with a note) when the transcript cannot be used for this audio."""
        self.alignment = None
        if not self.usable:
            self.notes.append(self._unusable_note())
            return posteriors
        step = phones.FRAMES_PER_OUTPUT
        log_probs = phones.log_probabilities(posteriors[::step])
        # CTC needs a frame per phone, and a blank between two equal ones.
        repeats = sum(a == b for a, b in zip(self.states, self.states[1:], strict=False))
        if len(log_probs) < len(self.states) + repeats:
            self.notes.append(_IGNORED + "it has more phones than the audio has time to say")
            return posteriors
        alignment = align(log_probs, self.states)
        if alignment.deficit > MAX_DEFICIT:
            self.notes.append(
                _IGNORED + "it does not match the speech of the audio (another take, scene or "
                "language?)"
            )
            return posteriors
        self.alignment = alignment
        path = np.repeat(alignment.tokens, step)[: len(posteriors)]
        probs = np.exp(phones.log_probabilities(posteriors)) * (1.0 - weight)
        probs[np.arange(len(path)), path] += weight
        return phones.scale(np.log(np.maximum(probs, 1e-30)))

    def _unusable_note(self) -> str:
        if self.refusal is not None:
            return self.refusal
        if not self.states:
            return _IGNORED + "espeak-ng found no words to say in it"
        return _IGNORED + (
            f"{self.unplaced} of its {self.unplaced + len(self.states)} phones have no "
            "counterpart in the phone recogniser"
        )


_IGNORED = "the transcript was not used (the phones were recognised from the audio alone): "


def prepare(text: str, language: str) -> PhoneGuide:
    """The transcript's phones for `align`. A language espeak-ng has no voice for here makes
    a guide that is not used (the note says why): which languages a machine's espeak-ng reads
    is its installation's business, not the request's; callers that can tell the user at once
    (the CLI) check `transcript.resolve_language` first."""
    try:
        voice = resolve_language(language)
    except TranscriptError:
        refusal = _IGNORED + f"espeak-ng has no voice for its language {language[:40]!r}"
        return PhoneGuide(text, language, [], refusal=refusal)
    states: list[tuple[int, ...]] = []
    unplaced = 0
    for word in phonemes(text, voice):
        for phone in word:
            placed = tokens_for(phone)
            if not placed:
                unplaced += 1
            states.extend(placed)
    return PhoneGuide(text, voice, states, unplaced)


@cache
def tokens_for(phone: str) -> tuple[tuple[int, ...], ...]:
    """The recogniser tokens one espeak-ng IPA phone is spoken as, in order (a phone the
    vocabulary lacks may be a sequence: British "əʊ" is "ə" then "ʊ"), each as the set of
    tokens that may stand for it; empty when no token fits."""
    index = {token: i for i, token in enumerate(phones.vocabulary())}

    def spellings(p: str) -> tuple[int, ...]:
        return tuple(index[s] for s in _EQUIVALENT.get(p, (p,)) if s in index)

    phone = unicodedata.normalize("NFC", phone)
    plain = phone.replace("ː", "").replace("ˑ", "")  # length is not a token the lips show
    if len(plain) >= 2 and spellings(plain[0] + "͡" + plain[1:]):  # affricates: t͡ʃ, d͡ʒ
        return (spellings(plain[0] + "͡" + plain[1:]),)
    if spellings(plain):
        return (spellings(plain),)
    # Diacritics and modifier letters (nasal ̃, aspiration ʰ, palatal ʲ) dropped, one token
    # per remaining letter, if each has one.
    letters = [
        c
        for c in unicodedata.normalize("NFD", plain)
        if unicodedata.category(c) not in ("Mn", "Lm", "Sk")
    ]
    parts = [spellings(unicodedata.normalize("NFC", c)) for c in letters]
    if letters and all(parts):
        return tuple(parts)
    return ()


def align(
    log_probs: NDArray[Any], states: list[tuple[int, ...]], max_cells: int = MAX_CELLS
) -> Alignment:
    """Viterbi CTC alignment of the phone sequence `states` (each a set of tokens that may
    stand for it) to (frames, tokens) `log_probs` at the recogniser's own 20 ms step, within
    a band of states when frames x states passes `max_cells`."""
    vocabulary = phones.vocabulary()
    gaps = tuple(vocabulary.index(t) for t in _GAP_TOKENS if t in vocabulary)
    frames = len(log_probs)
    # Extended sequence: gap, phone 1, gap, phone 2, ..., gap. Emissions per distinct kind.
    kinds = [gaps, *dict.fromkeys(states)]
    kind_of = {k: i for i, k in enumerate(kinds)}
    extended = np.zeros(2 * len(states) + 1, np.int64)
    extended[1::2] = [kind_of[s] for s in states]
    emission = np.stack([log_probs[:, list(k)].max(axis=1) for k in kinds], axis=1)
    best_token = np.stack(
        [np.asarray(k)[log_probs[:, list(k)].argmax(axis=1)] for k in kinds], axis=1
    )
    # A phone state may be entered from two states back (skipping the gap) unless it repeats
    # the phone before it, which CTC can only tell apart with a gap between.
    skip = np.zeros(len(extended), bool)
    skip[3::2] = extended[3::2] != extended[1:-2:2]

    lows, width = _band(log_probs, gaps, len(extended), max_cells)
    back = np.zeros((frames, width), np.int8)
    delta = np.full(width, -np.inf)
    delta[:2] = emission[0, extended[:2]]
    for t in range(1, frames):
        shift = lows[t] - lows[t - 1]
        # Previous scores at states lows[t]-2 .. lows[t]+width-1 (-inf outside their band).
        previous = np.full(width + 2, -np.inf)
        start = shift  # index of state lows[t]-2 in `delta` is shift - 2
        lo, hi = max(0, start - 2), min(width, start + width)
        previous[lo - (start - 2) : hi - (start - 2)] = delta[lo:hi]
        window = slice(lows[t], lows[t] + width)
        candidates = np.stack(
            [previous[2:], previous[1:-1], np.where(skip[window], previous[:-2], -np.inf)]
        )
        choice = candidates.argmax(axis=0)
        back[t] = choice
        delta = candidates[choice, np.arange(width)] + emission[t, extended[window]]
    last = len(extended) - 1 - lows[-1]
    state = last if delta[last] >= delta[last - 1] else last - 1
    score = float(delta[state])
    path = np.zeros(frames, np.int64)
    for t in range(frames - 1, -1, -1):
        path[t] = state + lows[t]
        if t:
            state = state - int(back[t, state]) + lows[t] - lows[t - 1]
    tokens = best_token[np.arange(frames), extended[path]]
    first = np.full(len(states), -1, np.int64)
    for t in range(frames - 1, -1, -1):
        if path[t] % 2:
            first[path[t] // 2] = t
    free = float(log_probs.max(axis=1).sum())
    return Alignment(tokens, first, (free - score) / len(states))


def _band(
    log_probs: NDArray[Any], gaps: tuple[int, ...], states: int, max_cells: int
) -> tuple[NDArray[Any], int]:
    """Per frame the first state considered, and how many: all of them when the table fits
    `max_cells`, else a band around where the speech heard so far says the transcript should
    be (phones are spread over the speech, not over pauses or music)."""
    frames = len(log_probs)
    width = min(states, max(max_cells // max(frames, 1), 64))
    if width == states:
        return np.zeros(frames, np.int64), width
    speech = 1.0 - np.exp(log_probs[:, list(gaps)]).sum(axis=1).clip(0.0, 1.0)
    progress = np.cumsum(speech) / max(float(speech.sum()), 1e-9)
    centre = progress * (states - 1)
    lows = np.clip(np.round(centre - width / 2), 0, states - width).astype(np.int64)
    lows[0] = 0
    lows[-1] = states - width
    return np.maximum.accumulate(lows), width


def describe_alignment(guide: PhoneGuide) -> list[tuple[str, float]]:
    """(token, seconds) of each transcript phone's first frame in the last `sharpen`: for
    tests and benchmarks."""
    if guide.alignment is None:
        return []
    vocabulary = phones.vocabulary()
    seconds = phones.FRAMES_PER_OUTPUT / logmel.FRAME_RATE
    return [
        (vocabulary[guide.alignment.tokens[f]], float(f * seconds))
        for f in guide.alignment.phone_frames
    ]
