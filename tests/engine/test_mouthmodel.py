"""The audio-to-mouth model and speaker adaptation, on espeak speech and made-up mouths.

How well the model predicts real mouths is measured on real footage (test_realspeech.py and
bench/realspeech.py); here: that it behaves on any input and that its pieces do what they say.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

import mediagen
from chamelaion.engine import logmel, phones, phonetics
from chamelaion.engine.alignment import prepare
from chamelaion.engine.geometry import GAP, WIDTH
from chamelaion.engine.mouth import SpeakerMouth, speaker_mouth, speech_track
from chamelaion.engine.mouthmodel import get_model
from chamelaion.engine.options import MODELS

FPS = 25.0


def _speech_16k(text: str) -> NDArray[np.float32]:
    speech = mediagen.speak(text)
    x = speech.samples
    n = int(len(x) * 16000 / speech.sample_rate)
    return np.interp(np.arange(n) * speech.sample_rate / 16000, np.arange(len(x)), x).astype(
        np.float32
    )


def test_the_model_gives_one_finite_shape_per_frame_for_any_audio() -> None:
    model = get_model()
    rng = np.random.default_rng(0)
    cases = {
        "speech": _speech_16k("peter piper picked a peck of pickled peppers"),
        "silence": np.zeros(16000 * 3, np.float32),
        "a click": np.zeros(800, np.float32),
        "loud noise": rng.uniform(-1, 1, 16000 * 2).astype(np.float32),
        "a chord (music)": sum(
            np.sin(2 * np.pi * f * np.arange(16000 * 2) / 16000) for f in (220, 277, 330)
        ).astype(np.float32)
        / 3,
    }
    for name, samples in cases.items():
        frames = int(len(samples) / 16000 * FPS) + 5  # a few frames past the audio's end
        shape = model.predict(samples, FPS, frames)
        assert shape.shape == (frames, 4), name
        assert np.isfinite(shape).all(), name


def test_unknown_model_names_are_refused() -> None:
    assert MODELS == ("lipsync-2",)
    with pytest.raises(ValueError, match="unknown model"):
        get_model("lipsync-9")


def test_silence_closes_the_mouth_and_speech_opens_it() -> None:
    speech = _speech_16k("we will see you soon my friend")
    samples = np.concatenate([np.zeros(16000, np.float32), speech, np.zeros(16000, np.float32)])
    frames = int(len(samples) / 16000 * FPS)
    track = speech_track(samples, FPS, frames, get_model())
    leading, trailing = slice(0, int(0.8 * FPS)), slice(frames - int(0.8 * FPS), frames)
    assert track.closed[leading].all() and track.closed[trailing].all()
    talking = slice(int(1.2 * FPS), frames - int(1.2 * FPS))
    assert (~track.closed[talking]).mean() > 0.5


def test_phone_posteriors_are_the_same_in_chunks_as_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Long audio is recognised in chunks with context on both sides; the seams must not show."""
    samples = _speech_16k("the quick brown fox jumps over the lazy dog, and then it sleeps")
    whole = phones.phone_posteriors(samples)
    assert whole.shape == (-(-len(samples) // logmel.HOP), phones.tokens())
    monkeypatch.setattr(phones, "CHUNK_SECONDS", 1.5)
    chunked = phones.phone_posteriors(samples)
    assert chunked.shape == whole.shape
    agree = (chunked.argmax(axis=1) == whole.argmax(axis=1)).mean()
    assert agree > 0.9, f"the most likely phone agrees on only {agree:.0%} of frames"


class _GiveUpError(Exception):
    pass


def test_the_prediction_can_be_given_up_between_pieces_and_is_unchanged_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`between` runs before each recogniser run, on the plain and the transcript path alike;
    it changes nothing, and raising there stops the prediction (a cancelled job's check)."""
    samples = _speech_16k("the quick brown fox jumps over the lazy dog, and then it sleeps")
    monkeypatch.setattr(phones, "CHUNK_SECONDS", 1.5)  # pieces of a short audio, as of a long
    pieces = -(-len(samples) // int(1.5 * logmel.SAMPLE_RATE))
    assert pieces >= 3
    model = get_model()
    frames = int(len(samples) / 16000 * FPS)
    calls: list[int] = []
    counted = model.predict(samples, FPS, frames, between=lambda: calls.append(1))
    assert len(calls) == pieces
    np.testing.assert_array_equal(counted, model.predict(samples, FPS, frames))
    calls.clear()
    guide = prepare("the quick brown fox jumps over the lazy dog, and then it sleeps", "en")
    model.predict(samples, FPS, frames, guide, between=lambda: calls.append(1))
    assert len(calls) == pieces

    def give_up_at_the_second() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise _GiveUpError

    for transcript in (None, guide):
        calls.clear()
        with pytest.raises(_GiveUpError):
            model.predict(samples, FPS, frames, transcript, between=give_up_at_the_second)
        assert len(calls) == 2  # stopped there: no recogniser run after it


def _mouth_track(seconds: float, gap_motion: float, smile_at: float | None) -> NDArray[np.float64]:
    """(frames, 4) mouth parameters of a made-up face: the gap moves at syllable rate; the
    width steps up by 10 % (a smile) at `smile_at` seconds."""
    t = np.arange(int(seconds * FPS)) / FPS
    params = np.zeros((len(t), 4))
    params[:, GAP] = 0.05 + gap_motion * (1 + np.sin(2 * np.pi * 4 * t))
    params[:, WIDTH] = 0.8 * (1.0 + (0.1 * (t >= smile_at) if smile_at is not None else 0.0))
    params[:, WIDTH] += 0.01 * np.sin(2 * np.pi * 5 * t)  # speech-rate width movement
    return params


def test_a_speaking_source_teaches_its_own_range() -> None:
    params = _mouth_track(8, gap_motion=0.2, smile_at=None)  # twice the prior's range
    found = np.ones(len(params), bool)
    adapted = speaker_mouth(params, found, FPS, speaks=True)
    assert adapted.adapted
    assert adapted.gap_mean == pytest.approx(params[:, GAP].mean(), rel=1e-6)
    assert adapted.gap_scale == pytest.approx(params[:, GAP].std(), rel=1e-6)
    prior = speaker_mouth(params, found, FPS, speaks=False)
    assert not prior.adapted
    assert prior.gap_scale < 0.7 * adapted.gap_scale


def test_a_still_mouth_falls_back_to_the_prior_even_with_speech() -> None:
    params = _mouth_track(8, gap_motion=0.0, smile_at=None)
    mouth = speaker_mouth(params, np.ones(len(params), bool), FPS, speaks=True)
    assert not mouth.adapted


def test_a_smile_is_kept_under_the_speech_motion() -> None:
    params = _mouth_track(8, gap_motion=0.1, smile_at=4.0)
    mouth: SpeakerMouth = speaker_mouth(params, np.ones(len(params), bool), FPS, speaks=True)
    neutral = np.zeros(4)
    before = mouth.target(neutral, closed=False, track_frame=int(2 * FPS))[1]
    after = mouth.target(neutral, closed=False, track_frame=int(6 * FPS))[1]
    assert after / before == pytest.approx(1.1, abs=0.02)  # the smile, not flattened
    # ...while the speech-rate wobble of the source's width is not copied into the target.
    widths = [mouth.target(neutral, False, k)[1] for k in range(int(0.5 * FPS), int(3.5 * FPS))]
    assert np.std(widths) < 0.2 * 0.01


def test_closed_frames_get_no_gap() -> None:
    params = _mouth_track(8, gap_motion=0.1, smile_at=None)
    mouth = speaker_mouth(params, np.ones(len(params), bool), FPS, speaks=True)
    wide_open = np.array([3.0, 0.0, 0.0, 0.0])
    assert mouth.target(wide_open, closed=True, track_frame=10)[0] == 0.0
    assert mouth.target(wide_open, closed=False, track_frame=10)[0] > mouth.gap_mean


def test_the_phonetic_table_describes_the_sounds_that_shape_lips() -> None:
    """Each recogniser token is described from its IPA letters: open vowels more open than
    close ones, /u o w/ rounded, /i e/ spread, /p b m/ bilabial, /f v/ labiodental, blank and
    markers nothing at all; and every token of the vocabulary gets a row."""
    vocabulary = phones.vocabulary()
    assert len(vocabulary) == phones.tokens() and "<blank>" in vocabulary
    column = {name: k for k, name in enumerate(phonetics.ARTICULATORS)}

    def has(token: str, feature: str) -> float:
        assert token in vocabulary, token
        return float(phonetics.describe(token)[column[feature]])

    assert has("a", "openness") > has("ɛ", "openness") > has("e", "openness") > has("i", "openness")
    assert all(has(t, "vowel") == 1.0 for t in ("a", "i", "u", "oʊ", "aɪ"))
    assert all(has(t, "rounded") == 1.0 for t in ("u", "o", "w", "y", "ø"))
    assert all(has(t, "rounded") == 0.0 for t in ("i", "a", "m"))
    assert all(has(t, "spread") == 1.0 for t in ("i", "e", "ɪ"))
    assert all(has(t, "bilabial") == 1.0 for t in ("p", "b", "m", "pʰ"))
    assert all(has(t, "labiodental") == 1.0 for t in ("f", "v"))
    assert all(has(t, "postalveolar") == 1.0 for t in ("ʃ", "ʒ", "t͡ʃ", "d͡ʒ"))
    assert all(has(t, "other_consonant") == 1.0 for t in ("t", "k", "s", "n", "l"))
    assert not phonetics.describe("<blank>").any()
    assert np.isfinite(np.stack([phonetics.describe(t) for t in vocabulary])).all()


def test_articulator_tracks_follow_the_spoken_sounds() -> None:
    """Real recognition of espeak sentences (isolated vowels it does not recognise reliably):
    /u w/-heavy speech is rounder and less spread than /i/-heavy speech, /m b/-heavy speech
    more bilabial than either, and silence has far less phone evidence than any. Means over
    the frames with the most phone evidence (the sounds, not the gaps between words)."""
    column = {name: k for k, name in enumerate(phonetics.ARTICULATORS)}
    evidence = column["phone_evidence"]

    def mean_track(samples: NDArray[np.float32]) -> NDArray[np.float32]:
        tracks = phonetics.articulators(phones.phone_posteriors(samples))
        spoken = tracks[:, evidence] >= np.median(tracks[:, evidence])
        mean: NDArray[np.float32] = tracks[spoken].mean(axis=0)
        return mean

    rounded = mean_track(_speech_16k("who knew you would move to the zoo"))
    spread = mean_track(_speech_16k("we see three green trees"))
    bilabial = mean_track(_speech_16k("mama may make my mum memos"))
    silence = phonetics.articulators(phones.phone_posteriors(np.zeros(32000, np.float32)))
    assert rounded[column["rounded"]] > spread[column["rounded"]] + 0.03
    assert spread[column["spread"]] > rounded[column["spread"]] + 0.05
    assert (
        bilabial[column["bilabial"]]
        > max(rounded[column["bilabial"]], spread[column["bilabial"]]) + 0.2
    )
    assert silence[:, evidence].mean() < min(t[evidence] for t in (rounded, spread, bilabial)) - 1.0
