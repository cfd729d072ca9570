"""Lip-sync quality measured on the output video, not on the engine's own targets.

The source face never speaks (a still photo moving slightly); the target speech comes from
espeak-ng with known phoneme timings. The mouth is measured on the decoded output by the face
mesh, exactly as `chamelaion eval` does.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

import mediagen
from chamelaion.engine import lipsync, media
from chamelaion.engine.articulation import articulate
from chamelaion.engine.faces import LandmarkDetector, TrackBuilder, smooth_track
from chamelaion.engine.geometry import mouth_frame
from chamelaion.engine.interior import MouthLighting
from chamelaion.engine.render import WarpRenderer, build_mesh
from chamelaion.engine.score import (
    CLOSED_OPENING,
    MouthMeasurements,
    landmark_jitter,
    measure_mouth,
    sync_score,
)

FPS = 25.0
# The mouth comes from a model learned on real talking heads and is judged on real footage
# (test_realspeech.py, bench/realspeech.py). These espeak checks guard the direction and rough
# size of each contrast. Their earlier thresholds (r 0.6 at |lag| <= 1, 75 % of bilabials
# closed, /u/ 8 % narrower, /a/ 1.5x /i/) were calibrated on formant and energy rules, which
# follow espeak's unnaturally regular speech and scored r = 0.07 against real mouths. The
# learned mouth follows loudness less (r 0.49 here, the mouth leading the sound by 2 frames).
MIN_ENVELOPE_R, MAX_ENVELOPE_LAG = 0.4, 2
MIN_BILABIALS_CLOSED = 0.5
MAX_U_OVER_I_WIDTH = 0.99
MIN_A_OVER_I_GAP = 1.05
BILABIALS = {"m", "b", "p"}
PAUSES = {"_", "_:", "_!"}


@pytest.fixture(scope="module")
def synced(
    tmp_path_factory: pytest.TempPathFactory, silent_face_video: Path, articulation_wav: Path
) -> Path:
    out = tmp_path_factory.mktemp("quality") / "synced.mp4"
    lipsync(silent_face_video, articulation_wav, out)
    return out


@pytest.fixture(scope="module")
def measured(synced: Path) -> MouthMeasurements:
    return measure_mouth(synced)


def _frames_of(phoneme: mediagen.Phoneme) -> slice:
    return slice(
        int(phoneme.start * FPS), max(int(phoneme.start * FPS) + 1, int(np.ceil(phoneme.end * FPS)))
    )


def _mean_over(values: NDArray[Any], speech: mediagen.Speech, symbols: set[str]) -> float:
    spans = [values[_frames_of(p)] for p in speech.phonemes if p.symbol in symbols]
    assert spans, f"no {symbols} in the test speech"
    return float(np.nanmean(np.concatenate(spans)))


def test_opening_follows_the_speech_envelope(synced: Path, articulation_wav: Path) -> None:
    score = sync_score(synced, articulation_wav)
    assert score.face_detection_rate == 1.0
    assert score.loudness_correlation >= MIN_ENVELOPE_R
    assert abs(score.loudness_lag_frames) <= MAX_ENVELOPE_LAG
    assert score.silent_frames > 20
    assert score.silent_closed_share >= 0.95


def test_word_medial_bilabials_close_the_lips(
    measured: MouthMeasurements, articulation_speech: mediagen.Speech
) -> None:
    phonemes = articulation_speech.phonemes
    cases = [
        p for prev, p in itertools.pairwise(phonemes)
        if p.symbol in BILABIALS and prev.symbol not in PAUSES
    ]  # fmt: skip
    assert len(cases) >= 10
    closed = []
    for p in cases:
        span = _frames_of(p)
        window = measured.opening[max(span.start - 2, 0) : span.stop + 2]
        closed.append(bool(np.nanmin(window) < CLOSED_OPENING))
    assert np.mean(closed) >= MIN_BILABIALS_CLOSED, (
        f"closed on {sum(closed)} of {len(closed)} bilabials"
    )


def test_rounded_vowels_are_narrower_than_spread_ones(
    measured: MouthMeasurements, articulation_speech: mediagen.Speech
) -> None:
    width_u = _mean_over(measured.width, articulation_speech, {"u:"})
    width_i = _mean_over(measured.width, articulation_speech, {"i:"})
    assert width_u <= MAX_U_OVER_I_WIDTH * width_i


def test_open_vowels_open_the_jaw_more_than_close_ones(
    measured: MouthMeasurements, articulation_speech: mediagen.Speech
) -> None:
    gap_a = _mean_over(measured.opening, articulation_speech, {"a", "A:", "a#"})
    gap_i = _mean_over(measured.opening, articulation_speech, {"i:"})
    assert gap_a >= MIN_A_OVER_I_GAP * gap_i
    assert gap_a >= 0.12


def test_output_jitter_is_no_higher_than_the_input(
    measured: MouthMeasurements, silent_face_video: Path
) -> None:
    source = measure_mouth(silent_face_video)
    # 10 % slack: the face mesh's own noise differs a little between two different videos.
    assert landmark_jitter(measured) <= 1.1 * landmark_jitter(source)


def test_pixels_outside_the_lower_face_are_untouched(silent_face_video: Path) -> None:
    frames = list(media.read_frames(silent_face_video, Fraction(25)))[:10]
    builder = TrackBuilder()
    with LandmarkDetector() as detect:
        for i, frame in enumerate(frames):
            builder.add(i, detect(frame))
    (track,) = builder.finish()
    poses = smooth_track(track)
    rest = np.median(poses.shapes[:], axis=0)
    renderer = WarpRenderer(build_mesh(rest), MouthLighting.from_skin(np.array([200.0, 160, 140])))
    width = mouth_frame(rest).half_width * 2
    for i, source in enumerate(frames):
        pose, shape = poses.poses[i], poses.shapes[i]
        target = articulate(shape, opening=0.3, spread=0.1, rest_width=width)
        rendered = source.copy()
        renderer.render(
            rendered, poses.points(i), (target @ pose[:, :2].T + pose[:, 2]), pose, 0.5, 0.3
        )
        region = np.zeros(source.shape[:2], np.uint8)
        ring = renderer.mesh.region(pose)
        cv2.fillPoly(region, [np.round(ring).astype(np.int32)], (1,))
        # The ring's edge pixels too (cv2 types the image it returns as of any dtype).
        region = cast("NDArray[np.uint8]", cv2.dilate(region, np.ones((5, 5), np.uint8)))
        changed = np.any(rendered != source, axis=2)
        assert changed.sum() > 500  # the mouth was re-shaped...
        assert not np.any(changed & (region == 0))  # ...and nothing outside the region moved
