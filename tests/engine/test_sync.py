"""The learned sync scorer behind `chamelaion eval`, on real footage of held-out speakers and on
inputs it cannot judge.

Real clips come from `train/footage.py` (outside the repository); tests that need them are
skipped where the footage is absent. The clips used here are held out: never trained on.
"""

from __future__ import annotations

from pathlib import Path

import footage
import numpy as np
import pytest
from heldout import shifted

import mediagen
from chamelaion.engine import media
from chamelaion.engine.score import MouthMeasurements, SyncScore, learned_sync, sync_score

SPEAKER = footage.by_name("retalking_face_2")  # 5 s, 25 fps, English
OTHER = footage.by_name("mimictalk_German_20s")  # another held-out speaker, German


def _require(*clips: footage.Clip) -> None:
    missing = [c.name for c in clips if not c.path.exists()]
    if missing:
        pytest.skip(f"footage not available: {', '.join(missing)}")


def _wav(path: Path, samples: np.ndarray) -> Path:
    return mediagen.write_wav(
        path, mediagen.Speech(samples.astype(np.float32), media.ANALYSIS_SAMPLE_RATE)
    )


@pytest.fixture(scope="module")
def own() -> SyncScore:
    _require(SPEAKER)
    return sync_score(SPEAKER.path)


def test_own_speech_is_in_sync_and_confident(own: SyncScore) -> None:
    assert own.note is None
    assert own.face_detection_rate == 1.0
    assert abs(own.offset_frames) <= 1
    assert own.confidence > 0.05
    assert own.distance is not None and own.scored_frames >= 100


def test_own_speech_beats_another_speakers(own: SyncScore, tmp_path: Path) -> None:
    _require(OTHER)
    seconds = footage.load(SPEAKER).seconds
    other = footage.load(OTHER).audio[: round(seconds * media.ANALYSIS_SAMPLE_RATE)]
    scored = sync_score(SPEAKER.path, _wav(tmp_path / "other.wav", other))
    assert scored.note is None
    assert own.confidence > scored.confidence


def test_late_audio_gives_a_positive_offset(own: SyncScore, tmp_path: Path) -> None:
    clip = footage.load(SPEAKER)
    late = _wav(tmp_path / "late.wav", shifted(clip.audio, 5, clip.fps))
    early = _wav(tmp_path / "early.wav", shifted(clip.audio, -5, clip.fps))
    assert abs(sync_score(SPEAKER.path, late).offset_frames - 5) <= 1
    assert abs(sync_score(SPEAKER.path, early).offset_frames + 5) <= 1


def test_audio_shorter_than_the_video_is_scored_where_it_covers(tmp_path: Path) -> None:
    _require(SPEAKER)
    clip = footage.load(SPEAKER)
    short = _wav(tmp_path / "short.wav", clip.audio[: 3 * media.ANALYSIS_SAMPLE_RATE])
    scored = sync_score(SPEAKER.path, short)
    assert scored.note is None
    assert scored.frames == clip.frames
    assert 50 <= scored.scored_frames <= 3 * clip.fps
    assert abs(scored.offset_frames) <= 1


def test_no_face_scores_zero_with_the_reason(blank_video: Path, short_speech: Path) -> None:
    scored = sync_score(blank_video, short_speech)
    assert scored.face_detection_rate == 0.0
    assert (scored.confidence, scored.offset_frames, scored.distance) == (0.0, 0, None)
    assert scored.note == "no face detected in video"


def test_silent_audio_scores_zero_with_the_reason(tmp_path: Path) -> None:
    _require(SPEAKER)
    silent = mediagen.write_wav(tmp_path / "silent.wav", mediagen.silence(5.0))
    scored = sync_score(SPEAKER.path, silent)
    assert (scored.confidence, scored.distance) == (0.0, None)
    assert scored.note == "no speech in the audio"


def test_a_still_picture_scores_zero_with_the_reason(tmp_path: Path, short_speech: Path) -> None:
    still = mediagen.write_face_video(tmp_path / "still.mp4", 3.0, motion=0.0)
    scored = sync_score(still, short_speech)
    assert scored.face_detection_rate == 1.0
    assert (scored.confidence, scored.distance) == (0.0, None)
    assert scored.note == "the mouth never moves (a still picture?)"


def test_a_face_seen_too_briefly_scores_zero_with_the_reason() -> None:
    _require(SPEAKER)
    clip = footage.load(SPEAKER)
    landmarks = np.full_like(clip.landmarks, np.nan)
    landmarks[40:48] = clip.landmarks[40:48]  # the face is found on 8 frames only
    found = ~np.isnan(landmarks[:, 0, 0])
    measured = MouthMeasurements(clip.fps, np.where(found, 0.1, np.nan), found * 1.0, landmarks)
    scored = learned_sync(measured, clip.audio, speech_seconds=clip.seconds)
    assert (scored.confidence, scored.distance, scored.offset_frames) == (0.0, None, 0)
    assert scored.note is not None and scored.note.startswith("too little to score")
