"""Pages of ``requests.list()``.

A page is a ``RequestListResponse`` (``.data``, ``.pagination``) that can also fetch the pages
after it. Iterating a page yields every item from it to the end of the list, fetching pages as
needed::

    for request in client.lipsync.requests.list(limit=50):
        ...

    async for request in async_client.lipsync.requests.list(limit=50):
        ...

``page = await async_client.lipsync.requests.list()`` gives just the first page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from typing import Any

from pydantic import PrivateAttr

from ._exceptions import ChamelaionError
from .types.lipsync_request import LipsyncRequest
from .types.request_list_response import RequestListResponse

__all__ = ["AsyncRequestsPage", "AsyncRequestsPaginator", "SyncRequestsPage"]

PageParams = dict[str, object]


class _BasePage(RequestListResponse):
    _params: PageParams = PrivateAttr(default_factory=dict)

    def next_page_params(self) -> PageParams | None:
        """The query of the next page, or ``None`` on the last page."""
        returned = len(self.data)
        next_offset = self.pagination.offset + returned
        if returned == 0 or next_offset >= self.pagination.total:
            return None
        return {**self._params, "offset": next_offset}

    def has_next_page(self) -> bool:
        return self.next_page_params() is not None

    def _next_or_raise(self) -> PageParams:
        params = self.next_page_params()
        if params is None:
            raise ChamelaionError("no more pages; check has_next_page() first")
        return params


class SyncRequestsPage(_BasePage):
    _fetch: Callable[[PageParams], SyncRequestsPage] | None = PrivateAttr(default=None)

    def _bind(self, fetch: Callable[[PageParams], SyncRequestsPage], params: PageParams) -> None:
        self._fetch = fetch
        self._params = params

    def get_next_page(self) -> SyncRequestsPage:
        params = self._next_or_raise()
        if self._fetch is None:
            raise ChamelaionError("this page is not bound to a client")
        return self._fetch(params)

    def iter_pages(self) -> Iterator[SyncRequestsPage]:
        """This page and each page after it."""
        page = self
        while True:
            yield page
            if not page.has_next_page():
                return
            page = page.get_next_page()

    def __iter__(self) -> Iterator[LipsyncRequest]:  # type: ignore[override]
        for page in self.iter_pages():
            yield from page.data


class AsyncRequestsPage(_BasePage):
    _fetch: Callable[[PageParams], Awaitable[AsyncRequestsPage]] | None = PrivateAttr(default=None)

    def _bind(
        self, fetch: Callable[[PageParams], Awaitable[AsyncRequestsPage]], params: PageParams
    ) -> None:
        self._fetch = fetch
        self._params = params

    async def get_next_page(self) -> AsyncRequestsPage:
        params = self._next_or_raise()
        if self._fetch is None:
            raise ChamelaionError("this page is not bound to a client")
        return await self._fetch(params)

    async def iter_pages(self) -> AsyncIterator[AsyncRequestsPage]:
        """This page and each page after it."""
        page = self
        while True:
            yield page
            if not page.has_next_page():
                return
            page = await page.get_next_page()

    async def __aiter__(self) -> AsyncIterator[LipsyncRequest]:
        async for page in self.iter_pages():
            for item in page.data:
                yield item


class AsyncRequestsPaginator:
    """What async ``requests.list()`` returns: ``await`` it for the first page, or
    ``async for`` over it for every item across all pages."""

    def __init__(self, first_page: Callable[[], Awaitable[AsyncRequestsPage]]) -> None:
        self._first_page = first_page

    def __await__(self) -> Generator[Any, None, AsyncRequestsPage]:
        return self._first_page().__await__()

    async def __aiter__(self) -> AsyncIterator[LipsyncRequest]:
        page = await self._first_page()
        async for item in page:
            yield item
