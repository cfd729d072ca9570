"""The SDK against a real `chamelaion serve` on loopback: every method sync and async, uploads of
every file kind, pagination, wait and download of a real completed job, and each error class from
a real error response. Nothing here is mocked."""

from __future__ import annotations

import io
import shutil
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from chamelaion import (
    APIStatusError,
    AsyncRequestsPage,
    AuthenticationError,
    BadRequestError,
    ChamelaionError,
    InternalServerError,
    LipsyncGenerate,
    LipsyncRequest,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    SyncRequestsPage,
    TokenLimitError,
    UnsupportedMediaTypeError,
    WaitTimeoutError,
)
from realserver import Server, create_key, revoke_key, running
from sdk.live import LIVE_UPLOAD_CAP, Live

JOB_TIMEOUT = 300.0


def _ref(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _url_inputs(live: Live, video: Path, audio: Path) -> list[Any]:
    return [
        {"type": "video", "url": f"{live.media_url}/{video.name}"},
        {"type": "audio", "url": f"{live.media_url}/{audio.name}"},
    ]


def _file_kinds(video: Path, audio: Path, opened: ExitStack) -> dict[str, tuple[Any, Any]]:
    return {
        "str path": (str(video), str(audio)),
        "Path": (video, audio),
        "bytes": (video.read_bytes(), audio.read_bytes()),
        "open file": (
            opened.enter_context(video.open("rb")),
            opened.enter_context(audio.open("rb")),
        ),
        "BytesIO": (io.BytesIO(video.read_bytes()), io.BytesIO(audio.read_bytes())),
        "tuple": (
            ("face.mp4", opened.enter_context(video.open("rb")), "video/mp4"),
            ("speech.wav", audio, "audio/wav"),
        ),
        "tuple2": (("face.mp4", video.read_bytes()), ("speech.wav", str(audio))),
    }


KINDS = ["str path", "Path", "bytes", "open file", "BytesIO", "tuple", "tuple2"]


# -- generate, retrieve ---------------------------------------------------------------------------


def test_generate_then_retrieve_by_id_and_reference(
    live_api: Live, short_face_video: Path, short_speech: Path
) -> None:
    reference = _ref("dub-episode-42")
    with live_api.client() as client:
        job = client.lipsync.generate(
            inputs=_url_inputs(live_api, short_face_video, short_speech),
            reference_id=reference,
            model="lipsync-2",
            sync_mode="cut_off",
            disable_active_speaker_detection=False,
        )
        assert isinstance(job, LipsyncGenerate)
        assert job.status == "success"
        uuid.UUID(job.request_id)
        by_id = client.lipsync.requests.retrieve(job.request_id)
        by_ref = client.lipsync.requests.retrieve(reference)
    assert isinstance(by_id, LipsyncRequest)
    assert by_id.id == by_ref.id == job.request_id
    assert by_id.reference_id == reference
    assert by_id.status == "queued"
    assert by_id.created_at.tzinfo is not None
    assert by_id.output_url is None and by_id.finished_at is None


async def test_async_generate_then_retrieve(
    live_api: Live, short_face_video: Path, short_speech: Path
) -> None:
    reference = _ref("async")
    async with live_api.async_client() as client:
        job = await client.lipsync.generate(
            inputs=_url_inputs(live_api, short_face_video, short_speech), reference_id=reference
        )
        by_id = await client.lipsync.requests.retrieve(job.request_id)
        by_ref = await client.lipsync.requests.retrieve(reference)
    assert by_id.id == by_ref.id == job.request_id
    assert by_id.status == "queued"


@pytest.mark.parametrize("kind", KINDS)
def test_generate_with_media_from_each_file_kind(
    kind: str, live_api: Live, short_face_video: Path, short_speech: Path, opened: ExitStack
) -> None:
    video, audio = _file_kinds(short_face_video, short_speech, opened)[kind]
    reference = _ref("upload")
    with live_api.client() as client:
        job = client.lipsync.generate_with_media(
            video=video, audio=audio, model="lipsync-2", reference_id=reference
        )
        request = client.lipsync.requests.retrieve(job.request_id)
    assert job.status == "success"
    assert request.reference_id == reference and request.status == "queued"


@pytest.mark.parametrize("kind", KINDS)
async def test_async_generate_with_media_from_each_file_kind(
    kind: str, live_api: Live, short_face_video: Path, short_speech: Path, opened: ExitStack
) -> None:
    video, audio = _file_kinds(short_face_video, short_speech, opened)[kind]
    reference = _ref("async-upload")
    async with live_api.async_client() as client:
        job = await client.lipsync.generate_with_media(
            video=video,
            audio=audio,
            reference_id=reference,
            sync_mode="loop",
            disable_active_speaker_detection=True,
        )
        request = await client.lipsync.requests.retrieve(reference)
    assert request.id == job.request_id


# -- list and pagination --------------------------------------------------------------------------


def _make_jobs(
    live: Live, client: Any, count: int, reference: str, video: Path, audio: Path
) -> list[str]:
    return [
        client.lipsync.generate(
            inputs=_url_inputs(live, video, audio), reference_id=reference
        ).request_id
        for _ in range(count)
    ]


def test_list_iterates_across_pages(
    live_api: Live, short_face_video: Path, short_speech: Path
) -> None:
    key = live_api.new_key()  # a fresh account: its list holds only what this test makes
    reference = _ref("batch")
    with live_api.client(key) as client:
        ids = _make_jobs(live_api, client, 5, reference, short_face_video, short_speech)
        other = client.lipsync.generate(
            inputs=_url_inputs(live_api, short_face_video, short_speech)
        ).request_id

        page = client.lipsync.requests.list(limit=2)
        assert isinstance(page, SyncRequestsPage)
        assert [r.id for r in page.data] == ids[:2]
        assert (page.pagination.limit, page.pagination.offset, page.pagination.total) == (2, 0, 6)
        assert [r.id for r in page] == [*ids, other]  # oldest first, across 3 pages
        assert [len(p.data) for p in page.iter_pages()] == [2, 2, 2]

        filtered = client.lipsync.requests.list(reference_id=reference, limit=3)
        assert filtered.pagination.total == 5
        assert [r.id for r in filtered] == ids
        assert [r.id for r in client.lipsync.requests.list(offset=4)] == [ids[4], other]
        assert [r.id for r in client.lipsync.requests.list()] == [*ids, other]


async def test_async_list_iterates_across_pages(
    live_api: Live, short_face_video: Path, short_speech: Path
) -> None:
    key = live_api.new_key()
    reference = _ref("async-batch")
    with live_api.client(key) as sync_client:
        ids = _make_jobs(live_api, sync_client, 5, reference, short_face_video, short_speech)
    async with live_api.async_client(key) as client:
        page = await client.lipsync.requests.list(limit=2)
        assert isinstance(page, AsyncRequestsPage)
        assert page.pagination.total == 5
        assert [r.id async for r in client.lipsync.requests.list(limit=2)] == ids
        assert [r.id async for r in client.lipsync.requests.list(reference_id=reference)] == ids
        assert [len(p.data) async for p in page.iter_pages()] == [2, 2, 1]


def test_other_accounts_requests_are_not_found(
    live_api: Live, short_face_video: Path, short_speech: Path
) -> None:
    with live_api.client() as client:
        job = client.lipsync.generate(inputs=_url_inputs(live_api, short_face_video, short_speech))
    with live_api.client(live_api.new_key()) as stranger:
        with pytest.raises(NotFoundError) as info:
            stranger.lipsync.requests.retrieve(job.request_id)
        assert info.value.message == "not found"
        assert job.request_id not in [r.id for r in stranger.lipsync.requests.list()]


# -- wait and download on a queued job (no workers on this server) --------------------------------


def test_wait_times_out_on_a_queued_job(
    live_api: Live, short_face_video: Path, short_speech: Path
) -> None:
    with live_api.client() as client:
        job = client.lipsync.generate(inputs=_url_inputs(live_api, short_face_video, short_speech))
        with pytest.raises(WaitTimeoutError) as info:
            client.lipsync.requests.wait(job.request_id, timeout=0.6, poll_interval=0.2)
        assert info.value.last.status == "queued"
        with pytest.raises(ChamelaionError, match="no output yet"):
            client.lipsync.requests.download(job.request_id, live_api.data_dir / "never.mp4")
    assert not (live_api.data_dir / "never.mp4").exists()


async def test_async_wait_times_out_on_a_queued_job(
    live_api: Live, short_face_video: Path, short_speech: Path
) -> None:
    async with live_api.async_client() as client:
        job = await client.lipsync.generate(
            inputs=_url_inputs(live_api, short_face_video, short_speech)
        )
        with pytest.raises(WaitTimeoutError):
            await client.lipsync.requests.wait(job.request_id, timeout=0.5, poll_interval=0.2)


# -- each error class from a real error response --------------------------------------------------


def test_bad_request_errors(live_api: Live, short_face_video: Path, short_speech: Path) -> None:
    video_url = f"{live_api.media_url}/{short_face_video.name}"
    with live_api.client(max_retries=0) as client:
        cases: list[tuple[dict[str, Any], str]] = [
            (
                {"inputs": [{"type": "video", "url": video_url}] * 2},
                "expected exactly one video input",
            ),
            (
                {
                    "inputs": [
                        {"type": "video", "url": video_url},
                        *[{"type": "audio", "url": video_url}] * 2,
                    ]
                },
                "expected exactly one audio input",
            ),
            (
                {
                    "inputs": [
                        {"type": "image", "url": video_url},
                        {"type": "audio", "url": video_url},
                    ]
                },
                'input type must be "video" or "audio"',
            ),
            (
                {
                    "inputs": [
                        {"type": "video", "url": "not a url"},
                        {"type": "audio", "url": video_url},
                    ]
                },
                "invalid request body",
            ),
            (
                {
                    "inputs": _url_inputs(live_api, short_face_video, short_speech),
                    "model": "lipsync-9",
                },
                "unsupported model",
            ),
            (
                {
                    "inputs": _url_inputs(live_api, short_face_video, short_speech),
                    "transcript": "hello mama",
                    "transcript_language": "English, please",
                },
                'invalid transcript_language: give a BCP-47 language tag (e.g. "en", "fr-FR", '
                '"pt-BR")',
            ),
        ]
        for kwargs, message in cases:
            with pytest.raises(BadRequestError) as info:
                client.lipsync.generate(**kwargs)
            assert (info.value.status_code, info.value.message) == (400, message)
        with pytest.raises(BadRequestError) as info:
            client.lipsync.generate_with_media(video=b"not a video at all", audio=short_speech)
        assert info.value.message == "invalid video file"
        with pytest.raises(BadRequestError) as info:
            client.lipsync.generate_with_media(video=short_face_video, audio=short_face_video)
        assert info.value.message == "invalid audio file"
        with pytest.raises(BadRequestError) as info:
            client.lipsync.generate_with_media(
                video=short_face_video, audio=short_speech, transcript="é" * 20_001
            )
        assert info.value.message == "transcript too long: at most 20000 characters"
        with pytest.raises(BadRequestError) as info:
            client.lipsync.requests.list(limit=100000)
        assert info.value.message == "invalid request body"


async def test_async_bad_request_error(live_api: Live, short_face_video: Path) -> None:
    video_url = f"{live_api.media_url}/{short_face_video.name}"
    async with live_api.async_client(max_retries=0) as client:
        with pytest.raises(BadRequestError) as info:
            await client.lipsync.generate(inputs=[{"type": "video", "url": video_url}] * 2)
    assert info.value.message == "expected exactly one video input"


def test_authentication_errors(live_api: Live) -> None:
    with (
        live_api.client("chm_not-a-real-key", max_retries=0) as client,
        pytest.raises(AuthenticationError) as info,
    ):
        client.lipsync.requests.list()
    assert (info.value.status_code, info.value.message) == (401, "invalid token")

    revoked = live_api.new_key()
    revoke_key(live_api.data_dir, revoked.key_id)
    with live_api.client(revoked) as client, pytest.raises(AuthenticationError) as info:
        client.lipsync.requests.retrieve(str(uuid.uuid4()))
    assert info.value.message == "unauthorized"


async def test_async_authentication_error(live_api: Live) -> None:
    async with live_api.async_client("chm_wrong") as client:
        with pytest.raises(AuthenticationError) as info:
            await client.lipsync.requests.list()
    assert info.value.message == "invalid token"


def test_token_limit_error(live_api: Live, short_face_video: Path, short_speech: Path) -> None:
    key = live_api.new_key("--max-requests", "1")
    inputs = _url_inputs(live_api, short_face_video, short_speech)
    with live_api.client(key) as client:
        client.lipsync.generate(inputs=inputs)
        with pytest.raises(TokenLimitError) as info:
            client.lipsync.generate(inputs=inputs)
    assert (info.value.status_code, info.value.message) == (402, "token limit reached")


def test_not_found_error(live_api: Live) -> None:
    with live_api.client() as client:
        with pytest.raises(NotFoundError) as info:
            client.lipsync.requests.retrieve(str(uuid.uuid4()))
        assert (info.value.status_code, info.value.message) == (404, "not found")
        with pytest.raises(NotFoundError):
            client.lipsync.requests.retrieve("no-such-reference/with slash")
        with pytest.raises(NotFoundError):
            client.lipsync.requests.wait(str(uuid.uuid4()))


async def test_async_not_found_error(live_api: Live) -> None:
    async with live_api.async_client() as client:
        with pytest.raises(NotFoundError):
            await client.lipsync.requests.retrieve(str(uuid.uuid4()))


def test_unsupported_media_type_error(
    live_api: Live, short_face_video: Path, short_speech: Path
) -> None:
    with live_api.client() as client, pytest.raises(UnsupportedMediaTypeError) as info:
        client.lipsync.generate(
            inputs=_url_inputs(live_api, short_face_video, short_speech),
            extra_headers={"content-type": "text/plain"},
        )
    assert (info.value.status_code, info.value.message) == (
        415,
        "content-type must be application/json",
    )


def test_rate_limit_error(live_api: Live, short_face_video: Path, short_speech: Path) -> None:
    key = live_api.new_key("--rate-limit", "1/minute")
    inputs = _url_inputs(live_api, short_face_video, short_speech)
    with live_api.client(key, max_retries=0) as client:
        client.lipsync.generate(inputs=inputs)
        start = time.monotonic()
        with pytest.raises(RateLimitError) as info:
            client.lipsync.generate(inputs=inputs)
    assert time.monotonic() - start < 5  # max_retries=0: raised at once
    assert (info.value.status_code, info.value.message) == (429, "rate limit exceeded")
    assert int(info.value.response.headers["retry-after"]) >= 1


def test_rate_limit_is_retried_after_retry_after(
    live_api: Live, short_face_video: Path, short_speech: Path
) -> None:
    """A 429 with a short Retry-After is waited out and retried (real server, real sleep)."""
    key = live_api.new_key("--rate-limit", "1/second")
    inputs = _url_inputs(live_api, short_face_video, short_speech)
    with live_api.client(key, max_retries=3) as client:
        first = client.lipsync.generate(inputs=inputs)
        second = client.lipsync.generate(inputs=inputs)  # 429 first, then accepted
    assert first.request_id != second.request_id


def test_file_too_large_is_a_plain_status_error(live_api: Live, short_speech: Path) -> None:
    too_big = b"\x00" * (LIVE_UPLOAD_CAP + 1024 * 1024)
    with live_api.client() as client, pytest.raises(APIStatusError) as info:
        client.lipsync.generate_with_media(video=too_big, audio=short_speech)
    assert type(info.value) is APIStatusError
    assert (info.value.status_code, info.value.message) == (413, "file too large")


def test_permission_denied_error_from_a_tampered_output_url(live_api: Live, tmp_path: Path) -> None:
    signed = f"{uuid.uuid4()}.mp4?expires=4102444800&signature=00"
    url = f"{live_api.server.sdk_base_url}/v1/files/{signed}"
    with live_api.client() as client, pytest.raises(PermissionDeniedError) as info:
        client._download(url, tmp_path / "x.mp4")
    assert (info.value.status_code, info.value.message) == (403, "invalid signature")
    assert list(tmp_path.iterdir()) == []


def test_internal_server_error(
    tmp_path: Path, live_media: str, short_face_video: Path, short_speech: Path
) -> None:
    """A server whose inputs directory is broken answers 500 `internal error`: retried, then
    raised as InternalServerError."""
    data_dir = tmp_path / "broken"
    key = create_key(data_dir, "sdk")
    with running(Server(data_dir)) as server:
        inputs = data_dir / "inputs"
        shutil.rmtree(inputs)
        inputs.write_text("not a directory")
        live = Live(server, key, live_media)
        with live.client(max_retries=1) as client, pytest.raises(InternalServerError) as info:
            client.lipsync.generate_with_media(video=short_face_video, audio=short_speech)
        assert (info.value.status_code, info.value.message) == (500, "internal error")
        assert "Traceback" not in info.value.response.text
        log = server.logs().splitlines()
        # The access log's status field: a bare "500" also turns up in request ids and paths.
        failures = [e for e in log if "generate-with-media" in e and '"status":500' in e]
        assert len(failures) == 2, log  # the first attempt and one retry


# -- a real completed job: wait and download ------------------------------------------------------


def _check_output(path: Path, audio: Path) -> None:
    av = pytest.importorskip("av")
    assert path.stat().st_size > 1000
    with av.open(str(path)) as container:
        assert container.format.name.startswith("mov")
        assert container.streams.video and container.streams.audio
        assert container.duration is not None and container.duration > 0


def test_wait_and_download_a_completed_upload_job(
    live_worker: Live, short_face_video: Path, short_speech: Path, tmp_path: Path
) -> None:
    with live_worker.client() as client:
        job = client.lipsync.generate_with_media(
            video=short_face_video, audio=short_speech, reference_id=_ref("e2e")
        )
        done = client.lipsync.requests.wait(job.request_id, timeout=JOB_TIMEOUT, poll_interval=0.5)
        assert done.status == "completed", done.error_message
        assert done.output_url and done.started_at and done.finished_at
        assert done.finished_at >= done.started_at >= done.created_at

        progress: list[tuple[int, int | None]] = []
        dest = client.lipsync.requests.download(
            job.request_id, tmp_path / "out.mp4", on_progress=lambda n, t: progress.append((n, t))
        )
        assert dest == tmp_path / "out.mp4"
        _check_output(dest, short_speech)
        size = dest.stat().st_size
        assert progress[-1] == (size, size)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]

        # a request object, into a directory
        again = client.lipsync.requests.download(done, tmp_path)
        assert again == tmp_path / f"{job.request_id}.mp4"
        assert again.read_bytes() == dest.read_bytes()

        # the output URL expires (5 s here): a stale request object gets a fresh URL
        time.sleep(6)
        stale = client.lipsync.requests.download(done, tmp_path / "stale.mp4")
        assert stale.read_bytes() == dest.read_bytes()


async def test_async_wait_and_download_a_completed_url_job(
    live_worker: Live, short_face_video: Path, short_speech: Path, tmp_path: Path
) -> None:
    async with live_worker.async_client() as client:
        job = await client.lipsync.generate(
            inputs=_url_inputs(live_worker, short_face_video, short_speech), sync_mode="cut_off"
        )
        done = await client.lipsync.requests.wait(
            job.request_id, timeout=JOB_TIMEOUT, poll_interval=0.5
        )
        assert done.status == "completed", done.error_message
        dest = await client.lipsync.requests.download(done, tmp_path / "async.mp4")
    _check_output(dest, short_speech)


def test_wait_returns_a_failed_job(live_worker: Live, short_speech: Path, tmp_path: Path) -> None:
    inputs: list[Any] = [
        {"type": "video", "url": f"{live_worker.media_url}/missing-{uuid.uuid4().hex}.mp4"},
        {"type": "audio", "url": f"{live_worker.media_url}/{short_speech.name}"},
    ]
    with live_worker.client() as client:
        job = client.lipsync.generate(inputs=inputs)
        failed = client.lipsync.requests.wait(
            job.request_id, timeout=JOB_TIMEOUT, poll_interval=0.3
        )
        assert failed.status == "failed"
        assert failed.error_message and "404" in failed.error_message
        assert failed.output_url is None
        with pytest.raises(ChamelaionError, match="failed"):
            client.lipsync.requests.download(failed, tmp_path / "x.mp4")
    assert list(tmp_path.iterdir()) == []


def _completed_job(client: Any, video: Path, audio: Path) -> LipsyncRequest:
    job = client.lipsync.generate_with_media(video=video, audio=audio)
    done: LipsyncRequest = client.lipsync.requests.wait(
        job.request_id, timeout=JOB_TIMEOUT, poll_interval=0.3
    )
    assert done.status == "completed", done.error_message
    return done


def test_download_resumes_a_broken_transfer_with_range(
    live_worker: Live, short_face_video: Path, short_speech: Path, tmp_path: Path
) -> None:
    """The connection breaks half way through the output: the SDK asks the real server for the
    rest with `Range` and the file comes out whole."""
    proxy = live_worker.proxy
    assert proxy is not None
    with live_worker.client() as client:
        done = _completed_job(client, short_face_video, short_speech)
        assert done.output_url and done.output_url.startswith(proxy.url)
        original = (live_worker.data_dir / "outputs" / f"{done.id}.mp4").read_bytes()
        seen = len(proxy.heads)
        proxy.cut_after = len(original) // 2
        dest = client.lipsync.requests.download(done.id, tmp_path / "resumed.mp4")
    assert dest.read_bytes() == original
    first, second = proxy.heads[seen:]
    assert "range:" not in first.lower()
    resumed_from = int(second.lower().split("range: bytes=")[1].split("-")[0])
    assert 0 < resumed_from < len(original)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resumed.mp4"]


async def test_async_download_resumes_a_broken_transfer_with_range(
    live_worker: Live, short_face_video: Path, short_speech: Path, tmp_path: Path
) -> None:
    proxy = live_worker.proxy
    assert proxy is not None
    with live_worker.client() as client:
        done = _completed_job(client, short_face_video, short_speech)
    original = (live_worker.data_dir / "outputs" / f"{done.id}.mp4").read_bytes()
    seen = len(proxy.heads)
    proxy.cut_after = len(original) // 3
    async with live_worker.async_client() as aclient:
        dest = await aclient.lipsync.requests.download(done, tmp_path / "resumed.mp4")
    assert dest.read_bytes() == original
    assert len(proxy.heads) - seen == 2
    assert "range: bytes=" in proxy.heads[-1].lower()


async def test_async_concurrent_calls(
    live_api: Live, short_face_video: Path, short_speech: Path
) -> None:
    """One async client, many calls in flight at once (uploads and reads)."""
    import asyncio

    reference = _ref("concurrent")
    async with live_api.async_client() as client:
        uploads = [
            client.lipsync.generate_with_media(
                video=short_face_video, audio=short_speech, reference_id=reference
            )
            for _ in range(4)
        ]
        jobs = await asyncio.gather(*uploads)
        requests = await asyncio.gather(
            *(client.lipsync.requests.retrieve(j.request_id) for j in jobs for _ in range(5))
        )
        listed = [r.id async for r in client.lipsync.requests.list(reference_id=reference)]
    assert {r.id for r in requests} == {j.request_id for j in jobs}
    assert sorted(listed) == sorted(j.request_id for j in jobs)


def test_base_url_without_api_prefix_and_with_options(
    live_api: Live, short_face_video: Path, short_speech: Path
) -> None:
    """The server also serves the SDK's /v1 paths at its root; with_options shares the pool."""
    root = live_api.server.base_url
    with live_api.client(base_url=root) as client:
        job = client.lipsync.generate(inputs=_url_inputs(live_api, short_face_video, short_speech))
        quick = client.with_options(timeout=5.0, max_retries=0)
        assert quick.lipsync.requests.retrieve(job.request_id).id == job.request_id
        assert quick._client is client._client
