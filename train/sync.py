"""Train the audio-visual sync scorer (`chamelaion.engine.sync`) on real talking-head footage.

    python train/sync.py        # on the clear-terms clips (public domain, GRID, CREMA-D): shipped
    python train/sync.py --all  # also a model on every training clip, for its held-out figures
                                # in the data card (some of those clips state no terms: not shipped)

Objective: InfoNCE between a lip-shape encoder and an MFCC encoder. Each batch is drawn from one
clip, so the negatives of a mouth window are the sounds of other moments of the same speaker in
the same room (speaker and channel cannot give the answer away), plus hard negatives: the same
moment's sound shifted by 3-12 frames, which is exactly the confusion an offset search faces.
`--objective cca` fits regularised linear CCA instead, for comparison.

Figures are measured on the held-out clips (speakers never trained on) as the benchmark does:
each clip's audio delayed by -6, -3, 0, +3, +6 frames must move the estimated offset by as much;
each clip's own speech must get a higher confidence than every other held-out clip's speech.
The weights are written to `--out` (default: the engine's `weights/sync.npz`) and a data card
next to them; training uses one thread (the machines are shared) and takes a minute or two.
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
from heldout import Figures, held_out_figures
from numpy.typing import NDArray

from chamelaion.engine import faces, sync

HARD_SHIFTS = np.array([s for s in range(-12, 13) if abs(s) >= 3])
NEAR_FRAMES = 2  # same-clip windows this close to the anchor are not negatives
LIP_COUNT = len(sync.LIP_POINTS)


def _mirror_permutation() -> NDArray[Any]:
    """Index of each lip point's mirror image (left and right swapped) within LIP_POINTS."""
    mirror: dict[int, int] = {}
    for contour in (faces.OUTER_UPPER_LIP, faces.OUTER_LOWER_LIP, faces.INNER_UPPER_LIP,
                    faces.INNER_LOWER_LIP):  # fmt: skip
        for a, b in zip(contour, contour[::-1], strict=True):
            mirror[a] = b
    order = list(sync.LIP_POINTS)
    return np.array([order.index(mirror[p]) for p in order])


MIRROR = _mirror_permutation()


def augment(windows: NDArray[Any], rng: np.random.Generator) -> NDArray[Any]:
    """Half the windows mirrored left to right, every one's movement scaled by 0.7-1.4: a mouth
    says the same thing mirrored or opened wider, so the encoder should not tell them apart."""
    shapes = windows.reshape(len(windows), sync.VISUAL_TAPS, 2, LIP_COUNT).copy()
    flip = rng.random(len(windows)) < 0.5
    shapes[flip] = shapes[flip][..., MIRROR]
    shapes[flip, :, 0] *= -1
    shapes *= rng.uniform(0.7, 1.4, size=(len(windows), 1, 1, 1))
    return shapes.reshape(len(windows), -1)


@dataclass
class ClipData:
    clip: footage.Clip
    fps: float
    visual: NDArray[Any]  # (frames, VISUAL_TAPS * 80), NaN rows unusable
    audio: NDArray[Any]  # (frames + 2 * pad, AUDIO_TAPS * 26): audio at frame t is row t + pad
    pad: int

    def audio_at(self, frames: NDArray[Any]) -> NDArray[Any]:
        rows: NDArray[Any] = self.audio[frames + self.pad]
        return rows


def prepare(clip: footage.Clip, pad: int = 16, lag: float = 0.0) -> ClipData:
    """The clip's windows, its sound read `lag` seconds later than its picture (see
    `timing_lags`)."""
    f = footage.load(clip)
    visual = sync.visual_windows(sync.lip_shapes(f.landmarks), f.fps)
    times = np.arange(-pad, f.frames + pad) / f.fps + lag
    audio = sync.audio_windows(sync.mfcc(f.audio), times)
    return ClipData(clip, f.fps, visual, audio, pad)


def usable(data: ClipData) -> NDArray[Any]:
    t = np.arange(len(data.visual))
    frames: NDArray[Any] = t[
        ~np.isnan(data.visual).any(axis=1) & ~np.isnan(data.audio_at(t)).any(axis=1)
    ]
    return frames


# ----------------------------------------------------------------------------------------------
# Contrastive training (torch only here: the engine runs the exported weights in numpy)


def train_contrastive(
    clips: list[ClipData], steps: int, batch: int, hidden: int, dim: int, seed: int, augmented: bool
) -> dict[str, NDArray[Any]]:
    import torch
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    frames = [usable(c) for c in clips]
    all_visual = np.concatenate([c.visual[f] for c, f in zip(clips, frames, strict=True)])
    v_mean = all_visual.mean(axis=0)
    v_scale = np.full_like(v_mean, all_visual.std())  # one scale: keeps the shape's geometry
    visual_net = nn.Sequential(
        nn.Linear(all_visual.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, dim)
    )
    audio_net = nn.Sequential(
        nn.Linear(clips[0].audio.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, dim)
    )
    params = [*visual_net.parameters(), *audio_net.parameters()]
    optimiser = torch.optim.AdamW(params, lr=2e-3, weight_decay=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=2e-3, total_steps=steps)
    weights = np.array([len(f) for f in frames], dtype=float)
    weights /= weights.sum()
    temperature = 0.07
    for step in range(steps):
        k = rng.choice(len(clips), p=weights)
        c, usable_frames = clips[k], frames[k]
        t = rng.choice(usable_frames, size=min(batch, len(usable_frames)), replace=False)
        shifts = rng.choice(HARD_SHIFTS, size=(len(t), 4))
        hard_t = (t[:, None] + shifts).clip(-c.pad, len(c.visual) + c.pad - 1)
        v_in = ((augment(c.visual[t], rng) if augmented else c.visual[t]) - v_mean) / v_scale
        a_pos = c.audio_at(t)
        a_hard = c.audio_at(hard_t.ravel())
        hard_ok = ~np.isnan(a_hard).any(axis=1).reshape(len(t), -1)
        v = nn.functional.normalize(visual_net(torch.from_numpy(v_in)), dim=1)
        a = nn.functional.normalize(audio_net(torch.from_numpy(a_pos)), dim=1)
        h = nn.functional.normalize(
            audio_net(torch.from_numpy(np.nan_to_num(a_hard))), dim=1
        ).reshape(len(t), -1, v.shape[1])
        near = torch.from_numpy(
            (np.abs(t[:, None] - t[None, :]) <= NEAR_FRAMES) & ~np.eye(len(t), dtype=bool)
        )
        sim = v @ a.T / temperature
        sim = sim.masked_fill(near, -1e9)
        hard = torch.einsum("bd,bkd->bk", v, h) / temperature
        hard = hard.masked_fill(~torch.from_numpy(hard_ok), -1e9)
        target = torch.arange(len(t))
        loss = nn.functional.cross_entropy(torch.cat([sim, hard], dim=1), target)
        loss = loss + nn.functional.cross_entropy(sim.T, target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 500 == 0 or step == steps - 1:
            print(f"  step {step:5d}  loss {loss.item():.3f}", flush=True)
    out = {"visual_mean": v_mean.astype(np.float32), "visual_scale": v_scale.astype(np.float32)}
    for name, net in (("visual", visual_net), ("audio", audio_net)):
        linear = [m for m in net if isinstance(m, nn.Linear)]
        for i, layer in enumerate(linear):
            out[f"{name}_w{i}"] = layer.weight.detach().numpy().T.astype(np.float32)
            out[f"{name}_b{i}"] = layer.bias.detach().numpy().astype(np.float32)
    return out


# ----------------------------------------------------------------------------------------------
# CCA, for comparison


def train_cca(clips: list[ClipData], dim: int, ridge: float = 0.1) -> dict[str, NDArray[Any]]:
    frames = [usable(c) for c in clips]
    x = np.concatenate([c.visual[f] for c, f in zip(clips, frames, strict=True)]).astype(float)
    y = np.concatenate([c.audio_at(f) for c, f in zip(clips, frames, strict=True)]).astype(float)
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    x, y = x - x_mean, y - y_mean
    v_scale = x.std()
    x /= v_scale
    n = len(x)

    def whitener(m: NDArray[Any]) -> NDArray[Any]:
        cov = m.T @ m / n
        cov += ridge * np.trace(cov) / len(cov) * np.eye(len(cov))
        values, vectors = np.linalg.eigh(cov)
        whitening: NDArray[Any] = vectors @ np.diag(values**-0.5) @ vectors.T
        return whitening

    wx, wy = whitener(x), whitener(y)
    u, _, vt = np.linalg.svd(wx @ (x.T @ y / n) @ wy)
    px, py = wx @ u[:, :dim], wy @ vt.T[:, :dim]
    return {
        "visual_mean": x_mean.astype(np.float32),
        "visual_scale": np.full(x.shape[1], v_scale, np.float32),
        "visual_w0": px.astype(np.float32),
        "visual_b0": np.zeros(dim, np.float32),
        "audio_w0": py.astype(np.float32),
        "audio_b0": (-y_mean @ py).astype(np.float32),
    }


def model_from(arrays: dict[str, NDArray[Any]]) -> sync.SyncModel:
    def layers(prefix: str) -> tuple[tuple[NDArray[Any], NDArray[Any]], ...]:
        count = sum(1 for k in arrays if k.startswith(f"{prefix}_w"))
        return tuple((arrays[f"{prefix}_w{i}"], arrays[f"{prefix}_b{i}"]) for i in range(count))

    return sync.SyncModel(
        arrays["visual_mean"], arrays["visual_scale"], layers("visual"), layers("audio")
    )


def timing_lags(
    clips: list[footage.Clip], reference: list[footage.Clip], args: argparse.Namespace
) -> dict[str, float]:
    """Per clip of `clips`, how many seconds its sound comes after its mouth, as a model
    trained on the `reference` clips judges (the sub-frame minimum of its offset curve).

    Sources disagree on sound-to-picture timing by up to a quarter of a second (capture,
    editing, encoding): most of the clear-terms speech (the Obama addresses) is timed unlike
    most other footage. A scorer trained on them as they are would call typical footage out of
    sync by a few frames. So the reference is the validation clips (most footage, never shipped
    from: only this one number per training clip is taken from them), and each training clip
    is read at its own lag: offset 0 then means timed as most footage is."""
    model = model_from(train_contrastive([prepare(c) for c in reference], *_settings(args)))
    lags = {}
    for clip in clips:
        f = footage.load(clip)
        curve = sync.sync_curve(sync.frame_distances(f.landmarks, f.fps, f.audio, model=model))
        lags[clip.name] = (curve.offset + _vertex(curve.distances, curve.best)) / f.fps
        print(f"  lag {clip.name}: {1000 * lags[clip.name]:+.0f} ms", flush=True)
    return lags


def _vertex(values: NDArray[Any], best: int) -> float:
    """Where the parabola through the minimum and its neighbours bottoms out, relative to the
    minimum (-0.5 .. 0.5); 0 at an edge or on a flat curve."""
    if best == 0 or best == len(values) - 1:
        return 0.0
    left, centre, right = values[best - 1 : best + 2]
    curvature = left - 2 * centre + right
    if not np.isfinite(curvature) or curvature <= 0:
        return 0.0
    return float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))


def _settings(args: argparse.Namespace) -> tuple[int, int, int, int, int, bool]:
    return args.steps, args.batch, args.hidden, args.dim, args.seed, not args.no_augment


def train(
    clips: list[footage.Clip], args: argparse.Namespace, lags: dict[str, float]
) -> tuple[dict[str, NDArray[Any]], str]:
    """Weights trained on `clips` (each read at its lag), and a line saying how long it took."""
    started = time.time()
    data = [prepare(c, lag=lags.get(c.name, 0.0)) for c in clips]
    if args.objective == "cca":
        arrays = train_cca(data, args.dim)
    else:
        arrays = train_contrastive(data, *_settings(args))
    minutes = sum(len(d.visual) / d.fps for d in data) / 60
    return arrays, f"{len(data)} clips, {minutes:.1f} min, trained in {time.time() - started:.0f} s"


def report(name: str, figures: Figures, how: str) -> str:
    return (
        f"{name} ({how}): shifts tracked within ±1 frame {figures.tracking:.1%}, own speech more "
        f"confident than another clip's in {figures.separation:.1%} of pairs (median confidence "
        f"own {np.median(figures.own_confidence):.3f}, other "
        f"{np.median(figures.other_confidence):.3f})"
    )


def data_card(
    clips: list[footage.Clip],
    lags: dict[str, float],
    args: argparse.Namespace,
    lines: list[str],
    summaries: list[str],
) -> str:
    objective = (
        "regularised linear CCA between the two windows"
        if args.objective == "cca"
        else (
            f"InfoNCE (temperature 0.07) between two MLP encoders ({args.hidden} hidden units, "
            f"{args.dim}-dimensional unit-length output), {args.steps} steps of {args.batch} "
            "windows from one clip each; negatives: the clip's other moments (more than "
            f"{NEAR_FRAMES} frames away) and the same moment's sound shifted by 3-12 frames; "
            + ("no augmentation" if args.no_augment else "mirrored and 0.7-1.4x scaled lip shapes")
        )
    )
    rows = "\n".join(
        f"| {c.name} | {c.speaker} | {c.language} | {1000 * lags[c.name]:+.0f} | {c.terms} "
        f"| {c.source} |"
        for c in clips
    )
    held = "\n".join(
        f"| {c.name} | {c.speaker} | {c.language} | {c.terms} |" for c in footage.held_out_clips()
    )
    body = "\n".join(f"    {line}" for line in lines)
    results = "\n".join(f"- {s}" for s in summaries)
    credit = footage.attribution(clips)
    attribution = f"\n{credit}\n" if credit else ""
    return f"""# Sync scorer weights (`sync.npz`)

Written by `python train/sync.py{" --all" if args.all else ""}` (seed {args.seed}); read by
`chamelaion.engine.sync` (numpy only). Not derived from the engine's audio-to-mouth model.

## Training clips

Only clips whose terms allow shipping derived weights: public-domain US government works, the
GRID corpus (CC BY 4.0) and CREMA-D (Open Database License 1.0, its contents under the Database
Contents License 1.0). The footage itself is not in the repository.
{attribution}
| clip | speaker | language | lag (ms) | terms | source |
|---|---|---|---|---|---|
{rows}

Lag: how long the clip's sound comes after its mouth, beyond the timing of most footage, as
judged by a scorer trained on the validation clips (training clips whose terms keep them out
of these weights); each clip's sound is read that much later, so offset 0 means timed as most
footage is (`timing_lags`).

## Model

- picture: 40 inner and outer lip landmarks (mediapipe face mesh), eyes level, unit eye span,
  relative to the mouth centre, the clip's mean shape removed; 5 shapes 40 ms apart;
- sound: 13 MFCC and deltas every 10 ms, normalised per utterance; 0.2 s around the same instant;
- objective: {objective}.

## Held-out figures

Clips of speakers never trained on (all figures in the repository come from these):

| clip | speaker | language | terms |
|---|---|---|---|
{held}

{results}

Per clip (shipped weights; offset at no shift, then shift -> change of offset):

{body}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--all",
        action="store_true",
        help="also train on every training clip and report its figures (never shipped)",
    )
    parser.add_argument("--objective", choices=("contrastive", "cca"), default="contrastive")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-augment", action="store_true", help="no mirroring or scaling")
    parser.add_argument("--out", type=Path, default=sync.WEIGHTS)
    args = parser.parse_args()
    footage.report_missing()
    clear = footage.training_clips(clear_terms_only=True)
    everything = footage.training_clips(clear_terms_only=False)
    lags = timing_lags(everything, footage.validation_clips(clear_terms_only=True), args)
    arrays, how = train(clear, args, lags)
    figures = held_out_figures(model_from(arrays))
    print("\n".join(figures.lines))
    summaries = [report("clear-terms clips (shipped)", figures, how)]
    print(summaries[-1], flush=True)
    if args.all:
        every, how_all = train(everything, args, lags)
        summaries.append(
            report("every training clip", held_out_figures(model_from(every)), how_all)
        )
        print(summaries[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    card = args.out.with_suffix(".md")
    card.write_text(data_card(clear, lags, args, figures.lines, summaries))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB) and {card.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
