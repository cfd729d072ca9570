"""``client.lipsync.requests``: follow lip sync jobs (``/v1/lipsync/requests``), wait for them
and download their output."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from urllib.parse import quote

from ... import _base_client
from ..._base_client import ProgressCallback, RequestOptions
from ..._exceptions import APIStatusError, ChamelaionError, WaitTimeoutError
from ..._pagination import AsyncRequestsPage, AsyncRequestsPaginator, PageParams, SyncRequestsPage
from ..._resource import AsyncAPIResource, SyncAPIResource
from ..._types import NOT_GIVEN, Headers, NotGiven, Timeout
from ...types.lipsync_request import LipsyncRequest
from ...types.request_deleted import RequestDeleted

__all__ = ["AsyncRequests", "Requests"]

LIST_PATH = "/v1/lipsync/requests"
DEFAULT_WAIT_TIMEOUT = 600.0
DEFAULT_POLL_INTERVAL = 2.0
# A signed output URL that has expired answers with one of these; download() then asks the API
# for a fresh one, once.
_EXPIRED_URL_STATUSES = frozenset({401, 403, 404, 410})


def _request_path(id: str) -> str:
    if not isinstance(id, str) or not id:
        raise ValueError("a request id (or reference_id) must be a non-empty string")
    return f"{LIST_PATH}/{quote(id, safe='')}"


def _retrieve_options(
    id: str, extra_headers: Headers | None, timeout: Timeout | NotGiven
) -> RequestOptions:
    return RequestOptions("GET", _request_path(id), headers=extra_headers, timeout=timeout)


def _cancel_options(
    id: str, extra_headers: Headers | None, timeout: Timeout | NotGiven
) -> RequestOptions:
    return RequestOptions(
        "POST", f"{_request_path(id)}/cancel", headers=extra_headers, timeout=timeout
    )


def _delete_options(
    id: str, extra_headers: Headers | None, timeout: Timeout | NotGiven
) -> RequestOptions:
    return RequestOptions("DELETE", _request_path(id), headers=extra_headers, timeout=timeout)


def _list_options(
    params: PageParams, extra_headers: Headers | None, timeout: Timeout | NotGiven
) -> RequestOptions:
    return RequestOptions("GET", LIST_PATH, params=params, headers=extra_headers, timeout=timeout)


def _id_of(id_or_request: str | LipsyncRequest) -> str:
    return id_or_request.id if isinstance(id_or_request, LipsyncRequest) else id_or_request


class _WaitClock:
    """When to poll next in ``wait()``, and when to give up."""

    def __init__(self, timeout: float | None, poll_interval: float) -> None:
        if timeout is not None and (math.isnan(timeout) or timeout < 0):
            raise ValueError("timeout must be >= 0 seconds, or None to wait forever")
        if not poll_interval > 0:
            raise ValueError("poll_interval must be > 0 seconds")
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.deadline = None if timeout is None else time.monotonic() + timeout

    def next_sleep(self, request_id: str, last: LipsyncRequest) -> float:
        """Seconds to sleep before the next poll; raises ``WaitTimeoutError`` when time is up."""
        if self.deadline is None:
            return self.poll_interval
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeoutError(request_id, self.timeout or 0.0, last)
        return min(self.poll_interval, remaining)


def _output_url(request: LipsyncRequest) -> str:
    if request.status == "completed" and request.output_url:
        return request.output_url
    if request.status == "failed":
        raise ChamelaionError(
            f"request {request.id} failed: {request.error_message or 'no error message'}"
        )
    if request.status == "cancelled":
        raise ChamelaionError(f"request {request.id} was cancelled: it has no output")
    if request.status == "completed":
        raise ChamelaionError(f"request {request.id} is completed but has no output_url")
    raise ChamelaionError(
        f"request {request.id} has no output yet (status: {request.status}); "
        "use requests.wait() first"
    )


def _destination(path: str | os.PathLike[str], request: LipsyncRequest) -> Path:
    dest = Path(path)
    if dest.is_dir():
        dest = dest / f"{request.id}.mp4"
    return dest


class Requests(SyncAPIResource):
    """Lip sync requests (jobs) of your account."""

    def retrieve(
        self,
        id: str,
        *,
        extra_headers: Headers | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> LipsyncRequest:
        """One request, by its UUID or by its ``reference_id`` (the newest with it)."""
        return self._client.request(LipsyncRequest, _retrieve_options(id, extra_headers, timeout))

    def cancel(
        self,
        id: str,
        *,
        extra_headers: Headers | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> LipsyncRequest:
        """Stop a ``queued`` or ``processing`` request (its status becomes ``cancelled``; the
        worker stops within seconds) and return it. A finished request is returned unchanged."""
        return self._client.request(LipsyncRequest, _cancel_options(id, extra_headers, timeout))

    def delete(
        self,
        id: str,
        *,
        extra_headers: Headers | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> RequestDeleted:
        """Remove a request, its inputs and its output for good (a running one is cancelled
        first). Retrieving it afterwards raises ``NotFoundError``."""
        return self._client.request(RequestDeleted, _delete_options(id, extra_headers, timeout))

    def list(
        self,
        *,
        limit: int | None = None,
        offset: int | None = None,
        reference_id: str | None = None,
        extra_headers: Headers | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> SyncRequestsPage:
        """A page of requests, oldest first (server default 20 per page, at most 100).

        The page has ``.data`` and ``.pagination``; iterating it yields every request from
        ``offset`` to the end, fetching further pages as needed.
        """
        params: PageParams = {"limit": limit, "offset": offset, "reference_id": reference_id}
        return self._page(
            {k: v for k, v in params.items() if v is not None}, extra_headers, timeout
        )

    def _page(
        self, params: PageParams, extra_headers: Headers | None, timeout: Timeout | NotGiven
    ) -> SyncRequestsPage:
        page = self._client.request(SyncRequestsPage, _list_options(params, extra_headers, timeout))
        page._bind(lambda p: self._page(p, extra_headers, timeout), params)
        return page

    def wait(
        self,
        id: str | LipsyncRequest,
        *,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> LipsyncRequest:
        """Poll until the request is ``completed``, ``failed`` or ``cancelled`` and return it.

        A ``failed`` request is returned, not raised: check ``status``/``error_message``.
        Raises ``WaitTimeoutError`` (a ``TimeoutError``) after ``timeout`` seconds
        (``None``: wait forever).
        """
        request_id = _id_of(id)
        clock = _WaitClock(timeout, poll_interval)
        while True:
            request = self.retrieve(request_id)
            if request.is_finished:
                return request
            _base_client._sleep(clock.next_sleep(request_id, request))

    def download(
        self,
        id_or_request: str | LipsyncRequest,
        path: str | os.PathLike[str],
        *,
        on_progress: ProgressCallback | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Path:
        """Save a completed request's output MP4 to ``path`` (a file, or a directory to save
        ``<id>.mp4`` into) and return the file's path.

        Streams to a temp file next to ``path`` and renames it into place, so ``path`` never
        holds a partial file. A broken transfer is resumed with HTTP Range.
        ``on_progress(bytes_written, total_bytes_or_None)`` is called after each chunk.
        Raises ``ChamelaionError`` if the request is not completed.
        """
        request = (
            id_or_request
            if isinstance(id_or_request, LipsyncRequest)
            else self.retrieve(id_or_request)
        )
        dest = _destination(path, request)
        try:
            self._client._download(
                _output_url(request), dest, on_progress=on_progress, timeout=timeout
            )
        except APIStatusError as err:
            if not (
                isinstance(id_or_request, LipsyncRequest)
                and err.status_code in _EXPIRED_URL_STATUSES
            ):
                raise
            # The request object's signed URL may have expired: get a fresh one.
            fresh = self.retrieve(request.id)
            self._client._download(
                _output_url(fresh), dest, on_progress=on_progress, timeout=timeout
            )
        return dest


class AsyncRequests(AsyncAPIResource):
    """Lip sync requests (jobs) of your account."""

    async def retrieve(
        self,
        id: str,
        *,
        extra_headers: Headers | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> LipsyncRequest:
        """One request, by its UUID or by its ``reference_id`` (the newest with it)."""
        return await self._client.request(
            LipsyncRequest, _retrieve_options(id, extra_headers, timeout)
        )

    async def cancel(
        self,
        id: str,
        *,
        extra_headers: Headers | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> LipsyncRequest:
        """Stop a ``queued`` or ``processing`` request. See ``Requests.cancel``."""
        return await self._client.request(
            LipsyncRequest, _cancel_options(id, extra_headers, timeout)
        )

    async def delete(
        self,
        id: str,
        *,
        extra_headers: Headers | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> RequestDeleted:
        """Remove a request, its inputs and its output for good. See ``Requests.delete``."""
        return await self._client.request(
            RequestDeleted, _delete_options(id, extra_headers, timeout)
        )

    def list(
        self,
        *,
        limit: int | None = None,
        offset: int | None = None,
        reference_id: str | None = None,
        extra_headers: Headers | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> AsyncRequestsPaginator:
        """A page of requests, oldest first (server default 20 per page, at most 100).

        ``await`` it for the first page (``.data``, ``.pagination``), or ``async for`` over it
        for every request from ``offset`` to the end, fetching further pages as needed.
        """
        params: PageParams = {"limit": limit, "offset": offset, "reference_id": reference_id}
        params = {k: v for k, v in params.items() if v is not None}
        return AsyncRequestsPaginator(lambda: self._page(params, extra_headers, timeout))

    async def _page(
        self, params: PageParams, extra_headers: Headers | None, timeout: Timeout | NotGiven
    ) -> AsyncRequestsPage:
        page = await self._client.request(
            AsyncRequestsPage, _list_options(params, extra_headers, timeout)
        )
        page._bind(lambda p: self._page(p, extra_headers, timeout), params)
        return page

    async def wait(
        self,
        id: str | LipsyncRequest,
        *,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> LipsyncRequest:
        """Poll until the request is ``completed``, ``failed`` or ``cancelled`` and return it.

        See ``Requests.wait``.
        """
        request_id = _id_of(id)
        clock = _WaitClock(timeout, poll_interval)
        while True:
            request = await self.retrieve(request_id)
            if request.is_finished:
                return request
            await _base_client._async_sleep(clock.next_sleep(request_id, request))

    async def download(
        self,
        id_or_request: str | LipsyncRequest,
        path: str | os.PathLike[str],
        *,
        on_progress: ProgressCallback | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Path:
        """Save a completed request's output MP4 to ``path``. See ``Requests.download``."""
        request = (
            id_or_request
            if isinstance(id_or_request, LipsyncRequest)
            else await self.retrieve(id_or_request)
        )
        dest = _destination(path, request)
        try:
            await self._client._download(
                _output_url(request), dest, on_progress=on_progress, timeout=timeout
            )
        except APIStatusError as err:
            if not (
                isinstance(id_or_request, LipsyncRequest)
                and err.status_code in _EXPIRED_URL_STATUSES
            ):
                raise
            fresh = await self.retrieve(request.id)
            await self._client._download(
                _output_url(fresh), dest, on_progress=on_progress, timeout=timeout
            )
        return dest
