"""``lipsync.estimate`` / ``estimate_with_media`` (sync and async) against a real API-only
server: the output's length as the frame plan makes it, one token, a processing time that grows
with the work, the same validation (and errors) as the creates, and no job or quota used."""

from __future__ import annotations

import math
import wave
from pathlib import Path
from typing import Any

import pytest

import mediagen
from chamelaion import BadRequestError
from sdk.live import Live

FPS = 25  # of the short_face_video fixture: 2 s, 320x240


@pytest.fixture(scope="module")
def dub(media_dir: Path) -> Path:
    """Speech longer than the 2 s video (served by the loopback media server too)."""
    speech = mediagen.phrases_with_gaps(["hello mama", "good morning"], gap=0.6)
    assert speech.duration > 3.0
    return mediagen.write_wav(media_dir / "estimate_dub.wav", speech)


def _inputs(live: Live, video: Path, audio: Path) -> list[Any]:
    return [
        {"type": "video", "url": f"{live.media_url}/{video.name}"},
        {"type": "audio", "url": f"{live.media_url}/{audio.name}"},
    ]


def _audio_frames(audio: Path) -> int:
    """Output frames the audio spans at the video's rate, read from the WAV header itself."""
    with wave.open(str(audio), "rb") as wav:
        return math.ceil(wav.getnframes() / wav.getframerate() * FPS - 1e-6)


def test_estimate_from_urls_and_uploads(live_api: Live, short_face_video: Path, dub: Path) -> None:
    key = live_api.new_key("--max-requests", "1")
    with live_api.client(key) as client:
        inputs = _inputs(live_api, short_face_video, dub)
        cut = client.lipsync.estimate(inputs=inputs)
        assert (cut.frames, cut.fps, cut.tokens) == (50, 25.0, 1)  # the 2 s video, cut off
        assert cut.duration == pytest.approx(2.0)
        looped = client.lipsync.estimate_with_media(
            video=short_face_video, audio=dub, sync_mode="loop"
        )
        assert looped.frames == _audio_frames(dub) > 50  # the audio's length
        assert looped.duration == pytest.approx(looped.frames / FPS, abs=1e-3)
        assert 0 < cut.processing_seconds < looped.processing_seconds
        # Nothing was created and no quota used: the key's only request is still there.
        assert client.lipsync.requests.list().pagination.total == 0
        client.lipsync.generate(inputs=inputs)
        again = client.lipsync.estimate(inputs=inputs)  # an estimate needs no quota left
        assert again == cut


def test_estimate_validates_as_generate_does(
    live_api: Live, short_face_video: Path, dub: Path
) -> None:
    with live_api.client() as client:
        inputs = _inputs(live_api, short_face_video, dub)
        for call in (client.lipsync.generate, client.lipsync.estimate):
            with pytest.raises(BadRequestError) as bad_model:
                call(inputs=inputs, model="lipsync-9")  # type: ignore[arg-type]
            assert bad_model.value.body == {"error": "unsupported model"}
            with pytest.raises(BadRequestError) as two_videos:
                call(inputs=inputs[:1] * 2)
            assert two_videos.value.body == {"error": "expected exactly one video input"}
        with pytest.raises(BadRequestError) as not_a_video:
            client.lipsync.estimate_with_media(video=dub, audio=dub)
        assert not_a_video.value.body == {"error": "invalid video file"}
        missing = [{"type": "video", "url": f"{live_api.media_url}/absent.mp4"}, inputs[1]]
        with pytest.raises(BadRequestError) as unfetched:
            client.lipsync.estimate(inputs=missing)
        assert unfetched.value.body == {"error": "failed to fetch video: HTTP 404"}
    # Measured and refused alike, an estimate keeps nothing.
    inputs_dir = live_api.data_dir / "inputs"
    assert inputs_dir.is_dir()  # where they were measured
    assert not list(inputs_dir.glob("estimate-*"))


async def test_async_estimate(live_api: Live, short_face_video: Path, dub: Path) -> None:
    async with live_api.async_client(live_api.new_key()) as client:
        inputs = _inputs(live_api, short_face_video, dub)
        by_url = await client.lipsync.estimate(inputs=inputs, sync_mode="remap")
        by_upload = await client.lipsync.estimate_with_media(
            video=short_face_video, audio=dub, sync_mode="remap"
        )
        assert by_url == by_upload
        assert by_url.frames == _audio_frames(dub)
