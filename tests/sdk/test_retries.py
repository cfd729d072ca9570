"""Retries, backoff, Retry-After, timeouts and error mapping (MockTransport, and a silent socket
for a real timeout)."""

from __future__ import annotations

import email.utils
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from chamelaion import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    Chamelaion,
    ChamelaionError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    TokenLimitError,
    UnsupportedMediaTypeError,
    _base_client,
)
from sdk.helpers import Script, Sleeps, async_client, error, request_json, sync_client

OK = httpx.Response(200, json=request_json())


def ok() -> httpx.Response:
    return httpx.Response(200, json=request_json())


# -- error mapping ------------------------------------------------------------------------------

ERRORS = [
    (400, "invalid request body", BadRequestError),
    (400, "expected exactly one video input", BadRequestError),
    (401, "invalid token", AuthenticationError),
    (402, "token limit reached", TokenLimitError),
    (403, "forbidden", PermissionDeniedError),
    (404, "not found", NotFoundError),
    (413, "file too large", APIStatusError),
    (415, "content-type must be application/json", UnsupportedMediaTypeError),
    (422, "unprocessable", APIStatusError),
    (429, "rate limit exceeded", RateLimitError),
    (500, "internal error", InternalServerError),
    (503, "unavailable", InternalServerError),
]


@pytest.mark.parametrize(("status", "message", "cls"), ERRORS)
def test_status_errors_map_to_classes(status: int, message: str, cls: type[APIStatusError]) -> None:
    client = sync_client(Script(error(status, message)), max_retries=0)
    with pytest.raises(APIStatusError) as info:
        client.lipsync.requests.retrieve("x")
    err = info.value
    assert type(err) is cls
    assert err.status_code == status
    assert err.message == message
    assert err.body == {"error": message}
    assert err.response.status_code == status
    assert err.request.url.path == "/api/v1/lipsync/requests/x"
    assert str(err) == f"Error code {status}: {message}"
    assert isinstance(err, ChamelaionError)


@pytest.mark.parametrize(("status", "message", "cls"), ERRORS)
async def test_async_status_errors_map_to_classes(
    status: int, message: str, cls: type[APIStatusError]
) -> None:
    client = async_client(Script(error(status, message)), max_retries=0)
    with pytest.raises(APIStatusError) as info:
        await client.lipsync.requests.retrieve("x")
    assert type(info.value) is cls
    assert info.value.message == message


def test_non_json_error_body_uses_the_text() -> None:
    client = sync_client(Script(httpx.Response(502, text="Bad Gateway from proxy")), max_retries=0)
    with pytest.raises(InternalServerError) as info:
        client.lipsync.requests.retrieve("x")
    assert info.value.message == "Bad Gateway from proxy"


def test_empty_error_body_uses_the_reason() -> None:
    client = sync_client(Script(httpx.Response(404)), max_retries=0)
    with pytest.raises(NotFoundError) as info:
        client.lipsync.requests.retrieve("x")
    assert info.value.message == "Not Found"


def test_invalid_success_body_is_a_validation_error() -> None:
    client = sync_client(Script(httpx.Response(200, json={"id": 1})), max_retries=0)
    with pytest.raises(APIResponseValidationError) as info:
        client.lipsync.requests.retrieve("x")
    assert info.value.body == {"id": 1}
    client = sync_client(Script(httpx.Response(200, text="<html>")), max_retries=0)
    with pytest.raises(APIResponseValidationError):
        client.lipsync.requests.retrieve("x")


# -- which failures are retried -----------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried(status: int, sleeps: Sleeps) -> None:
    script = Script(error(status, "e"), error(status, "e"), ok())
    req = sync_client(script, max_retries=2).lipsync.requests.retrieve("x")
    assert req.id == "6f82a2d8-a6d4-4e8a-a0fa-e8b09823a2d8"
    assert script.count == 3
    assert len(sleeps.delays) == 2


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 405, 409, 410, 413, 415, 422])
def test_other_4xx_are_never_retried(status: int, sleeps: Sleeps) -> None:
    script = Script(error(status, "e"), ok())
    with pytest.raises(APIStatusError):
        sync_client(script, max_retries=5).lipsync.requests.retrieve("x")
    assert script.count == 1
    assert sleeps.delays == []


def test_retries_give_up_after_max_retries(sleeps: Sleeps) -> None:
    script = Script(*(error(500, "internal error") for _ in range(4)))
    with pytest.raises(InternalServerError):
        sync_client(script, max_retries=3).lipsync.requests.retrieve("x")
    assert script.count == 4


def test_zero_retries(sleeps: Sleeps) -> None:
    script = Script(error(503, "e"), ok())
    with pytest.raises(InternalServerError):
        sync_client(script, max_retries=0).lipsync.requests.retrieve("x")
    assert script.count == 1


def test_with_options_max_retries(sleeps: Sleeps) -> None:
    script = Script(error(503, "e"), error(503, "e"), ok())
    client = sync_client(script, max_retries=0)
    assert client.with_options(max_retries=2).lipsync.requests.retrieve("x").status == "queued"
    assert script.count == 3


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused"),
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("closed"),
        httpx.ConnectTimeout("slow"),
        httpx.ReadTimeout("slow"),
    ],
)
def test_connection_errors_and_timeouts_are_retried(exc: Exception, sleeps: Sleeps) -> None:
    script = Script(exc, ok())
    assert sync_client(script).lipsync.requests.retrieve("x").status == "queued"
    assert script.count == 2
    assert sleeps.delays == [0.5]


def test_connection_error_after_retries(sleeps: Sleeps) -> None:
    script = Script(*(httpx.ConnectError("refused") for _ in range(3)))
    with pytest.raises(APIConnectionError) as info:
        sync_client(script, max_retries=2).lipsync.requests.retrieve("x")
    assert not isinstance(info.value, APITimeoutError)
    assert "refused" in info.value.message
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert script.count == 3


def test_timeout_after_retries(sleeps: Sleeps) -> None:
    script = Script(*(httpx.ReadTimeout("slow") for _ in range(3)))
    with pytest.raises(APITimeoutError):
        sync_client(script, max_retries=2).lipsync.requests.retrieve("x")
    assert script.count == 3


def test_unsupported_protocol_is_not_retried(sleeps: Sleeps) -> None:
    script = Script(httpx.UnsupportedProtocol("nope"), ok())
    with pytest.raises(APIConnectionError):
        sync_client(script).lipsync.requests.retrieve("x")
    assert script.count == 1


async def test_async_retries(sleeps: Sleeps) -> None:
    script = Script(httpx.ConnectError("refused"), error(429, "rate limit exceeded"), ok())
    client = async_client(script, max_retries=2)
    assert (await client.lipsync.requests.retrieve("x")).status == "queued"
    assert script.count == 3
    assert sleeps.delays == [0.5, 1.0]


async def test_async_timeout_error(sleeps: Sleeps) -> None:
    script = Script(httpx.ReadTimeout("slow"), httpx.ReadTimeout("slow"))
    with pytest.raises(APITimeoutError):
        await async_client(script, max_retries=1).lipsync.requests.retrieve("x")
    assert script.count == 2


def test_retry_count_header(sleeps: Sleeps) -> None:
    script = Script(error(500, "e"), error(500, "e"), ok())
    sync_client(script).lipsync.requests.retrieve("x")
    assert [r.headers.get("x-chamelaion-retry-count") for r in script.requests] == [
        None,
        "1",
        "2",
    ]


# -- backoff and Retry-After --------------------------------------------------------------------


def test_exponential_backoff_capped(sleeps: Sleeps) -> None:
    script = Script(*(error(500, "e") for _ in range(7)), ok())
    sync_client(script, max_retries=7).lipsync.requests.retrieve("x")
    assert sleeps.delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_jitter_takes_off_up_to_a_quarter(sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_base_client, "_jitter", lambda: 0.999)
    script = Script(error(500, "e"), error(500, "e"), ok())
    sync_client(script).lipsync.requests.retrieve("x")
    assert sleeps.delays == pytest.approx([0.5 * 0.75025, 1.0 * 0.75025])


def test_real_jitter_stays_in_range(sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real random jitter, but still no real sleeping
    record: list[float] = []
    monkeypatch.setattr(_base_client, "_sleep", record.append)
    script = Script(*(error(500, "e") for _ in range(40)), ok())
    sync_client(script, max_retries=40).lipsync.requests.retrieve("x")
    capped = record[5:]  # 8 s cap reached
    assert all(6.0 <= d <= 8.0 for d in capped)
    assert len(set(capped)) > 1  # randomised


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after": "garbage"}, 0.5),  # unparseable: exponential backoff
    ],
)
def test_retry_after_is_honoured(headers: dict[str, str], expected: float, sleeps: Sleeps) -> None:
    script = Script(error(429, "rate limit exceeded", **headers), ok())
    sync_client(script).lipsync.requests.retrieve("x")
    assert sleeps.delays == [pytest.approx(expected)]


def test_retry_after_http_date(sleeps: Sleeps) -> None:
    when = email.utils.formatdate(time.time() + 10, usegmt=True)
    script = Script(error(503, "busy", **{"retry-after": when}), ok())
    sync_client(script).lipsync.requests.retrieve("x")
    assert 8.0 <= sleeps.delays[0] <= 10.0


def test_retry_after_too_long_is_not_waited_for(sleeps: Sleeps) -> None:
    script = Script(error(429, "rate limit exceeded", **{"retry-after": "3600"}), ok())
    with pytest.raises(RateLimitError) as info:
        sync_client(script).lipsync.requests.retrieve("x")
    assert info.value.response.headers["retry-after"] == "3600"
    assert script.count == 1
    assert sleeps.delays == []


def test_real_sleep_honours_retry_after() -> None:
    """No fake sleep: the client really waits about Retry-After seconds."""
    script = Script(error(429, "rate limit exceeded", **{"retry-after": "0.3"}), ok())
    start = time.monotonic()
    sync_client(script).lipsync.requests.retrieve("x")
    assert 0.28 <= time.monotonic() - start < 2.0


# -- a real timeout against a socket that never answers -----------------------------------------


@pytest.fixture
def silent_server() -> Iterator[tuple[str, list[socket.socket]]]:
    """A loopback port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/api", accepted
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_real_read_timeout_is_retried_then_raised(
    silent_server: tuple[str, list[socket.socket]], sleeps: Sleeps
) -> None:
    base_url, accepted = silent_server
    with Chamelaion(api_key="k", base_url=base_url, timeout=0.3, max_retries=1) as client:
        start = time.monotonic()
        with pytest.raises(APITimeoutError):
            client.lipsync.requests.retrieve("x")
        elapsed = time.monotonic() - start
    assert 0.55 <= elapsed < 5.0  # two attempts of 0.3 s
    assert len(accepted) == 2
    assert sleeps.delays == [0.5]


async def test_async_real_read_timeout(silent_server: tuple[str, list[socket.socket]]) -> None:
    from chamelaion import AsyncChamelaion

    base_url, accepted = silent_server
    async with AsyncChamelaion(api_key="k", base_url=base_url, timeout=0.2, max_retries=0) as c:
        with pytest.raises(APITimeoutError):
            await c.lipsync.requests.retrieve("x")
    assert len(accepted) == 1


def test_refused_connection_is_a_connection_error(sleeps: Sleeps) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    client = Chamelaion(api_key="k", base_url=f"http://127.0.0.1:{port}/api", max_retries=2)
    with pytest.raises(APIConnectionError) as info:
        client.lipsync.requests.retrieve("x")
    assert not isinstance(info.value, APITimeoutError)
    assert sleeps.delays == [0.5, 1.0]


def test_retries_are_logged_without_the_key(
    sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="chamelaion")
    script = Script(httpx.ConnectError("refused"), error(503, "busy"), ok())
    sync_client(script).lipsync.requests.retrieve("x")
    records = [r for r in caplog.records if r.name == "chamelaion.sdk"]
    assert len(records) == 2
    assert "retrying GET http://api.test/api/v1/lipsync/requests/x" in caplog.text
    assert "HTTP 503" in caplog.text
    assert "test-key-123" not in caplog.text
