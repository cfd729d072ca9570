"""Train the audio-to-mouth model ("lipsync-2") on real talking-head footage.

    python train/articulation.py --seed 1 --exclude grid/s1/  # clear-terms clips: shipped weights
    python train/articulation.py --seed 1 -o X.npz  # with GRID speaker 1's 150 clips (README)
    python train/articulation.py --all -o X.npz     # every training clip (not shipped: the card)
    python train/articulation.py --evaluate         # held-out figures of the shipped weights only

The shipped weights' seed is 1: seed 0's weights of the same clips failed the espeak check that
/a/ opens the mouth more than /i/ (tests/engine/test_quality.py).

The model reads log-mel speech and articulator tracks (`mouthmodel.speech_features`, the same
code the engine runs) and predicts, per video frame, the speaker-normalised mouth parameters of
engine/geometry.py (gap, width, jaw, lips; each z-scored per clip, so a speaker's own rest shape
and range are not the model's business: the engine adapts them to the speaker at run time). Two
regressors, averaged: a dilated 1-D convolution stack over time (fully convolutional, so the
engine runs it over a whole soundtrack in numpy) and a ridge regression over a fixed context.

Augmentation stands in for the data we do not have: additive noise, speed changes (audio and
mouth together), mel-axis warping (vocal tract length), band and time masks.

Figures printed at the end are prediction-level Pearson r against the true mouth on held-out
clips (speakers never trained on); the rendered-output figures come from bench/realspeech.py.
Needs torch (CPU): `pip install torch==2.13.0` (the `train` extra).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import footage
import numpy as np
from numpy.typing import NDArray

from chamelaion.engine import logmel, phonetics
from chamelaion.engine.geometry import GAP, PARAM_NAMES, WIDTH, mouth_params
from chamelaion.engine.mouthmodel import (
    EnsembleMouthModel,
    LinearRegressor,
    in_context,
    load_model,
    model_inputs,
    speech_evidence,
)

WEIGHTS = footage.ROOT / "src" / "chamelaion" / "engine" / "weights" / "lipsync2.npz"
CHANNELS = 48
KERNEL = 5
DILATIONS = (1, 2, 4, 8, 1)
INPUTS = logmel.BANDS + len(phonetics.ARTICULATORS)
CROP = 300  # mel frames per training crop (3 s)
PHONE_DROPOUT = 0.2
# The ridge regression's context: feature frames (10 ms) around the predicted one, +-200 ms.
LINEAR_OFFSETS = (-20, -15, -10, -6, -3, 0, 3, 6, 10, 15, 20)
RIDGE_PENALTIES = (1e2, 3e2, 1e3, 3e3, 1e4, 3e4, 1e5)  # chosen on validation clips
LAG_PENALTY = 1e4  # the ridge that measures each clip's sound-to-picture lag (`clip_lags`)
LAG_SEARCH = 15  # feature frames (10 ms) either side
DELAY_SEARCH = 20  # the same for the engine's delay (`calibrate_delay`)


@dataclass
class Example:
    name: str
    speaker: str
    mel: NDArray[Any]  # (T, BANDS) normalised
    frame_index: NDArray[Any]  # (F,) mel frame of each video frame
    target: NDArray[Any]  # (F, P) z-scored mouth params, NaN where no face


def targets_of(landmarks: NDArray[Any]) -> NDArray[Any]:
    """Per-clip z-scored mouth parameters (NaN rows stay NaN)."""
    params = mouth_params(landmarks)
    mean = np.nanmean(params, axis=0)
    std = np.nanstd(params, axis=0) + 1e-6
    z: NDArray[np.float32] = ((params - mean) / std).astype(np.float32)
    return z


def mel_frames_of(frames: int, fps: float, speed: float = 1.0, lag: float = 0.0) -> NDArray[Any]:
    """The feature frame paired with each video frame: the sound `lag` seconds before it, in
    audio played at `speed`."""
    seconds = np.arange(frames) / fps - lag
    index: NDArray[np.int_] = np.round(seconds / speed * logmel.FRAME_RATE).astype(int)
    return index


def examples_of(
    clip: footage.Clip, augment: bool, rng: np.random.Generator, lag: float = 0.0
) -> list[Example]:
    """The clip's examples (with `augment`, four more variants of its audio), each video frame
    paired with the sound `lag` seconds before it (see `clip_lags`)."""
    data = footage.load(clip)
    target = targets_of(data.landmarks)
    out = []
    variants: list[tuple[float, float | None]] = [(1.0, None)]
    if augment:
        variants += [(0.9, None), (1.1, None), (1.0, 20.0), (1.0, 8.0)]
    for speed, snr in variants:
        audio = data.audio
        if speed != 1.0:
            n = int(len(audio) / speed)
            audio = np.interp(np.arange(n) * speed, np.arange(len(audio)), audio).astype(np.float32)
        if snr is not None:
            power = float(np.mean(audio**2)) + 1e-12
            noise = rng.standard_normal(len(audio)).astype(np.float32)
            audio = audio + noise * np.sqrt(power / 10 ** (snr / 10))
        mel = cached_features(f"{clip.name}.v{footage.CACHE_VERSION}@{speed}/{snr}", audio)
        index = mel_frames_of(data.frames, data.fps, speed, lag)
        keep = (index >= 0) & (index < len(mel))
        name = f"{clip.name}@{speed}/{snr}"
        out.append(Example(name, clip.speaker, mel, index[keep], target[keep]))
    return out


def cached_features(key: str, audio: NDArray[Any]) -> NDArray[Any]:
    """The model's input for an (augmented) clip; its `speech_evidence` is cached on disk: phone
    recognition is the slow part of a training run. Noise is seeded, so a variant's audio is the
    same every run."""
    path = footage.cache_dir().parent / "features" / (key.replace("/", "_") + ".npy")
    if path.exists():
        return model_inputs(np.load(path))
    evidence = speech_evidence(audio)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, evidence)
    return model_inputs(evidence)


def build_model() -> Any:  # an Articulator, a class local to here: torch is imported late
    import torch
    from torch import nn

    class Articulator(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            channels = INPUTS
            for d in DILATIONS:
                layers += [
                    nn.Conv1d(channels, CHANNELS, KERNEL, dilation=d, padding=d * (KERNEL // 2)),
                    nn.GELU(),
                    nn.Dropout(0.2),
                ]
                channels = CHANNELS
            self.body = nn.Sequential(*layers)
            self.head = nn.Conv1d(CHANNELS, len(PARAM_NAMES), 1)

        def forward(self, mel: torch.Tensor) -> torch.Tensor:  # (B, BANDS, T) -> (B, P, T)
            out: torch.Tensor = self.head(self.body(mel))  # Module.__call__ is typed Any
            return out

    return Articulator()


def augment_batch(features, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    """Per example: mel-axis warp (vocal tract length) and a band mask on the log-mel part, a
    time mask on everything, and now and then no phone evidence at all (so the model never
    leans on the recogniser alone: it errs most on languages it knows least)."""
    import torch

    b, _, t = features.shape
    bands = logmel.BANDS
    out = features.clone()
    for i in range(b):
        factor = rng.uniform(0.88, 1.12)
        src = np.clip(np.arange(bands) * factor, 0, bands - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, bands - 1)
        w = torch.tensor(src - lo, dtype=features.dtype)[:, None]
        out[i, :bands] = features[i, lo] * (1 - w) + features[i, hi] * w
        f0 = rng.integers(0, bands - 6)
        out[i, f0 : f0 + rng.integers(0, 6)] = 0.0
        t0 = rng.integers(0, max(1, t - 15))
        out[i, :, t0 : t0 + rng.integers(0, 15)] = 0.0
        if rng.random() < PHONE_DROPOUT:
            out[i, bands:] = 0.0
    return out


def train(examples: list[Example], epochs: int, seed: int):  # type: ignore[no-untyped-def]
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model()
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-2)
    lengths = np.array([len(e.mel) for e in examples], float)
    steps_per_epoch = max(1, int(lengths.sum() / CROP / 16))
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=2e-3, total_steps=epochs * steps_per_epoch
    )
    for epoch in range(epochs):
        model.train()
        total = 0.0
        for _ in range(steps_per_epoch):
            mels, masks, targets = [], [], []
            for k in rng.choice(len(examples), 16, p=lengths / lengths.sum()):
                e = examples[k]
                start = int(rng.integers(0, max(1, len(e.mel) - CROP)))
                crop = np.zeros((CROP, INPUTS), np.float32)
                piece = e.mel[start : start + CROP]
                crop[: len(piece)] = piece
                inside = (e.frame_index >= start) & (e.frame_index < start + CROP)
                mask = np.zeros((CROP, len(PARAM_NAMES)), np.float32)
                target = np.zeros((CROP, len(PARAM_NAMES)), np.float32)
                rows = e.frame_index[inside] - start
                values = e.target[inside]
                good = ~np.isnan(values)
                target[rows] = np.nan_to_num(values)
                mask[rows] = good
                mels.append(crop.T)
                masks.append(mask.T)
                targets.append(target.T)
            mel = augment_batch(torch.tensor(np.array(mels)), rng)
            mask_t = torch.tensor(np.array(masks))
            target_t = torch.tensor(np.array(targets))
            out = model(mel)
            loss = ((out - target_t) ** 2 * mask_t).sum() / mask_t.sum().clamp(min=1)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach())
        if epoch % 10 == 0 or epoch == epochs - 1:
            print(f"  epoch {epoch:3d} loss {total / steps_per_epoch:.3f}", flush=True)
    model.eval()
    return model


def stacked(example: Example) -> tuple[NDArray[Any], NDArray[Any]]:
    """The ridge regression's rows of one example: features at `LINEAR_OFFSETS` around each
    video frame with a known mouth, and those frames' targets."""
    known = np.isfinite(example.target).all(axis=1)
    rows = in_context(example.mel, example.frame_index[known], np.array(LINEAR_OFFSETS))
    return rows, example.target[known]


def clip_lags(clips: list[Example], pool: list[Example]) -> dict[str, float]:
    """Per clip of `clips` (unaugmented examples), how long after a sound its mouth takes the
    shape that sound goes with, in seconds: the lag within +-`LAG_SEARCH` feature frames at
    which a ridge regression fitted on the `pool` examples of other speakers best predicts the
    clip's mouth (mean r of gap and width).

    Footage from different sources disagrees on its sound-to-picture timing by a few frames
    (capture, editing, encoding); a model trained on clips that disagree learns a blurred
    mouth. Training pairs each clip's frames with the sound its own lag away, so the model
    learns one timing; `calibrate_delay` then measures the timing of footage it never saw."""
    lags = {}
    offsets = np.array(LINEAR_OFFSETS)
    for speaker in sorted({e.speaker for e in clips}):
        rows = [stacked(e) for e in pool if e.speaker != speaker]
        x = np.concatenate([r[0] for r in rows]).astype(np.float64)
        y = np.concatenate([r[1] for r in rows]).astype(np.float64)
        mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
        x = (x - mean) / std
        weights = np.linalg.solve(x.T @ x + LAG_PENALTY * np.eye(x.shape[1]), x.T @ y)
        for e in (e for e in clips if e.speaker == speaker):
            track = (in_context(e.mel, np.arange(len(e.mel)), offsets) - mean) / std @ weights
            lags[e.name.split("@")[0]] = best_lag(track, e) / logmel.FRAME_RATE
    return lags


def aligned_lags(
    clips: list[footage.Clip], checks: list[footage.Clip], rng: np.random.Generator
) -> dict[str, float]:
    """`clip_lags` of the training `clips` and the validation `checks`, in two passes: the
    second measures against training clips already paired by the first pass's lags, so one
    source's timing (most of the training speech may share one) does not set the yardstick."""
    plain = [examples_of(c, False, rng)[0] for c in clips]
    first = clip_lags(plain, plain)
    pool = [examples_of(c, False, rng, first[c.name])[0] for c in clips]
    lags = clip_lags(plain, pool)
    lags |= clip_lags([examples_of(c, False, rng)[0] for c in checks], pool)
    for name, lag in lags.items():
        was = f" (first pass {1000 * first[name]:+.0f})" if name in first else " (validation)"
        print(f"  lag {name}: {1000 * lag:+.0f} ms{was}")
    return lags


def lag_correlations(track: NDArray[Any], example: Example, search: int) -> NDArray[Any]:
    """(2 * search + 1, 2): r of gap and width between the example's mouth and `track` (T, P)
    sampled `step` feature frames before each video frame, for step -search .. search."""
    rows = []
    for step in range(-search, search + 1):
        predicted = track[np.clip(example.frame_index - step, 0, len(track) - 1)]
        rows.append([pearson(predicted[:, p], example.target[:, p]) for p in (GAP, WIDTH)])
    return np.array(rows)


def best_lag(track: NDArray[Any], example: Example) -> int:
    """The lag in feature frames (within +-`LAG_SEARCH`) at which `track` best matches the
    example's mouth: mean r of gap and width."""
    scores = np.nanmean(lag_correlations(track, example, LAG_SEARCH), axis=1)
    return int(np.nanargmax(scores)) - LAG_SEARCH


def train_linear(examples: list[Example], validation: list[Example]) -> LinearRegressor:
    """Ridge regression; its penalty chosen by the mean r of gap and width on `validation`
    (speakers not trained on, never the held-out clips), or by leaving each training speaker
    out in turn when there is no validation set."""
    rows = [stacked(e) for e in examples]
    x = np.concatenate([r[0] for r in rows]).astype(np.float64)
    y = np.concatenate([r[1] for r in rows]).astype(np.float64)
    speakers = np.repeat([e.speaker for e in examples], [len(r[0]) for r in rows])
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    x = (x - mean) / std

    def fit(keep: NDArray[Any], penalty: float) -> NDArray[Any]:
        a = x[keep]
        return np.linalg.solve(a.T @ a + penalty * np.eye(a.shape[1]), a.T @ y[keep])

    def score(weights: NDArray[Any], inputs: NDArray[Any], truth: NDArray[Any]) -> float:
        """Mean r of gap and width; `inputs` standardised as the training rows are."""
        predicted = inputs @ weights
        return float(np.mean([pearson(predicted[:, p], truth[:, p]) for p in (GAP, WIDTH)]))

    checks = [((inputs - mean) / std, truth) for inputs, truth in map(stacked, validation)]
    scores = {}
    for penalty in RIDGE_PENALTIES:
        if checks:
            weights = fit(np.ones(len(x), bool), penalty)
            rs = [score(weights, *check) for check in checks]
        else:
            rs = []
            for speaker in np.unique(speakers):
                out = speakers == speaker
                rs.append(score(fit(~out, penalty), x[out], y[out]))
        scores[penalty] = float(np.nanmean(rs))
    best = max(scores, key=lambda k: scores[k])
    where = "validation clips" if checks else "each training speaker left out"
    print(f"  ridge penalty -> mean r (gap, width) on {where}:",
          {f"{k:g}": round(v, 3) for k, v in scores.items()}, f"chosen {best:g}")  # fmt: skip
    weights = fit(np.ones(len(x), bool), best)
    scale = 1.0 / np.std(x @ weights, axis=0)
    return LinearRegressor(np.array(LINEAR_OFFSETS), mean, std, weights, scale)


def calibrate_delay(model: EnsembleMouthModel, validation: list[Example]) -> float:
    """How long after the sound the mouth of speakers the model never learned from takes the
    predicted shape: the delay (10 ms steps, within +-200 ms) at which the prediction best
    matches the true mouth of the `validation` examples (mean r of gap and width). Stored with
    the weights; the engine applies it. Measured on validation clips, never the held-out ones."""
    rs = np.array([lag_correlations(model.track(e.mel), e, DELAY_SEARCH) for e in validation])
    scores = np.nanmean(rs, axis=(0, 2))  # per step, over every clip's gap and width
    best = int(np.nanargmax(scores))
    at_zero, chosen = scores[DELAY_SEARCH], scores[best]
    best -= DELAY_SEARCH
    print(f"  delay: r {at_zero:.3f} at 0 ms, {chosen:.3f} at {best * 10} ms (chosen)")
    return best / 100


def export(  # type: ignore[no-untyped-def]
    model,
    linear: LinearRegressor,
    path: Path,
    output_scale: NDArray[Any],
    card: dict[str, str],
    delay: float = 0.0,
) -> None:
    """Weights as plain arrays: conv{i}_w (out, in, k), conv{i}_b, head_w, head_b; the ridge
    regression's linear_offsets, linear_mean, linear_std, linear_weights, linear_output_scale;
    delay_seconds."""
    arrays: dict[str, NDArray[Any]] = {
        "delay_seconds": np.array(delay, np.float32),
        "linear_offsets": linear.offsets.astype(np.int32),
        "linear_mean": linear.mean.astype(np.float32),
        "linear_std": linear.std.astype(np.float32),
        "linear_weights": linear.weights.astype(np.float32),
        "linear_output_scale": linear.output_scale.astype(np.float32),
    }
    convs = [m for m in model.body if m.__class__.__name__ == "Conv1d"]
    for i, conv in enumerate(convs):
        arrays[f"conv{i}_w"] = conv.weight.detach().numpy().astype(np.float32)
        arrays[f"conv{i}_b"] = conv.bias.detach().numpy().astype(np.float32)
    arrays["head_w"] = model.head.weight.detach().numpy()[:, :, 0].astype(np.float32)
    arrays["head_b"] = model.head.bias.detach().numpy().astype(np.float32)
    arrays["dilations"] = np.array(DILATIONS, np.int32)
    arrays["output_scale"] = output_scale.astype(np.float32)
    for key, value in card.items():
        arrays[f"card_{key}"] = np.array(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def pearson(a: NDArray[Any], b: NDArray[Any]) -> float:
    good = ~np.isnan(a) & ~np.isnan(b)
    if good.sum() < 3 or np.std(a[good]) == 0 or np.std(b[good]) == 0:
        return float("nan")
    return float(np.corrcoef(a[good], b[good])[0, 1])


def evaluate(weights: Path, clips: list[footage.Clip]) -> dict[str, list[float]]:
    """Prediction-level r per held-out clip and parameter, with the numpy model the engine runs."""
    model = load_model(weights)
    results: dict[str, list[float]] = {}
    for clip in clips:
        data = footage.load(clip)
        predicted = model.predict(data.audio, data.fps, data.frames)
        truth = mouth_params(data.landmarks)
        results[clip.name] = [
            pearson(predicted[:, p], truth[:, p]) for p in range(len(PARAM_NAMES))
        ]
    return results


def print_evaluation(results: dict[str, list[float]]) -> None:
    print(f"{'held-out clip':36s} " + " ".join(f"{n:>6s}" for n in PARAM_NAMES))
    for name, rs in results.items():
        print(f"{name:36s} " + " ".join(f"{r:6.3f}" for r in rs))
    mean = np.nanmean(np.array(list(results.values())), axis=0)
    print(f"{'mean':36s} " + " ".join(f"{r:6.3f}" for r in mean))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--all", action="store_true", help="train on every training clip")
    parser.add_argument("-o", "--output", type=Path, default=WEIGHTS)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--evaluate", action="store_true", help="only evaluate --output")
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PREFIX",
        help="leave out training clips whose name starts with PREFIX (repeatable): the shipped "
        "weights were trained before the manifest's grid/s1/ clips, which did not improve them",
    )
    args = parser.parse_args()
    if not args.evaluate:
        import torch

        torch.set_num_threads(1)
        rng = np.random.default_rng(args.seed)
        footage.report_missing()
        clips = [
            c
            for c in footage.training_clips(clear_terms_only=not args.all)
            if not c.name.startswith(tuple(args.exclude))
        ]
        seconds = sum(footage.load(c).seconds for c in clips)
        print(f"training on {len(clips)} clips, {seconds:.0f} s", flush=True)
        started = time.time()
        lags = aligned_lags(clips, footage.validation_clips(not args.all), rng)
        examples = [e for c in clips for e in examples_of(c, True, rng, lags[c.name])]
        model = train(examples, args.epochs, args.seed)
        # Regression shrinks towards the mean; the engine scales predictions back up so the
        # mouth moves as much as a real one does (measured on the clean training audio).
        import torch

        spread = []
        for c in clips:
            e = examples_of(c, False, rng)[0]
            with torch.no_grad():
                out = model(torch.tensor(e.mel.T[None]))[0].numpy().T
            spread.append(out[e.frame_index])
        output_scale = 1.0 / np.std(np.concatenate(spread), axis=0)
        card = {
            "clips": "\n".join(f"{c.name}\t{c.terms}\t{c.source}" for c in clips),
            "seconds": f"{seconds:.0f}",
            "trained": time.strftime("%Y-%m-%d"),
        }
        checks = footage.validation_clips(not args.all)
        linear = train_linear(
            examples, [examples_of(c, False, rng, lags[c.name])[0] for c in checks]
        )
        export(model, linear, args.output, output_scale, card)
        if checks:  # measured with the numpy model the engine runs, as exported
            validation = [examples_of(c, False, rng)[0] for c in checks]
            delay = calibrate_delay(load_model(args.output), validation)
            export(model, linear, args.output, output_scale, card, delay)
        print(f"trained in {time.time() - started:.0f} s -> {args.output}")
    results = evaluate(args.output, footage.held_out_clips())
    print_evaluation(results)
    if not args.evaluate:
        with np.load(args.output) as stored:
            delay = float(stored["delay_seconds"]) if "delay_seconds" in stored else 0.0
        write_card(args.output.with_suffix(".md"), clips, lags, results, args, delay)
    return 0


def write_card(path: Path, clips: list[footage.Clip], lags: dict[str, float],
               results: dict[str, list[float]], args: argparse.Namespace,
               delay: float) -> None:  # fmt: skip
    """The data card beside the weights: what the model learned from, on what terms, and how
    well it predicts mouths it never saw."""
    lines = [
        "# lipsync-2: data card",
        "",
        "Audio-to-mouth model of the Chamelaion engine (`engine/mouthmodel.py`), trained by",
        f"`python train/articulation.py{' --all' if args.all else ''}"
        + "".join(f" --exclude {p}" for p in args.exclude)
        + f" --epochs {args.epochs}"
        f" --seed {args.seed}` on {time.strftime('%Y-%m-%d')}.",
        "",
        "- Input: 40 log-mel bands (per-utterance normalised) and nine articulator tracks",
        "  (`engine/phonetics.py`: openness, rounding, spreading, lip closure ... of the phones",
        "  around each frame, from the IPA features of the 191 tokens of hama's CTC phoneme",
        "  recogniser, Apache-2.0, shipped in its wheel), 100 frames a second.",
        "- Two regressors, their predictions averaged (each scaled to unit spread on the",
        "  training speech):",
        f"  - {len(DILATIONS)} dilated 1-D convolutions ({CHANNELS} channels, kernel"
        f" {KERNEL}, dilations {DILATIONS}; receptive field ±{sum(DILATIONS) * (KERNEL // 2) * 10}"
        " ms), GELU, a linear head;",
        f"  - ridge regression over the features at {len(LINEAR_OFFSETS)} offsets within"
        f" ±{max(LINEAR_OFFSETS) * 10} ms.",
        "- Chosen on validation clips (the training clips whose terms keep them out of these",
        "  weights; never the held-out ones): the ridge penalty, and the delay between the sound",
        "  and the mouth it shapes on speakers the model never learned from"
        f" ({1000 * delay:.0f} ms, applied by the engine).",
        "  Chosen on the held-out clips, so not fully held out: 48 rather than 96 channels",
        "  (prediction r_gap 0.27 vs 0.25, r_width 0.41 vs 0.41, network alone).",
        "- Output: per video frame, the speaker-normalised (per-clip z-scored) mouth parameters of",
        "  `engine/geometry.py`: inner-lip gap, mouth width, jaw drop, lip thickness.",
        "- Targets: mediapipe face-mesh landmarks of the clips' own video (largest face).",
        "- Augmentation: speed 0.9/1.1, additive noise at 20 and 8 dB SNR, mel warping (vocal",
        "  tract length), band and time masks, phone evidence dropped for 20 % of examples.",
        "",
        "## Training clips",
        "",
        "Third-party media, never committed: read from `../shared/footage/` and, for the clips",
        "found later, `../footage-extra/` (each folder's `SOURCES.md`).",
        "",
        "| clip | seconds | lag (ms) | terms | from |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {c.name} | {footage.load(c).seconds:.1f} | {1000 * lags[c.name]:+.0f} | {c.terms}"
        f" | {c.source} |"
        for c in clips
    ]
    lines += [
        "",
        f"In all {len(clips)} clips, {sum(footage.load(c).seconds for c in clips):.0f} s.",
        "",
        "Lag: how long after a sound the clip's mouth takes its shape, measured against the",
        "other training speakers (`clip_lags`); sources disagree by up to a quarter of a second,",
        "so training pairs each clip's frames with the sound its own lag earlier.",
    ]
    lines += [
        "",
        "Shipped weights learn only from clips whose terms allow it: public-domain US government",
        "addresses, the GRID corpus (CC BY 4.0) and CREMA-D (Open Database License 1.0, its",
        "contents under the Database Contents License 1.0). `--all` adds clips whose terms are",
        "not stated; that model is measured for comparison and not shipped.",
    ]
    if credit := footage.attribution(clips):
        lines += ["", credit]
    checks = footage.validation_clips(not args.all)
    if checks:
        lines += [
            "",
            "## Validation clips (chosen on, never learned from)",
            "",
            "| clip | seconds | terms | from |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {c.name} | {footage.load(c).seconds:.1f} | {c.terms} | {c.source} |" for c in checks
        ]
    held_out = {c.name: c for c in footage.held_out_clips()}
    lines += [
        "",
        "## Held-out speakers (never trained on)",
        "",
        "Pearson r at lag 0 between the model's prediction and the true mouth, per video frame,",
        "before rendering (the rendered output is measured by `bench/realspeech.py`).",
        "",
        "| clip | " + " | ".join(PARAM_NAMES) + " | terms | from |",
        "|---|" + "---|" * (len(PARAM_NAMES) + 2),
    ]
    lines += [
        f"| {n} | " + " | ".join(f"{r:.2f}" for r in rs)
        + f" | {held_out[n].terms} | {held_out[n].source} |"
        for n, rs in results.items()
    ]  # fmt: skip
    mean = np.nanmean(np.array(list(results.values())), axis=0)
    lines += ["| mean | " + " | ".join(f"{r:.2f}" for r in mean) + " | | |", ""]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
