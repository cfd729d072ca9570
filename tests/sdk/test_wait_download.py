"""requests.wait() and requests.download() (MockTransport)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from chamelaion import (
    APIConnectionError,
    ChamelaionError,
    LipsyncRequest,
    NotFoundError,
    WaitTimeoutError,
)
from sdk.helpers import BrokenStream, Script, Sleeps, async_client, error, request_json, sync_client

RID = "6f82a2d8-a6d4-4e8a-a0fa-e8b09823a2d8"
OUTPUT_URL = "http://files.test/v1/files/out.mp4?expires=1&sig=abc"
MP4 = b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 4000  # ~1 MB


def status(s: str, **extra: object) -> httpx.Response:
    return httpx.Response(200, json=request_json(RID, s, **extra))


def completed(url: str = OUTPUT_URL) -> httpx.Response:
    return status("completed", output_url=url, finished_at="2026-04-07T10:01:30Z")


# -- wait -----------------------------------------------------------------------------------------


def test_wait_polls_until_completed(sleeps: Sleeps) -> None:
    script = Script(status("queued"), status("processing"), status("processing"), completed())
    req = sync_client(script).lipsync.requests.wait(RID, poll_interval=1.5)
    assert req.status == "completed" and req.output_url == OUTPUT_URL
    assert script.count == 4
    assert sleeps.delays == [1.5, 1.5, 1.5]
    assert all(r.url.path.endswith(f"/v1/lipsync/requests/{RID}") for r in script.requests)


def test_wait_returns_a_failed_request(sleeps: Sleeps) -> None:
    script = Script(status("processing"), status("failed", error_message="no face found"))
    req = sync_client(script).lipsync.requests.wait(RID)
    assert req.status == "failed" and req.error_message == "no face found"
    assert sleeps.delays == [2.0]  # the default poll interval


def test_wait_returns_at_once_when_finished(sleeps: Sleeps) -> None:
    script = Script(completed())
    sync_client(script).lipsync.requests.wait(RID)
    assert script.count == 1 and sleeps.delays == []


def test_wait_accepts_a_request_object(sleeps: Sleeps) -> None:
    script = Script(completed())
    obj = LipsyncRequest.model_validate(request_json(RID, "queued"))
    assert sync_client(script).lipsync.requests.wait(obj).status == "completed"
    assert script.requests[0].url.path.endswith(RID)


def test_wait_times_out() -> None:
    script = Script(*(status("processing") for _ in range(100)))
    start = time.monotonic()
    with pytest.raises(WaitTimeoutError) as info:
        sync_client(script).lipsync.requests.wait(RID, timeout=0.3, poll_interval=0.05)
    elapsed = time.monotonic() - start
    assert 0.3 <= elapsed < 5.0
    assert 3 <= script.count <= 9  # polled every 0.05 s, at least at start, middle and end
    err = info.value
    assert isinstance(err, TimeoutError) and isinstance(err, ChamelaionError)
    assert err.request_id == RID and err.timeout == 0.3
    assert err.last.status == "processing"
    assert "did not finish within 0.3s" in str(err)


def test_wait_last_sleep_is_cut_to_the_deadline() -> None:
    script = Script(*(status("queued") for _ in range(10)))
    start = time.monotonic()
    with pytest.raises(WaitTimeoutError):
        sync_client(script).lipsync.requests.wait(RID, timeout=0.2, poll_interval=5.0)
    assert time.monotonic() - start < 1.0  # did not sleep the whole 5 s poll interval
    assert script.count == 2  # at the start and at the deadline


def test_wait_zero_timeout_polls_once() -> None:
    script = Script(status("queued"))
    with pytest.raises(WaitTimeoutError):
        sync_client(script).lipsync.requests.wait(RID, timeout=0)
    assert script.count == 1


def test_wait_argument_checks() -> None:
    client = sync_client(Script())
    with pytest.raises(ValueError):
        client.lipsync.requests.wait(RID, poll_interval=0)
    with pytest.raises(ValueError):
        client.lipsync.requests.wait(RID, timeout=-1)


def test_wait_propagates_api_errors(sleeps: Sleeps) -> None:
    script = Script(status("queued"), error(404, "not found"))
    with pytest.raises(NotFoundError):
        sync_client(script).lipsync.requests.wait(RID)


async def test_async_wait(sleeps: Sleeps) -> None:
    script = Script(status("queued"), status("processing"), completed())
    req = await async_client(script).lipsync.requests.wait(RID, poll_interval=0.25)
    assert req.status == "completed"
    assert sleeps.delays == [0.25, 0.25]


async def test_async_wait_times_out() -> None:
    script = Script(*(status("processing") for _ in range(100)))
    with pytest.raises(WaitTimeoutError) as info:
        await async_client(script).lipsync.requests.wait(RID, timeout=0.2, poll_interval=0.05)
    assert info.value.last.status == "processing"


# -- download -------------------------------------------------------------------------------------


def serve_file(data: bytes = MP4) -> httpx.Response:
    return httpx.Response(
        200, content=data, headers={"content-type": "video/mp4", "content-length": str(len(data))}
    )


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_download_by_id(tmp_path: Path) -> None:
    script = Script(completed(), serve_file())
    progress: list[tuple[int, int | None]] = []
    dest = sync_client(script).lipsync.requests.download(
        RID, tmp_path / "out.mp4", on_progress=lambda done, total: progress.append((done, total))
    )
    assert dest == tmp_path / "out.mp4"
    assert dest.read_bytes() == MP4
    assert leftovers(tmp_path) == ["out.mp4"]
    get = script.requests[1]
    assert str(get.url) == OUTPUT_URL
    assert "x-api-key" not in get.headers  # a signed URL: the key is not sent along
    assert get.headers["accept-encoding"] == "identity"
    assert progress[-1] == (len(MP4), len(MP4))
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    assert len(progress) >= 1


def test_download_a_request_object_into_a_directory(tmp_path: Path) -> None:
    script = Script(serve_file())
    obj = LipsyncRequest.model_validate(request_json(RID, "completed", output_url=OUTPUT_URL))
    dest = sync_client(script).lipsync.requests.download(obj, tmp_path)
    assert dest == tmp_path / f"{RID}.mp4"
    assert dest.read_bytes() == MP4
    assert script.count == 1  # no retrieve needed


def test_download_relative_output_url_resolves_against_the_api(tmp_path: Path) -> None:
    script = Script(completed("/api/v1/files/out.mp4?sig=x"), serve_file())
    sync_client(script).lipsync.requests.download(RID, tmp_path / "o.mp4")
    assert str(script.requests[1].url) == "http://api.test/api/v1/files/out.mp4?sig=x"


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (status("queued"), "no output yet"),
        (status("processing"), "status: processing"),
        (status("failed", error_message="no face found"), "no face found"),
        (status("completed"), "no output_url"),
    ],
)
def test_download_needs_a_completed_request(
    reply: httpx.Response, message: str, tmp_path: Path
) -> None:
    script = Script(reply)
    with pytest.raises(ChamelaionError, match=message):
        sync_client(script).lipsync.requests.download(RID, tmp_path / "out.mp4")
    assert leftovers(tmp_path) == []
    assert script.count == 1


def test_download_resumes_a_broken_transfer_with_range(tmp_path: Path, sleeps: Sleeps) -> None:
    half = len(MP4) // 2

    def resume(request: httpx.Request) -> httpx.Response:
        assert request.headers["range"] == f"bytes={half}-"
        return httpx.Response(
            206,
            content=MP4[half:],
            headers={"content-range": f"bytes {half}-{len(MP4) - 1}/{len(MP4)}"},
        )

    broken = httpx.Response(
        200, stream=BrokenStream(MP4, half), headers={"content-length": str(len(MP4))}
    )
    script = Script(completed(), broken, resume)
    dest = sync_client(script).lipsync.requests.download(RID, tmp_path / "out.mp4")
    assert dest.read_bytes() == MP4
    assert "range" not in script.requests[1].headers
    assert leftovers(tmp_path) == ["out.mp4"]


def test_download_restarts_when_the_server_ignores_range(tmp_path: Path, sleeps: Sleeps) -> None:
    broken = httpx.Response(200, stream=BrokenStream(MP4, 5000))
    script = Script(completed(), broken, serve_file())  # answers 200 with the whole file again
    dest = sync_client(script).lipsync.requests.download(RID, tmp_path / "out.mp4")
    assert script.requests[2].headers["range"] == "bytes=5000-"
    assert dest.read_bytes() == MP4


def test_download_retries_server_errors(tmp_path: Path, sleeps: Sleeps) -> None:
    script = Script(completed(), error(503, "busy"), httpx.ConnectError("x"), serve_file())
    dest = sync_client(script).lipsync.requests.download(RID, tmp_path / "out.mp4")
    assert dest.read_bytes() == MP4
    assert sleeps.delays == [0.5, 1.0]


def test_failed_download_leaves_no_file(tmp_path: Path, sleeps: Sleeps) -> None:
    dest = tmp_path / "out.mp4"
    dest.write_bytes(b"previous content")
    broken = [httpx.Response(200, stream=BrokenStream(MP4, 3000)) for _ in range(3)]
    script = Script(completed(), *broken)
    with pytest.raises(APIConnectionError):
        sync_client(script, max_retries=2).lipsync.requests.download(RID, dest)
    assert dest.read_bytes() == b"previous content"  # untouched
    assert leftovers(tmp_path) == ["out.mp4"]  # no temp file left behind


def test_failing_progress_callback_aborts_cleanly(tmp_path: Path) -> None:
    def boom(done: int, total: int | None) -> None:
        raise KeyboardInterrupt

    script = Script(completed(), serve_file())
    with pytest.raises(KeyboardInterrupt):
        sync_client(script).lipsync.requests.download(RID, tmp_path / "o.mp4", on_progress=boom)
    assert leftovers(tmp_path) == []


def test_download_error_status_is_raised(tmp_path: Path) -> None:
    script = Script(completed(), error(404, "not found"))
    with pytest.raises(NotFoundError):
        sync_client(script).lipsync.requests.download(RID, tmp_path / "o.mp4")
    assert leftovers(tmp_path) == []


def test_expired_url_of_a_request_object_is_refreshed_once(tmp_path: Path) -> None:
    fresh_url = "http://files.test/v1/files/out.mp4?expires=2&sig=new"
    obj = LipsyncRequest.model_validate(request_json(RID, "completed", output_url=OUTPUT_URL))
    script = Script(error(403, "link expired"), completed(fresh_url), serve_file())
    dest = sync_client(script).lipsync.requests.download(obj, tmp_path / "o.mp4")
    assert dest.read_bytes() == MP4
    assert [str(r.url) for r in script.requests] == [
        OUTPUT_URL,
        f"http://api.test/api/v1/lipsync/requests/{RID}",
        fresh_url,
    ]


def test_download_follows_redirects(tmp_path: Path) -> None:
    redirect = httpx.Response(302, headers={"location": "http://cdn.test/real.mp4"})
    script = Script(completed(), redirect, serve_file())
    sync_client(script).lipsync.requests.download(RID, tmp_path / "o.mp4")
    assert str(script.requests[2].url) == "http://cdn.test/real.mp4"
    assert "x-api-key" not in script.requests[2].headers


async def test_async_download(tmp_path: Path) -> None:
    script = Script(completed(), serve_file())
    progress: list[int] = []
    dest = await async_client(script).lipsync.requests.download(
        RID, tmp_path / "out.mp4", on_progress=lambda done, total: progress.append(done)
    )
    assert dest.read_bytes() == MP4
    assert progress[-1] == len(MP4)


async def test_async_download_resumes_and_cleans_up(tmp_path: Path, sleeps: Sleeps) -> None:
    half = 200_000
    resume = httpx.Response(
        206,
        content=MP4[half:],
        headers={"content-range": f"bytes {half}-{len(MP4) - 1}/{len(MP4)}"},
    )
    script = Script(completed(), httpx.Response(200, stream=BrokenStream(MP4, half)), resume)
    dest = await async_client(script).lipsync.requests.download(RID, tmp_path / "out.mp4")
    assert dest.read_bytes() == MP4
    assert script.requests[2].headers["range"] == f"bytes={half}-"

    script = Script(
        completed(), *(httpx.Response(200, stream=BrokenStream(MP4, 10)) for _ in range(3))
    )
    with pytest.raises(APIConnectionError):
        await async_client(script).lipsync.requests.download(RID, tmp_path / "second.mp4")
    assert leftovers(tmp_path) == ["out.mp4"]
