"""A transcript of the new audio: its phones (espeak-ng), aligned to the phone recogniser's output.

espeak-ng speech says when each of its phonemes starts and ends, so where the aligned phones
land is checked against the truth; each way a transcript can be unusable has its defined
outcome (the recognised posteriors unchanged, a note), and an unknown language its error.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.signal import resample_poly

import mediagen
from chamelaion.engine import alignment, logmel, phones, phonetics
from chamelaion.engine.errors import TranscriptError
from chamelaion.engine.mouthmodel import get_model, speech_features
from chamelaion.engine.transcript import phonemes, resolve_language

SENTENCE = "The church judge owns a big yellow boat."
OTHER_SENTENCE = "She sells sea shells on the sea shore."


def _spoken(
    text: str, voice: str = "en", snr: float | None = None
) -> tuple[NDArray[np.float32], list[mediagen.Phoneme]]:
    """16 kHz speech of `text` between half-second silences (white noise at `snr` dB if
    given), and espeak-ng's phonemes without its pauses."""
    speech = mediagen.silence(0.5) + mediagen.speak(text, voice) + mediagen.silence(0.5)
    samples = resample_poly(speech.samples, logmel.SAMPLE_RATE, speech.sample_rate)
    samples = samples.astype(np.float32)
    if snr is not None:
        noise = np.random.default_rng(0).standard_normal(len(samples)).astype(np.float32)
        samples += noise * np.sqrt(float(np.mean(samples**2)) / 10 ** (snr / 10))
    return samples, [p for p in speech.phonemes if not p.symbol.startswith("_")]


def test_languages_resolve_to_espeak_voices_and_unknown_ones_are_refused() -> None:
    assert resolve_language("en").startswith("en")
    assert resolve_language("fr-FR").lower().startswith("fr")
    assert resolve_language("pt_BR").lower() == "pt-br"
    assert resolve_language("zh-Hans-CN") == "cmn"  # "zh" is an alias of Mandarin
    assert resolve_language("DE") == "de"
    for bad in ("xx", "klingon", "", "en us", "../../etc/passwd", "-v", "e" * 300):
        with pytest.raises(TranscriptError, match="unsupported transcript_language"):
            resolve_language(bad)


def test_text_becomes_phones_through_stdin_whatever_it_contains() -> None:
    words = phonemes("bin blue at F two now", resolve_language("en"))
    assert len(words) == 6
    assert words[0] == ["b", "ɪ", "n"]
    # Text that looks like an option or markup is read as text, never obeyed.
    assert phonemes("--help -v xx <speak>hello</speak>", "en")
    assert phonemes("", "en") == []


def test_aligned_phones_land_where_espeak_said_them() -> None:
    samples, spoken = _spoken(SENTENCE)
    guide = alignment.prepare(SENTENCE, "en")
    assert len(guide.states) == len(spoken), "the transcript's phones pair with espeak-ng's"
    guide.sharpen(phones.phone_posteriors(samples))
    assert guide.notes == [] and guide.alignment is not None
    placed = alignment.describe_alignment(guide)
    inside = [p.start - 0.04 <= t <= p.end + 0.04 for (_, t), p in zip(placed, spoken, strict=True)]
    error = np.median(
        [abs(t - (p.start + p.end) / 2) for (_, t), p in zip(placed, spoken, strict=True)]
    )
    assert np.mean(inside) >= 0.9, list(zip(placed, spoken, strict=True))
    assert error < 0.05


def test_a_transcript_sharpens_the_phone_evidence_of_noisy_speech() -> None:
    """At 0 dB SNR the recogniser misses phones; with the text, the articulator tracks (what
    the mouth model reads) follow the true phones much more closely."""
    samples, spoken = _spoken(SENTENCE, snr=0.0)
    posteriors = phones.phone_posteriors(samples)
    guide = alignment.prepare(SENTENCE, "en")
    truth = np.full((len(posteriors), phones.tokens()), -np.inf)
    truth[:, phones.vocabulary().index("<blank>")] = 0.0
    for phone, tokens in zip(spoken, guide.states, strict=True):
        span = slice(round(phone.start * logmel.FRAME_RATE), round(phone.end * logmel.FRAME_RATE))
        truth[span] = -np.inf
        truth[span, tokens[0]] = 0.0
    true_tracks = phonetics.articulators(phones.scale(truth))

    def agreement(posteriors: NDArray[np.float32]) -> float:
        tracks = phonetics.articulators(posteriors)
        return float(
            np.mean([np.corrcoef(tracks[:, k], true_tracks[:, k])[0, 1] for k in range(8)])
        )

    sharpened = guide.sharpen(posteriors)
    assert sharpened.shape == posteriors.shape and sharpened.dtype == posteriors.dtype
    assert agreement(sharpened) > agreement(posteriors) + 0.08


def test_the_model_input_keeps_its_shape_with_a_transcript() -> None:
    samples, _ = _spoken(SENTENCE)
    plain = speech_features(samples)
    guide = alignment.prepare(SENTENCE, "en")
    guided = speech_features(samples, guide)
    assert guided.shape == plain.shape and np.isfinite(guided).all()
    assert not np.allclose(guided, plain)
    frames = int(len(samples) / logmel.SAMPLE_RATE * 25)
    assert get_model().predict(samples, 25.0, frames, guide).shape == (frames, 4)


@pytest.mark.parametrize(
    ("text", "language", "note"),
    [
        (OTHER_SENTENCE, "en", "does not match the speech"),
        (SENTENCE + " " + OTHER_SENTENCE * 12, "en", "more phones than the audio"),
        ("... !!! ??? ★", "en", "no words to say"),
        # Welsh "ll" is a lateral fricative the recogniser has no token for.
        ("Llanelli llwyd llyfr Lloegr", "cy", "have no counterpart"),
        (SENTENCE, "tlh", "espeak-ng has no voice for its language 'tlh'"),
    ],
)
def test_an_unusable_transcript_leaves_recognition_alone_with_a_note(
    text: str, language: str, note: str
) -> None:
    samples, _ = _spoken(SENTENCE)
    posteriors = phones.phone_posteriors(samples)
    guide = alignment.prepare(text, language)
    out = guide.sharpen(posteriors)
    assert out is posteriors
    assert guide.alignment is None
    assert len(guide.notes) == 1 and note in guide.notes[0]
    assert guide.notes[0].startswith("the transcript was not used")


def test_another_language_read_with_its_own_voice_aligns() -> None:
    text = "Bonjour, je m'appelle Marie et j'habite à Paris."
    samples, _ = _spoken(text, voice="fr")
    guide = alignment.prepare(text, "fr-FR")
    guide.sharpen(phones.phone_posteriors(samples))
    assert guide.notes == [] and guide.alignment is not None


def test_long_audio_is_aligned_in_a_band_that_finds_the_same_path() -> None:
    """Over `max_cells`, the Viterbi looks only near where the speech heard so far puts the
    transcript; pauses between phrases do not throw it off."""
    phrases = [SENTENCE, OTHER_SENTENCE, "We will meet at the station at seven."]
    speech = mediagen.phrases_with_gaps(phrases, gap=1.5)
    samples = resample_poly(speech.samples, logmel.SAMPLE_RATE, speech.sample_rate)
    log_probs = phones.log_probabilities(
        phones.phone_posteriors(samples.astype(np.float32))[:: phones.FRAMES_PER_OUTPUT]
    )
    states = alignment.prepare(" ".join(phrases), "en").states
    full = alignment.align(log_probs, states)
    banded = alignment.align(log_probs, states, max_cells=len(log_probs) * 80)
    assert 2 * len(states) + 1 > 80, "the band is narrower than the state sequence"
    assert banded.deficit == pytest.approx(full.deficit, abs=0.05)
    assert np.abs(banded.phone_frames - full.phone_frames).max() <= 2
