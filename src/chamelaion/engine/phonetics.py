"""What the lips do for each speech sound: phone posteriors turned into a few articulator tracks.

The phone recogniser (`phones`) says, every 20 ms, how likely each of its 191 IPA tokens is. A
model learning straight from those 191 numbers must see every phone often enough, in every
language, to learn what it does to the mouth; three minutes of clear-terms footage cannot
show it that (the French /y/ or the German /ø/ hardly occur in it). Phonetics already knows:
an /a/ opens the jaw, an /u/ rounds the lips, an /m/ closes them, whatever the language. So
each token is described by the textbook features of its IPA symbols (`ARTICULATORS`), and the
model learns from those few tracks, shared by every phone that has them, how this mouth
moves. The table says what a sound is, never how far a mouth moves: that is learned.

Measured on the held-out speakers of train/footage.py (ridge regression, same context, same
training clips): log-mel with the 191 posteriors r_gap 0.23, r_width 0.26; log-mel with these
nine tracks 0.31 / 0.36.

The recogniser's output is CTC: a phone shows as a spike of one or two frames between long
runs of "blank". The tracks therefore describe the phones spoken *around* each frame: the
non-blank probabilities smoothed over `SPREAD_SECONDS`, renormalised, then mapped through the
table; one more track says how much phone evidence there is near the frame at all (speech or
not), on a log scale.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter1d

from chamelaion.engine import logmel, phones

# Vowel openness from the IPA vowel chart: close 0 ... open 1.
OPENNESS = {
    **dict.fromkeys("iyɨʉɯuĩũìǐ", 0.0),
    **dict.fromkeys("ɪʏʊ", 0.2),
    **dict.fromkeys("eøɘɵɤoẽõ", 0.35),
    **dict.fromkeys("əɚᵊ", 0.5),
    **dict.fromkeys("ɛœɜɝʌɔ", 0.65),
    **dict.fromkeys("æɐ", 0.8),
    **dict.fromkeys("aɑɒäàåã", 1.0),
}
ROUNDED = frozenset("yʏøœʉɵuʊoɔɒwɥũõ")  # rounded vowels and labial-velar glides
SPREAD = frozenset("iɪeɛæĩẽìǐ")  # front unrounded vowels: lips spread
BILABIAL = frozenset("pbmɓβɸʙ")  # both lips closed or nearly
LABIODENTAL = frozenset("fvɱʋ")  # lower lip against the upper teeth
POSTALVEOLAR = frozenset("ʃʒ")  # lips pushed forward (also in t͡ʃ, d͡ʒ)
NOT_SPEECH = frozenset(("<blank>", "<pad>", "<sos>", "<eos>", "<unk>", " ", "<wb>", ",", "%"))
ARTICULATORS = (
    "openness",
    "vowel",
    "rounded",
    "spread",
    "bilabial",
    "labiodental",
    "postalveolar",
    "other_consonant",
    "phone_evidence",
)
SPREAD_SECONDS = 0.04  # the smoothing that turns CTC spikes into "the phones around here"
_LOG_FLOOR = 1e-3


def describe(token: str) -> NDArray[Any]:
    """The articulator row of one recogniser token (all zero for blank and the like: their
    frames get their weight from `phone_evidence` alone)."""
    row = np.zeros(len(ARTICULATORS), np.float32)
    if token in NOT_SPEECH:
        return row
    letters = [c for c in token if c.isalpha()]
    heights = [OPENNESS[c] for c in letters if c in OPENNESS]
    if heights:
        row[0], row[1] = np.mean(heights), 1.0
    row[2] = any(c in ROUNDED for c in letters)
    row[3] = any(c in SPREAD for c in letters)
    first = letters[0] if letters else ""
    row[4] = first in BILABIAL
    row[5] = first in LABIODENTAL
    row[6] = any(c in POSTALVEOLAR for c in letters)
    row[7] = not heights and not (row[4] or row[5])
    return row


@cache
def _table() -> tuple[NDArray[Any], int]:
    """(tokens, articulators) table of the recogniser's vocabulary, and the blank's index."""
    tokens = phones.vocabulary()
    return np.stack([describe(t) for t in tokens]), tokens.index("<blank>")


def articulators(posteriors: NDArray[Any]) -> NDArray[np.float32]:
    """(frames, len(ARTICULATORS)) tracks from `phones.phone_posteriors` output (same frames)."""
    table, blank = _table()
    probs = np.exp(phones.log_probabilities(posteriors))
    probs[:, blank] = 0.0
    near = gaussian_filter1d(probs, SPREAD_SECONDS * logmel.FRAME_RATE, axis=0, mode="nearest")
    mass = near.sum(axis=1, keepdims=True)
    out = (near / np.maximum(mass, 1e-6)) @ table
    out[:, -1] = np.log(mass[:, 0] + _LOG_FLOOR)
    tracks: NDArray[np.float32] = out.astype(np.float32)
    return tracks
