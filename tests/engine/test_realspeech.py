"""The real-speech benchmark (`bench/realspeech.py`): its measuring first, then the engine on one
held-out real clip.

The measuring is tested on landmarks whose truth is known by construction (a measured face whose
lips are moved by known amounts, under known head poses), so the benchmark cannot report a
correlation its arithmetic made up. The real-footage tests cross-reconstruct a held-out speaker
(Reagan, 26 s of a public-domain address; the whole clip, because over 8 s the same engine
scored r_gap 0.37 and over 10 s 0.14: a short clip's figure is mostly chance) and hold the engine
to the issue's target; they are skipped where the footage is not present (it is never part of
the repository).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import footage
import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter1d

import mediagen
from chamelaion.engine.faces import (
    CHIN,
    EYE_OUTER_CORNERS,
    INNER_LOWER_LIP,
    INNER_MOUTH_CORNERS,
    INNER_UPPER_LIP,
    MOUTH_CORNERS,
    OUTER_LOWER_LIP,
    OUTER_UPPER_LIP,
)

if TYPE_CHECKING:
    # mypy checks the tests without bench/ on its path (bench/engine.py would shadow the tests'
    # engine/ folder), so to it this is an untyped module; `make lint` checks it with bench/.
    import realspeech
else:
    _PATH = Path(__file__).resolve().parents[2] / "bench" / "realspeech.py"
    _SPEC = importlib.util.spec_from_file_location("realspeech", _PATH)
    assert _SPEC is not None and _SPEC.loader is not None
    realspeech = importlib.util.module_from_spec(_SPEC)
    sys.modules["realspeech"] = realspeech
    _SPEC.loader.exec_module(realspeech)

# A regression floor for the output's mouth width against the true mouth at lag 0 on this clip
# (measured 0.30 with the shipped lipsync-2). The targets (mean over the held-out clips:
# r_gap >= 0.45, r_width >= 0.40) are not met yet; bench/realspeech.py prints how far off.
MIN_R_WIDTH = 0.2
# How much better than the untouched source the output must follow the true gap and width.
MIN_MARGIN = 0.1
REAL_CLIP = "styletalk_reagan_clip1"
FRAMES = 200


# ----------------------------------------------------------------------------------------------
# Measuring, on landmarks with a known mouth


def _smooth(seed: int) -> NDArray[np.float64]:
    """A speech-like track in [0, 1]: smoothed noise."""
    x = gaussian_filter1d(np.random.default_rng(seed).normal(size=FRAMES), 3.0)
    scaled: NDArray[np.float64] = (x - x.min()) / (x.max() - x.min())
    return scaled


@pytest.fixture(scope="module")
def base_face() -> NDArray[np.float64]:
    """A real face mesh (468 points) measured on the astronaut portrait, mouth closed."""
    with realspeech.MeasuringLandmarker() as measure:
        points = measure(mediagen.face_frame(640, 480, 0.0))
    assert points is not None
    face: NDArray[np.float64] = points.astype(np.float64)
    return face


def _speaking(
    face: NDArray[np.float64],
    opening: NDArray[np.float64],
    spread: NDArray[np.float64],
    raise_upper: NDArray[np.float64],
) -> NDArray[np.float64]:
    """`face` per frame with the lower lip and chin lowered by `opening`, the corners pulled
    apart by `spread` and the upper lip raised by `raise_upper` (fractions of an eye span)."""
    eye = float(np.linalg.norm(face[EYE_OUTER_CORNERS[1]] - face[EYE_OUTER_CORNERS[0]]))
    lower = [*INNER_LOWER_LIP[1:-1], *OUTER_LOWER_LIP[1:-1], CHIN]
    upper = [*INNER_UPPER_LIP[1:-1], *OUTER_UPPER_LIP[1:-1]]
    sign = np.sign(face[MOUTH_CORNERS[1], 0] - face[MOUTH_CORNERS[0], 0])
    frames = np.repeat(face[None], len(opening), axis=0)
    frames[:, lower, 1] += 0.15 * eye * opening[:, None]
    frames[:, upper, 1] -= 0.05 * eye * raise_upper[:, None]
    for k, direction in ((0, -sign), (1, sign)):
        corner = [MOUTH_CORNERS[k], INNER_MOUTH_CORNERS[k]]
        frames[:, corner, 0] += direction * 0.08 * eye * spread[:, None]
    return frames


@pytest.fixture(scope="module")
def truth(base_face: NDArray[np.float64]) -> NDArray[np.float64]:
    return _speaking(base_face, _smooth(1), _smooth(2), _smooth(3))


def test_the_true_mouth_against_itself_is_r_1_at_lag_0(truth: NDArray[np.float64]) -> None:
    got = realspeech.compare(truth, realspeech.TrueMouth.of(truth))
    for name in realspeech.METRICS:
        assert got.r[name] == pytest.approx(1.0, abs=1e-9), name
        assert got.lag[name] == 0, name


def test_head_pose_does_not_change_the_measured_mouth(truth: NDArray[np.float64]) -> None:
    """The same mouth under a head turning, nodding in the picture plane, moving and scaling:
    every figure still r ~ 1, so a moving head cannot pass for (or mask) a moving mouth."""
    rng = np.random.default_rng(4)
    angle = np.radians(rng.uniform(-15, 15, FRAMES))
    scale = rng.uniform(0.7, 1.3, FRAMES)
    shift = rng.uniform(-60, 60, (FRAMES, 2))
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    rotation = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)
    posed = np.einsum("fij,fpj->fpi", rotation, truth) + shift[:, None]
    got = realspeech.compare(posed, realspeech.TrueMouth.of(truth))
    for name in realspeech.METRICS:
        assert got.r[name] > 0.999, name


def test_a_late_copy_peaks_at_its_delay_and_lag_0_says_less(truth: NDArray[np.float64]) -> None:
    late = np.concatenate([truth[:2], truth[:-2]])  # frame t shows the truth's t - 2
    got = realspeech.compare(late, realspeech.TrueMouth.of(truth))
    for name in realspeech.METRICS:
        assert got.lag[name] == 2, name
        assert got.best_r[name] == pytest.approx(1.0, abs=1e-9), name
        assert got.r[name] < got.best_r[name] - 0.05, name


def test_at_the_clips_own_timing_a_late_copy_is_r_1(truth: NDArray[np.float64]) -> None:
    """A clip whose sound comes 2 frames after its mouth: an output that follows the sound is
    the truth 2 frames late, and the timed figure pairs them; any other timing says less."""
    late = np.concatenate([truth[:2], truth[:-2]])
    timed = realspeech.compare(late, realspeech.TrueMouth.of(truth), timing=2)
    early = realspeech.compare(late, realspeech.TrueMouth.of(truth), timing=-2)
    for name in realspeech.METRICS:
        assert timed.timed[name] == pytest.approx(1.0, abs=1e-9), name
        assert early.timed[name] < timed.timed[name] - 0.05, name


def test_an_opposite_mouth_is_r_minus_1_and_lost_frames_are_left_out(
    base_face: NDArray[np.float64], truth: NDArray[np.float64]
) -> None:
    opposite = _speaking(base_face, 1 - _smooth(1), _smooth(2), 1 - _smooth(3))
    opposite[::7] = np.nan  # the measuring landmarker lost the face there
    got = realspeech.compare(opposite, realspeech.TrueMouth.of(truth))
    assert got.r["gap"] == pytest.approx(-1.0, abs=1e-6)
    assert got.r["width"] == pytest.approx(1.0, abs=1e-6)


def test_a_model_is_passed_only_to_an_engine_that_has_the_option() -> None:
    fields = {f.name for f in dataclasses.fields(realspeech.LipsyncOptions)}
    if "model" in fields:
        assert realspeech.options_for("some-model").model == "some-model"
    else:
        with pytest.raises(SystemExit):
            realspeech.options_for("some-model")


def test_pearson_is_undefined_without_variance_or_frames() -> None:
    assert np.isnan(realspeech.pearson(np.ones(10), np.arange(10.0)))
    assert np.isnan(realspeech.pearson(np.array([1.0, np.nan]), np.array([2.0, 3.0])))


# ----------------------------------------------------------------------------------------------
# Bad input: a defined outcome, never a crash


def _noise(seconds: float) -> mediagen.Speech:
    samples = np.random.default_rng(5).normal(0, 0.1, round(seconds * 16000)).astype(np.float32)
    return mediagen.Speech(samples, 16000)


def test_a_clip_with_no_face_in_one_half_is_skipped_with_its_reason(media_dir: Path) -> None:
    fps, seconds = 25.0, 3.0
    blank = np.full((240, 320, 3), 90, np.uint8)
    frames = (
        (i / fps, mediagen.face_frame(320, 240, i / fps) if i < 35 else blank)
        for i in range(round(seconds * fps))
    )
    path = mediagen.write_video(media_dir / "face_then_wall.mp4", frames, fps, _noise(seconds))
    got = realspeech.evaluate(path, "face_then_wall", "en")
    assert isinstance(got, realspeech.Skipped)
    assert "no face in half B" in got.reason


def test_a_clip_without_sound_or_too_short_is_skipped(media_dir: Path) -> None:
    silent = mediagen.write_face_video(media_dir / "rs_silent.mp4", 3.0, 25.0, 320, 240)
    got = realspeech.evaluate(silent, "silent", "en")
    assert isinstance(got, realspeech.Skipped) and "unusable clip" in got.reason
    short = mediagen.write_face_video(
        media_dir / "rs_short.mp4", 1.2, 25.0, 320, 240, audio=_noise(1.2)
    )
    got = realspeech.evaluate(short, "short", "en")
    assert isinstance(got, realspeech.Skipped) and "too short" in got.reason


# ----------------------------------------------------------------------------------------------
# The engine on real speech


@pytest.fixture(scope="module")
def real_clip() -> realspeech.ClipResult:
    clip = footage.by_name(REAL_CLIP)
    assert clip.held_out  # a figure on a clip the model learned from would say nothing
    if not clip.path.exists():
        pytest.skip(f"real footage not present at {clip.path}")
    got = realspeech.evaluate(clip.path, clip.name, clip.language)
    assert isinstance(got, realspeech.ClipResult), got
    print(realspeech.report([got], []))
    return got


def test_real_clip_cuts_show_the_frames_they_should(real_clip: realspeech.ClipResult) -> None:
    """Video A as the engine got it, measured, against the clip's own frames of A: a frame
    offset in the cutting would make every other figure meaningless."""
    for d in real_clip.directions:
        assert d.cut_check > 0.95, d.video
        assert d.output_face > 0.95, d.video


def test_real_speech_output_follows_the_true_mouth_better_than_the_source(
    real_clip: realspeech.ClipResult,
) -> None:
    for name in ("gap", "width"):
        output, floor = real_clip.mean("output", name), real_clip.mean("floor", name)
        assert output >= floor + MIN_MARGIN, f"{name}: output r {output:.2f}, source {floor:.2f}"


def test_real_speech_output_width_stays_above_its_floor(real_clip: realspeech.ClipResult) -> None:
    r_width = real_clip.mean("output", "width")
    assert r_width >= MIN_R_WIDTH, f"output r_width {r_width:.2f} at lag 0"
