"""Models (datetimes, unknown fields) and list() pagination across pages (MockTransport)."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest

from chamelaion import (
    APIConnectionError,
    AsyncRequestsPage,
    AsyncRequestsPaginator,
    ChamelaionError,
    LipsyncGenerate,
    LipsyncRequest,
    NotFoundError,
    Pagination,
    RequestListResponse,
    SyncRequestsPage,
)
from sdk.helpers import Script, async_client, error, sync_client

SEED_REQUEST = {
    "id": "6f82a2d8-a6d4-4e8a-a0fa-e8b09823a2d8",
    "reference_id": "dub-episode-42",
    "status": "completed",
    "created_at": "2026-04-07T10:00:00Z",
    "started_at": "2026-04-07T10:00:05Z",
    "finished_at": "2026-04-07T10:01:30Z",
    "output_url": "https://storage.chamelaion.com/output/6f82a2d8.mp4",
}


def test_request_model_parses_the_seed_example() -> None:
    req = LipsyncRequest.model_validate(SEED_REQUEST)
    assert req.created_at == datetime(2026, 4, 7, 10, 0, 0, tzinfo=timezone.utc)
    assert req.started_at == datetime(2026, 4, 7, 10, 0, 5, tzinfo=timezone.utc)
    assert req.finished_at is not None and req.finished_at.tzinfo is not None
    assert req.is_finished
    assert req.error_message is None
    assert req.to_dict() == SEED_REQUEST


def test_absent_optional_fields_and_unknown_fields() -> None:
    req = LipsyncRequest.model_validate(
        {"id": "a", "status": "queued", "created_at": "2026-03-30T11:02:00Z", "eta_seconds": 25}
    )
    assert req.output_url is None and req.started_at is None and req.reference_id is None
    assert not req.is_finished and req.progress is None and req.stage is None
    assert req.eta_seconds == 25  # type: ignore[attr-defined]
    assert req.model_extra == {"eta_seconds": 25}
    gen = LipsyncGenerate.model_validate({"status": "success", "request_id": "r", "x": 1})
    assert gen.request_id == "r"


def test_unknown_status_is_tolerated() -> None:
    req = LipsyncRequest.model_validate(
        {"id": "a", "status": "paused", "created_at": "2026-03-30T11:02:00Z"}
    )
    assert req.status == "paused" and not req.is_finished


def _item(i: int, reference_id: str = "batch") -> dict[str, object]:
    return {
        "id": f"00000000-0000-0000-0000-{i:012d}",
        "status": "queued",
        "created_at": "2026-03-30T11:00:00Z",
        "reference_id": reference_id,
    }


class FakeList:
    """Serves GET /v1/lipsync/requests over ``total`` items like the API does."""

    def __init__(self, total: int, default_limit: int = 20) -> None:
        self.items = [_item(i) for i in range(total)]
        self.default_limit = default_limit
        self.queries: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/lipsync/requests"
        query = dict(request.url.params)
        self.queries.append(query)
        limit = int(query.get("limit", self.default_limit))
        offset = int(query.get("offset", 0))
        return httpx.Response(
            200,
            json={
                "data": self.items[offset : offset + limit],
                "pagination": {"limit": limit, "offset": offset, "total": len(self.items)},
            },
        )


def test_first_page_attributes() -> None:
    fake = FakeList(45)
    page = sync_client(fake).lipsync.requests.list()
    assert isinstance(page, SyncRequestsPage)
    assert isinstance(page, RequestListResponse)
    assert len(page.data) == 20
    assert page.pagination == Pagination(limit=20, offset=0, total=45)
    assert page.has_next_page()
    assert page.next_page_params() == {"offset": 20}
    assert isinstance(page.data[0], LipsyncRequest)


def test_iteration_walks_every_page() -> None:
    fake = FakeList(45)
    client = sync_client(fake)
    ids = [r.id for r in client.lipsync.requests.list(limit=20, reference_id="batch")]
    assert ids == [item["id"] for item in fake.items]
    assert fake.queries == [
        {"limit": "20", "reference_id": "batch"},
        {"limit": "20", "reference_id": "batch", "offset": "20"},
        {"limit": "20", "reference_id": "batch", "offset": "40"},
    ]


def test_iteration_from_an_offset_with_the_server_default_limit() -> None:
    fake = FakeList(25)
    items = list(sync_client(fake).lipsync.requests.list(offset=3))
    assert len(items) == 22
    assert [q.get("offset") for q in fake.queries] == ["3", "23"]


def test_exact_multiple_does_not_fetch_an_empty_page() -> None:
    fake = FakeList(40)
    assert len(list(sync_client(fake).lipsync.requests.list(limit=20))) == 40
    assert len(fake.queries) == 2


def test_empty_list() -> None:
    fake = FakeList(0)
    page = sync_client(fake).lipsync.requests.list()
    assert page.data == [] and not page.has_next_page()
    assert list(page) == []
    with pytest.raises(ChamelaionError):
        page.get_next_page()


def test_iter_pages_and_get_next_page() -> None:
    fake = FakeList(5)
    page = sync_client(fake).lipsync.requests.list(limit=2)
    assert [len(p.data) for p in page.iter_pages()] == [2, 2, 1]
    second = page.get_next_page()
    assert second.pagination.offset == 2


def test_short_page_from_a_server_stops_when_data_is_empty() -> None:
    # A server whose total is stale (items deleted) answers an empty page: iteration ends.
    pages = [
        {"data": [_item(0)], "pagination": {"limit": 1, "offset": 0, "total": 3}},
        {"data": [], "pagination": {"limit": 1, "offset": 1, "total": 3}},
    ]
    script = Script(*(httpx.Response(200, json=p) for p in pages))
    assert len(list(sync_client(script).lipsync.requests.list(limit=1))) == 1
    assert script.count == 2


def test_error_on_a_later_page_propagates(sleeps: object) -> None:
    first = {"data": [_item(0)], "pagination": {"limit": 1, "offset": 0, "total": 2}}
    script = Script(httpx.Response(200, json=first), error(404, "not found"))
    page = sync_client(script).lipsync.requests.list(limit=1)
    with pytest.raises(NotFoundError):
        list(page)


async def test_async_iteration_walks_every_page() -> None:
    fake = FakeList(45)
    client = async_client(fake)
    paginator = client.lipsync.requests.list(limit=20)
    assert isinstance(paginator, AsyncRequestsPaginator)
    ids = [r.id async for r in paginator]
    assert ids == [item["id"] for item in fake.items]
    assert [q.get("offset") for q in fake.queries] == [None, "20", "40"]


async def test_async_await_gives_the_first_page() -> None:
    fake = FakeList(45)
    page = await async_client(fake).lipsync.requests.list(reference_id="batch")
    assert isinstance(page, AsyncRequestsPage)
    assert len(page.data) == 20 and page.pagination.total == 45
    assert len(fake.queries) == 1
    rest = [r async for r in page]  # from this page to the end
    assert len(rest) == 45
    pages = [p async for p in page.iter_pages()]
    assert [len(p.data) for p in pages] == [20, 20, 5]
    nxt = await page.get_next_page()
    assert nxt.pagination.offset == 20


async def test_async_list_errors(sleeps: object) -> None:
    script = Script(httpx.ConnectError("down"), httpx.ConnectError("down"), httpx.ConnectError("x"))
    with pytest.raises(APIConnectionError):
        await async_client(script).lipsync.requests.list()
