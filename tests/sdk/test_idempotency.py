"""Creates carry an `Idempotency-Key`: one per call, the same on each of its retries, so a retry
of a create whose response was lost gets that job back instead of making a second one (shown
end to end through a proxy that drops the first response from a real server)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
import pytest

from chamelaion import Input
from sdk.helpers import Script, Sleeps, async_client, error, generated, request_json, sync_client
from sdk.live import CuttingProxy, Live

INPUTS: list[Input] = [
    {"type": "video", "url": "https://cdn.example.com/episodes/42.mp4"},
    {"type": "audio", "url": "https://cdn.example.com/dubs/42-japanese.wav"},
]


def keys_sent(script: Script) -> list[str | None]:
    return [request.headers.get("idempotency-key") for request in script.requests]


def test_each_create_has_its_own_key_kept_across_its_retries(sleeps: Sleeps) -> None:
    script = Script(error(503, "busy"), httpx.ConnectError("refused"), generated(), generated())
    client = sync_client(script, max_retries=2)
    client.lipsync.generate(inputs=INPUTS)
    client.lipsync.generate(inputs=INPUTS)
    first, retry, retry_again, second = keys_sent(script)
    assert first is not None and uuid.UUID(first)
    assert first == retry == retry_again
    assert second is not None and second != first


def test_uploads_keep_their_key_across_retries(sleeps: Sleeps) -> None:
    script = Script(error(500, "internal error"), generated())
    sync_client(script).lipsync.generate_with_media(video=b"v", audio=b"a")
    first, retry = keys_sent(script)
    assert first is not None and first == retry


async def test_async_creates_keep_their_key_across_retries(sleeps: Sleeps) -> None:
    script = Script(error(429, "rate limit exceeded"), generated(), error(502, "x"), generated())
    client = async_client(script)
    await client.lipsync.generate(inputs=INPUTS, idempotency_key="my-own-key")
    await client.lipsync.generate_with_media(video=b"v", audio=b"a")
    given, given_retry, upload, upload_retry = keys_sent(script)
    assert given == given_retry == "my-own-key"
    assert upload is not None and upload == upload_retry != given


def test_reads_carry_no_key() -> None:
    script = Script(httpx.Response(200, json=request_json()))
    sync_client(script).lipsync.requests.retrieve("x")
    assert keys_sent(script) == [None]


@pytest.mark.parametrize("route", ["generate", "generate_with_media"])
def test_a_create_whose_response_was_lost_makes_one_job(
    live_api: Live, short_face_video: Path, short_speech: Path, sleeps: Sleeps, route: str
) -> None:
    proxy = CuttingProxy(live_api.server.port).start()
    try:
        proxy.cut_after = 1  # the server creates the job; its answer never arrives
        with live_api.client(live_api.new_key(), base_url=proxy.url) as client:
            if route == "generate":
                media = live_api.media_url
                job = client.lipsync.generate(
                    inputs=[
                        {"type": "video", "url": f"{media}/{short_face_video.name}"},
                        {"type": "audio", "url": f"{media}/{short_speech.name}"},
                    ]
                )
            else:
                job = client.lipsync.generate_with_media(video=short_face_video, audio=short_speech)
            listed = client.lipsync.requests.list()
    finally:
        proxy.stop()
    assert [request.id for request in listed.data] == [job.request_id]
    posts = [head for head in proxy.heads if head.startswith("POST")]
    assert len(posts) == 2  # the lost one and its retry
    keys = [re.findall(r"(?im)^idempotency-key: *(\S+)", head) for head in posts]
    assert keys[0] == keys[1] and len(keys[0]) == 1
