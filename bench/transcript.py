"""Transcript benchmark: does a known text make the phone evidence, and the mouth, better?

    python bench/transcript.py [--weights 0,0.25,0.5,0.75,1] [--json PATH]

Three measurements, each with the transcript's posteriors blended at several weights towards
the aligned path (`alignment.PhoneGuide.sharpen`; weight 0 is recognition alone):

1. GRID clips (`../shared/footage/grid/`, the sentence spelt by the file name): prediction-level
   Pearson r of the shipped mouth model against the clip's true mouth (`train/footage.py`
   landmarks, `geometry.mouth_params`), as train/articulation.py evaluates. These clips are in
   the model's training set, so the figures are biased upwards and say only whether sharper
   phone evidence moves the prediction the right way.
2. espeak-ng sentences with known text and phone timings (clean, 10 dB and 0 dB SNR of white
   noise): r of the `phonetics.articulators` tracks (what the model reads) against the tracks of
   the true phones at their true times; and where the aligned phones land against espeak-ng's
   own phone intervals.
3. The mismatch test's statistic (`alignment.MAX_DEFICIT`): the per-phone deficit of each audio
   aligned to its own text and to every other text of its set.

Nothing here is learned from; the figures print with the machine and date.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "train"))
sys.path.insert(0, str(ROOT / "tests"))

import footage  # noqa: E402

import mediagen  # noqa: E402
from chamelaion.engine import alignment, logmel, phones, phonetics  # noqa: E402
from chamelaion.engine.geometry import PARAM_NAMES, mouth_params  # noqa: E402
from chamelaion.engine.mouthmodel import (  # noqa: E402
    EnsembleMouthModel,
    get_model,
    model_inputs,
    speech_evidence,
)
from realspeech import pearson  # noqa: E402

GRID_WORDS = (
    {"b": "bin", "l": "lay", "p": "place", "s": "set"},
    {"b": "blue", "g": "green", "r": "red", "w": "white"},
    {"a": "at", "b": "by", "i": "in", "w": "with"},
)
GRID_DIGITS = dict(
    zip(
        "z123456789",
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
        strict=True,
    )
)
GRID_ADVERBS = {"a": "again", "n": "now", "p": "please", "s": "soon"}
SENTENCES = (
    "The church judge owns a big yellow boat.",
    "She sells sea shells on the sea shore.",
    "My mother bought a blue umbrella for the summer.",
    "We will meet at the station at seven.",
    "Please put the map back in the box by the window.",
    "Few people would refuse a free cup of warm soup.",
    "Move the blue cube over the wooden bench.",
    "The thief fled through the back door of the shop.",
)
SNRS: tuple[float | None, ...] = (None, 10.0, 0.0)


def grid_sentence(stem: str) -> str:
    """bbaf2n -> "bin blue at F two now" (GRID's six-word command grammar)."""
    command, colour, preposition = (words[c] for words, c in zip(GRID_WORDS, stem[:3], strict=True))
    return (
        f"{command} {colour} {preposition} {stem[3].upper()} {GRID_DIGITS[stem[4]]} "
        + (GRID_ADVERBS[stem[5]])
    )


def at_video_frames(
    model: EnsembleMouthModel, inputs: NDArray[np.float32], fps: float, frames: int
) -> NDArray[np.float32]:
    """The model's track sampled at video frames, as `EnsembleMouthModel.predict` does."""
    out = model.track(inputs)
    index = np.round((np.arange(frames) / fps - model.delay) * logmel.FRAME_RATE).astype(int)
    sampled: NDArray[np.float32] = out[np.clip(index, 0, len(out) - 1)]
    return sampled


def sharpened_inputs(
    evidence: NDArray[Any], guide: alignment.PhoneGuide, weight: float
) -> NDArray[np.float32]:
    mel, posteriors = evidence[:, : logmel.BANDS], evidence[:, logmel.BANDS :]
    return model_inputs(np.concatenate([mel, guide.sharpen(posteriors, weight)], axis=1))


def add_noise(
    samples: NDArray[np.float32], snr: float | None, rng: np.random.Generator
) -> NDArray[np.float32]:
    """White noise at `snr` dB below the speech's power (none for None)."""
    if snr is None:
        return samples
    noise = rng.standard_normal(len(samples)).astype(np.float32)
    noisy: NDArray[np.float32] = samples + noise * np.sqrt(
        float(np.mean(samples**2)) / 10 ** (snr / 10)
    )
    return noisy


def bench_grid(weights: list[float]) -> dict[str, object]:
    """Prediction-level r of the mouth model on the GRID clips, their sound clean and noisy
    (the mouth on screen is the same: noise in a dub's audio is what a transcript is for)."""
    model = get_model()
    assert isinstance(model, EnsembleMouthModel)
    clips = [c for c in footage.available() if c.name.startswith("grid/")]
    rng = np.random.default_rng(0)
    print(f"\n1. GRID clips (IN THE MODEL'S TRAINING SET: biased), mean r of {PARAM_NAMES}")
    out: dict[str, object] = {}
    for snr in SNRS:
        rows: dict[str, dict[str, list[float]]] = {}
        unused = []
        for clip in clips:
            data = footage.load(clip)
            stem = Path(clip.name).stem
            guide = alignment.prepare(grid_sentence(stem), "en")
            evidence = speech_evidence(add_noise(data.audio, snr, rng))
            truth = mouth_params(data.landmarks)
            rows[stem] = {}
            for weight in weights:
                inputs = sharpened_inputs(evidence, guide, weight)
                predicted = at_video_frames(model, inputs, data.fps, data.frames)
                rows[stem][str(weight)] = [
                    pearson(predicted[:, p], truth[:, p]) for p in range(len(PARAM_NAMES))
                ]
            if guide.alignment is None:
                unused.append(stem)
        label = "clean" if snr is None else f"{snr:g} dB"
        means = {
            str(w): np.nanmean([rows[s][str(w)] for s in rows], axis=0).round(3).tolist()
            for w in weights
        }
        for w, m in means.items():
            scores = " ".join(f"{n} {r:.3f}" for n, r in zip(PARAM_NAMES, m, strict=True))
            print(f"  {label:6s} w={w}: {scores}")
        if unused:
            print(f"  {label:6s} transcript not used (mismatch test) on: {', '.join(unused)}")
        out[label] = {"clips": rows, "mean": means, "not_used": unused}
    return out


def _speech(
    text: str, snr: float | None, rng: np.random.Generator
) -> tuple[NDArray[np.float32], list[mediagen.Phoneme]]:
    """16 kHz speech of `text` with half a second of silence either side, and its phonemes."""
    spoken = mediagen.silence(0.5) + mediagen.speak(text) + mediagen.silence(0.5)
    samples = resample_poly(spoken.samples, logmel.SAMPLE_RATE, spoken.sample_rate)
    phonemes = [p for p in spoken.phonemes if not p.symbol.startswith("_")]
    return add_noise(samples.astype(np.float32), snr, rng), phonemes


def true_tracks(
    guide: alignment.PhoneGuide, spoken: list[mediagen.Phoneme], frames: int
) -> NDArray[np.float32] | None:
    """The articulator tracks of the true phones at their true times (None when espeak-ng's
    phoneme events do not pair one to one with the transcript's phones)."""
    if len(spoken) != len(guide.states):
        return None
    log_probs = np.full((frames, phones.tokens()), -np.inf)
    log_probs[:, phones.vocabulary().index("<blank>")] = 0.0
    for phone, tokens in zip(spoken, guide.states, strict=True):
        span = slice(round(phone.start * logmel.FRAME_RATE), round(phone.end * logmel.FRAME_RATE))
        log_probs[span] = -np.inf
        log_probs[span, tokens[0]] = 0.0
    return phonetics.articulators(phones.scale(log_probs))


def bench_espeak(weights: list[float]) -> dict[str, object]:
    rng = np.random.default_rng(0)
    print(
        "\n2. espeak-ng sentences: r of the articulator tracks (mean over the eight phone "
        "tracks) against the true phones' tracks; aligned phones vs espeak-ng's"
    )
    out: dict[str, object] = {}
    for snr in SNRS:
        scores: dict[str, list[float]] = {str(w): [] for w in weights}
        errors: list[float] = []
        inside = 0
        skipped = 0
        for text in SENTENCES:
            samples, spoken = _speech(text, snr, rng)
            posteriors = phones.phone_posteriors(samples)
            guide = alignment.prepare(text, "en")
            truth = true_tracks(guide, spoken, len(posteriors))
            if truth is None:
                skipped += 1
                continue
            for weight in weights:
                tracks = phonetics.articulators(guide.sharpen(posteriors, weight))
                scores[str(weight)].append(
                    float(np.nanmean([pearson(tracks[:, k], truth[:, k]) for k in range(8)]))
                )
            if guide.alignment is None:
                continue
            for (_, seconds), phone in zip(
                alignment.describe_alignment(guide), spoken, strict=True
            ):
                errors.append(seconds - (phone.start + phone.end) / 2)
                inside += phone.start - 0.04 <= seconds <= phone.end + 0.04
        label = "clean" if snr is None else f"{snr:g} dB"
        means = {w: round(float(np.mean(v)), 3) for w, v in scores.items()}
        median_ms = float(np.median(np.abs(errors)) * 1000)
        print(
            f"  {label:6s} "
            + "  ".join(f"w={w}: {m:.3f}" for w, m in means.items())
            + f"   phone-centre error median {median_ms:.0f} ms, "
            f"{inside}/{len(errors)} inside the phone +-40 ms"
            + (f" ({skipped} sentences not paired)" if skipped else "")
        )
        out[label] = {
            "r": means,
            "median_error_ms": median_ms,
            "inside": inside,
            "phones": len(errors),
            "skipped": skipped,
        }
    return out


def bench_deficits() -> dict[str, object]:
    print(
        f"\n3. per-phone deficit (mismatch test, threshold {alignment.MAX_DEFICIT}): each audio "
        "with its own text and with the others'"
    )
    rng = np.random.default_rng(1)
    grid = [c for c in footage.available() if c.name.startswith("grid/")]
    out: dict[str, object] = {}
    for snr in SNRS:
        sets = {
            "espeak": [(t, _speech(t, snr, rng)[0]) for t in SENTENCES],
            "grid": [
                (grid_sentence(Path(c.name).stem), add_noise(footage.load(c).audio, snr, rng))
                for c in grid
            ],
        }
        label = "clean" if snr is None else f"{snr:g} dB"
        for name, items in sets.items():
            own: list[float] = []
            other: list[float] = []
            for i, (_, samples) in enumerate(items):
                log_probs = phones.log_probabilities(
                    phones.phone_posteriors(samples)[:: phones.FRAMES_PER_OUTPUT]
                )
                for j, (text, _) in enumerate(items):
                    states = alignment.prepare(text, "en").states
                    (own if i == j else other).append(alignment.align(log_probs, states).deficit)
            print(
                f"  {label:6s} {name:6s} own {min(own):.2f}-{max(own):.2f}   "
                f"other {min(other):.2f}-{max(other):.2f}"
            )
            out[f"{label} {name}"] = {
                "own": [min(own), max(own)],
                "other": [min(other), max(other)],
            }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default="0,0.25,0.5,0.75,1")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    print(
        f"{platform.node()} {os.cpu_count()} cores, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    )
    result = {
        "grid": bench_grid(weights),
        "espeak": bench_espeak(weights),
        "deficits": bench_deficits(),
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
