"""``requests.cancel`` and ``requests.delete`` (sync and async) and ``webhook_url`` against a
real API-only server, where jobs stay queued."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chamelaion import BadRequestError, ChamelaionError, NotFoundError
from chamelaion.types import RequestDeleted
from sdk.live import Live


def _inputs(live: Live, video: Path, audio: Path) -> list[Any]:
    return [
        {"type": "video", "url": f"{live.media_url}/{video.name}"},
        {"type": "audio", "url": f"{live.media_url}/{audio.name}"},
    ]


def test_cancel_then_delete(live_api: Live, short_face_video: Path, short_speech: Path) -> None:
    with live_api.client(live_api.new_key()) as client:
        job = client.lipsync.generate(
            inputs=_inputs(live_api, short_face_video, short_speech), reference_id="sdk-cancel"
        )
        cancelled = client.lipsync.requests.cancel(job.request_id)
        assert (cancelled.id, cancelled.status) == (job.request_id, "cancelled")
        assert cancelled.is_finished and cancelled.finished_at is not None
        assert client.lipsync.requests.wait(job.request_id).status == "cancelled"  # at once
        with pytest.raises(ChamelaionError, match="was cancelled"):
            client.lipsync.requests.download(cancelled, live_api.data_dir / "never.mp4")
        deleted = client.lipsync.requests.delete("sdk-cancel")  # by reference_id
        assert deleted == RequestDeleted(id=job.request_id, deleted=True)
        with pytest.raises(NotFoundError):
            client.lipsync.requests.retrieve(job.request_id)
        with pytest.raises(NotFoundError):
            client.lipsync.requests.cancel(job.request_id)


async def test_async_cancel_then_delete(
    live_api: Live, short_face_video: Path, short_speech: Path
) -> None:
    async with live_api.async_client(live_api.new_key()) as client:
        job = await client.lipsync.generate(
            inputs=_inputs(live_api, short_face_video, short_speech)
        )
        cancelled = await client.lipsync.requests.cancel(job.request_id)
        assert cancelled.status == "cancelled"
        deleted = await client.lipsync.requests.delete(job.request_id)
        assert deleted.deleted and deleted.id == job.request_id
        with pytest.raises(NotFoundError):
            await client.lipsync.requests.delete(job.request_id)


def test_webhook_url_is_sent_and_needs_a_secret(
    live_api: Live, short_face_video: Path, short_speech: Path
) -> None:
    with live_api.client(live_api.new_key()) as client:
        calls: tuple[Callable[[], object], ...] = (
            lambda: client.lipsync.generate(
                inputs=_inputs(live_api, short_face_video, short_speech),
                webhook_url="https://example.com/hook",
            ),
            lambda: client.lipsync.generate_with_media(
                video=short_face_video, audio=short_speech, webhook_url="https://example.com/h"
            ),
        )
        for call in calls:
            with pytest.raises(BadRequestError, match="needs a webhook secret"):
                call()
