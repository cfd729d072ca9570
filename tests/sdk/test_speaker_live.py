"""`disable_active_speaker_detection` from the SDK, through the API, to the engine: with two faces
on screen, the speaker is re-animated by default and the largest face when the flag is set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mediagen
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
