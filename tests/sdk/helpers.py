"""Helpers of the SDK's MockTransport tests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from chamelaion import AsyncChamelaion, Chamelaion

API_KEY = "test-key-123"
BASE_URL = "http://api.test/api"

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class Script:
    """A MockTransport handler answering each request with the next scripted reply, and
    recording every request it saw (with its body already read)."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.replies:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, httpx.Response):
            return reply
        return reply(request)

    @property
    def count(self) -> int:
        return len(self.requests)


def sync_client(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> Chamelaion:
    kwargs.setdefault("api_key", API_KEY)
    kwargs.setdefault("base_url", BASE_URL)
    return Chamelaion(http_client=httpx.Client(transport=httpx.MockTransport(handler)), **kwargs)


def async_client(
    handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any
) -> AsyncChamelaion:
    kwargs.setdefault("api_key", API_KEY)
    kwargs.setdefault("base_url", BASE_URL)
    return AsyncChamelaion(
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)), **kwargs
    )


def error(status: int, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": message}, headers=headers)


def generated(request_id: str = "6f82a2d8-a6d4-4e8a-a0fa-e8b09823a2d8") -> httpx.Response:
    return httpx.Response(200, json={"status": "success", "request_id": request_id})


def request_json(
    id: str = "6f82a2d8-a6d4-4e8a-a0fa-e8b09823a2d8", status: str = "queued", **extra: Any
) -> dict[str, Any]:
    return {"id": id, "status": status, "created_at": "2026-04-07T10:00:00Z", **extra}


def body_json(request: httpx.Request) -> Any:
    return json.loads(request.content)


class BrokenStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body that sends ``data[:fail_after]`` and then breaks the connection."""

    def __init__(self, data: bytes, fail_after: int, chunk: int = 1000) -> None:
        self.data = data
        self.fail_after = fail_after
        self.chunk = chunk

    def _chunks(self) -> Iterator[bytes]:
        for i in range(0, self.fail_after, self.chunk):
            yield self.data[i : min(i + self.chunk, self.fail_after)]
        raise httpx.ReadError("connection reset by peer")

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks():
            yield chunk


@dataclass
class Sleeps:
    """Sleeps the SDK asked for (instead of sleeping); see the ``sleeps`` fixture."""

    delays: list[float] = field(default_factory=list)
