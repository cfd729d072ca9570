"""``Chamelaion`` and ``AsyncChamelaion``: the entry points of the SDK."""

from __future__ import annotations

import os
from types import TracebackType
from typing import TypeVar

import httpx

from ._base_client import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    AsyncAPIClient,
    SyncAPIClient,
)
from ._exceptions import ChamelaionError
from ._types import NOT_GIVEN, Headers, NotGiven, Timeout
from .resources.lipsync import AsyncLipsync, Lipsync

__all__ = ["AsyncChamelaion", "Chamelaion"]

API_KEY_ENV = "CHAMELAION_API_KEY"
BASE_URL_ENV = "CHAMELAION_BASE_URL"

_SyncT = TypeVar("_SyncT", bound="Chamelaion")
_AsyncT = TypeVar("_AsyncT", bound="AsyncChamelaion")


def _resolve_api_key(api_key: str | None) -> str:
    if api_key is None:
        api_key = os.environ.get(API_KEY_ENV)
    if not api_key:
        raise ChamelaionError(
            "no API key: pass api_key=... to the client or set the "
            f"{API_KEY_ENV} environment variable"
        )
    return api_key


def _resolve_base_url(base_url: str | httpx.URL | None) -> str | httpx.URL:
    if base_url is None:
        base_url = os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return base_url


class Chamelaion(SyncAPIClient):
    """A client of the Chamelaion API.

    Args:
      api_key: defaults to the ``CHAMELAION_API_KEY`` environment variable; required.
      base_url: defaults to ``CHAMELAION_BASE_URL``, else ``https://api.chamelaion.com/api``.
        For a self-hosted server: ``http://localhost:8000/api`` (the SDK calls ``/v1/...``
        paths under it).
      timeout: seconds (or an ``httpx.Timeout``) per HTTP request; ``None`` for no timeout.
      max_retries: retries of connection errors, timeouts, 408, 409, 429 and 5xx (default 2).
      default_headers: extra headers for every request.
      http_client: your own ``httpx.Client`` (proxies, transports...); you close it yourself.
    """

    lipsync: Lipsync

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | httpx.URL | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Headers | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(
            api_key=_resolve_api_key(api_key),
            base_url=_resolve_base_url(base_url),
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
            http_client=http_client,
        )
        self.lipsync = Lipsync(self)

    def with_options(
        self,
        *,
        api_key: str | None = None,
        base_url: str | httpx.URL | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        default_headers: Headers | None = None,
    ) -> Chamelaion:
        """A copy of this client with some options changed, sharing its connection pool::

        client.with_options(timeout=5, max_retries=0).lipsync.requests.retrieve(id)

        Closing the copy does not close the shared pool; closing the original does.
        """
        return Chamelaion(
            api_key=api_key or self.api_key,
            base_url=base_url or self.base_url,
            timeout=self.timeout if isinstance(timeout, NotGiven) else timeout,
            max_retries=self.max_retries if max_retries is None else max_retries,
            default_headers={**self._default_headers, **(default_headers or {})},
            http_client=self._client,
        )

    copy = with_options

    def __enter__(self: _SyncT) -> _SyncT:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={str(self.base_url)!r})"


class AsyncChamelaion(AsyncAPIClient):
    """The asyncio (or trio) twin of ``Chamelaion``: the same surface, with ``await``.

    ``http_client``, if given, must be an ``httpx.AsyncClient``.
    """

    lipsync: AsyncLipsync

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | httpx.URL | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Headers | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            api_key=_resolve_api_key(api_key),
            base_url=_resolve_base_url(base_url),
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
            http_client=http_client,
        )
        self.lipsync = AsyncLipsync(self)

    def with_options(
        self,
        *,
        api_key: str | None = None,
        base_url: str | httpx.URL | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        default_headers: Headers | None = None,
    ) -> AsyncChamelaion:
        """A copy of this client with some options changed, sharing its connection pool."""
        return AsyncChamelaion(
            api_key=api_key or self.api_key,
            base_url=base_url or self.base_url,
            timeout=self.timeout if isinstance(timeout, NotGiven) else timeout,
            max_retries=self.max_retries if max_retries is None else max_retries,
            default_headers={**self._default_headers, **(default_headers or {})},
            http_client=self._client,
        )

    copy = with_options

    async def __aenter__(self: _AsyncT) -> _AsyncT:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={str(self.base_url)!r})"
