"""Choosing the face from the SDK, through the API, to the engine: with two faces on screen,
`disable_active_speaker_detection` chooses between the speaker and the largest face, and
`speaker` points at the face to re-animate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mediagen
from chamelaion import BadRequestError
from chamelaion.types import SpeakerPoint
from sdk.live import Live

JOB_TIMEOUT = 300.0


@pytest.fixture(scope="module")
def left_speaks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mediagen.write_left_speaks(tmp_path_factory.mktemp("two-faces"))


@pytest.mark.parametrize(
    ("flag", "animated", "still"), [(False, "left", "right"), (True, "right", "left")]
)
def test_the_flag_chooses_between_speaker_and_largest_face(
    live_worker: Live, left_speaks: Path, short_speech: Path, tmp_path: Path,
    flag: bool, animated: str, still: str,
) -> None:  # fmt: skip
    with live_worker.client() as client:
        job = client.lipsync.generate_with_media(
            video=left_speaks, audio=short_speech, disable_active_speaker_detection=flag
        )
        done = client.lipsync.requests.wait(job.request_id, timeout=JOB_TIMEOUT, poll_interval=0.5)
        assert done.status == "completed", done.error_message
        output = client.lipsync.requests.download(done, tmp_path / "out.mp4")
    source, frames = mediagen.read_video_frames(left_speaks), mediagen.read_video_frames(output)
    changed = mediagen.mouth_change(source, frames, animated)
    untouched = mediagen.mouth_change(source, frames, still)
    assert np.median(untouched) < mediagen.UNTOUCHED
    assert np.percentile(changed, 75) > 3 * np.median(untouched) + 2


def test_the_pointed_face_is_re_animated(
    live_worker: Live, left_speaks: Path, short_speech: Path, tmp_path: Path
) -> None:
    """The left face speaks; pointed at, the silent right one is re-animated, and the request
    object says which point it was made with."""
    point: SpeakerPoint = {"frame": 10, "x": 0.73, "y": 0.5}
    with live_worker.client() as client:
        job = client.lipsync.generate_with_media(
            video=left_speaks, audio=short_speech, speaker=point
        )
        done = client.lipsync.requests.wait(job.request_id, timeout=JOB_TIMEOUT, poll_interval=0.5)
        assert done.status == "completed", done.error_message
        assert done.speaker == point
        output = client.lipsync.requests.download(done, tmp_path / "out.mp4")
    source, frames = mediagen.read_video_frames(left_speaks), mediagen.read_video_frames(output)
    changed = mediagen.mouth_change(source, frames, "right")
    untouched = mediagen.mouth_change(source, frames, "left")
    assert np.median(untouched) < mediagen.UNTOUCHED
    assert np.percentile(changed, 75) > 3 * np.median(untouched) + 2


def test_a_point_on_no_face_fails_the_job_clearly(
    live_worker: Live, left_speaks: Path, short_speech: Path
) -> None:
    with live_worker.client() as client:
        job = client.lipsync.generate_with_media(
            video=left_speaks, audio=short_speech, speaker={"frame": 0, "x": 0.5, "y": 0.0}
        )
        done = client.lipsync.requests.wait(job.request_id, timeout=JOB_TIMEOUT, poll_interval=0.5)
    assert done.status == "failed"
    assert done.error_message == (
        "no face at the speaker point (x 0.5, y 0) in frame 0: 2 faces in that frame, none there"
    )


def test_a_point_past_the_last_frame_is_refused_at_once(
    live_worker: Live, left_speaks: Path, short_speech: Path
) -> None:
    frames = len(mediagen.read_video_frames(left_speaks))
    with live_worker.client() as client, pytest.raises(BadRequestError) as refused:
        client.lipsync.generate_with_media(
            video=left_speaks, audio=short_speech, speaker={"frame": frames, "x": 0.5, "y": 0.5}
        )
    assert refused.value.status_code == 400
    assert refused.value.message == "speaker frame is beyond the video's last frame"
