"""The HTTP machinery shared by ``Chamelaion`` and ``AsyncChamelaion``.

``BaseClient`` holds everything that does no I/O: configuration, URL and header building, the
retry policy, error mapping, response parsing and the bookkeeping of a resumable download.
``SyncAPIClient`` and ``AsyncAPIClient`` are thin twins that only send, sleep and write.

Retry policy: connection errors, timeouts, 408, 429 and 5xx are retried up to ``max_retries`` times
(default 2) with exponential backoff (0.5 s, 1 s, 2 s ... capped at 8 s, minus up to 25 % jitter),
or after exactly ``Retry-After`` seconds when the server sends it (up to 60 s; a longer wait is not
retried, the error is raised). Other 4xx are never retried: 409 included, which this service answers
only to an `Idempotency-Key` reused with another body, a conflict no retry resolves. Uploads are
re-sent from the start; an upload from a stream that cannot seek is not retried. Creates carry an
`Idempotency-Key` (one per call, the same on each of its attempts), so retrying a create whose
response was lost returns the job it made rather than making another.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Generic, TypeVar, cast

import httpx
import pydantic

from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    ChamelaionError,
    make_status_error,
)
from ._files import FileTypes, HttpxFile, ThreadedAsyncStream, is_rewindable, open_files
from ._types import NOT_GIVEN, Headers, NotGiven, Timeout
from ._version import __version__

log = logging.getLogger("chamelaion.sdk")

DEFAULT_BASE_URL = "https://api.chamelaion.com/api"
DEFAULT_TIMEOUT = httpx.Timeout(timeout=120.0, connect=10.0)
DEFAULT_MAX_RETRIES = 2
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0
RETRY_STATUSES = frozenset({408, 429})
USER_AGENT = f"chamelaion-python/{__version__}"

ProgressCallback = Callable[[int, int | None], None]
"""``on_progress(bytes_written, total_bytes_or_None)``, called after each chunk is written."""

_ModelT = TypeVar("_ModelT", bound=pydantic.BaseModel)
_HttpxClientT = TypeVar("_HttpxClientT", httpx.Client, httpx.AsyncClient)


def _sleep(seconds: float) -> None:  # tests replace this
    time.sleep(seconds)


async def _async_sleep(seconds: float) -> None:  # tests replace this
    import anyio  # httpx depends on anyio; works under asyncio and trio

    await anyio.sleep(seconds)


def _jitter() -> float:
    """A fraction in [0, 1) of the backoff to take off; tests replace this."""
    return random.random()


@dataclass
class RequestOptions:
    """One API call, as the resources describe it."""

    method: str
    path: str
    params: Mapping[str, object] | None = None
    json_data: object | None = None
    data: Mapping[str, str] | None = None
    files: Mapping[str, FileTypes] | None = None
    headers: Headers | None = None
    timeout: Timeout | NotGiven = NOT_GIVEN
    max_retries: int | NotGiven = NOT_GIVEN
    # Sent as `Idempotency-Key` on every attempt of this call, so a retry of a create that did
    # reach the server gets its response back instead of making a second job.
    idempotency_key: str | None = None


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(float(value) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _clean_params(params: Mapping[str, object] | None) -> dict[str, str] | None:
    if not params:
        return None
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        else:
            out[key] = str(value)
    return out


@dataclass
class _Attempt:
    """Retry bookkeeping for one call."""

    max_retries: int
    can_resend: bool = True
    retries_taken: int = 0

    @property
    def retries_left(self) -> int:
        return self.max_retries - self.retries_taken if self.can_resend else 0


class _Download:
    """The state of one download: bytes written so far, resume headers, Content-Range checks."""

    def __init__(self, fileobj: IO[bytes], on_progress: ProgressCallback | None) -> None:
        self.file = fileobj
        self.on_progress = on_progress
        self.written = 0
        self.total: int | None = None

    def request_headers(self) -> dict[str, str]:
        headers = {"Accept": "*/*", "Accept-Encoding": "identity", "User-Agent": USER_AGENT}
        if self.written:
            headers["Range"] = f"bytes={self.written}-"
        return headers

    def begin(self, response: httpx.Response) -> bool:
        """Inspect a 2xx response; True if the body continues what was written (a 206 resume),
        False if it starts over (the partial file is truncated)."""
        if response.status_code == 206 and self.written:
            start, total = _parse_content_range(response.headers.get("content-range"))
            if start == self.written:
                self.total = total
                return True
            self._restart()  # the next attempt asks for the whole file
            raise httpx.RemoteProtocolError(
                f"range response starts at {start}, expected {self.written}",
                request=response.request,
            )
        self._restart()
        length = response.headers.get("content-length")
        self.total = int(length) if length and length.isdigit() else None
        return False

    def _restart(self) -> None:
        self.file.seek(0)
        self.file.truncate()
        self.written = 0

    def wrote(self, n: int) -> None:
        self.written += n
        if self.on_progress is not None:
            self.on_progress(self.written, self.total)

    def check_complete(self, request: httpx.Request) -> None:
        if self.total is not None and self.written != self.total:
            raise httpx.RemoteProtocolError(
                f"download ended after {self.written} of {self.total} bytes", request=request
            )


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    # "bytes 100-999/1000" or "bytes 100-999/*"
    if not value or not value.startswith("bytes "):
        return None, None
    try:
        span, _, total = value[6:].partition("/")
        start = int(span.split("-", 1)[0])
        return start, (int(total) if total.isdigit() else None)
    except ValueError:
        return None, None


@contextmanager
def _temp_file_for(dest: Path) -> Iterator[IO[bytes]]:
    """A temp file next to ``dest``, renamed onto it on success and deleted on any failure."""
    tmp = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, renamed or removed
        dir=dest.parent, prefix=f".{dest.name}.", suffix=".part", delete=False
    )
    try:
        yield cast(IO[bytes], tmp)
        tmp.flush()
        os.fsync(tmp.fileno())
        tmp.close()
        os.replace(tmp.name, dest)
    except BaseException:
        tmp.close()
        Path(tmp.name).unlink(missing_ok=True)
        raise


class BaseClient(Generic[_HttpxClientT]):
    _client: _HttpxClientT
    _owns_client: bool

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | httpx.URL,
        timeout: Timeout,
        max_retries: int,
        default_headers: Headers | None,
    ) -> None:
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
            raise ValueError("max_retries must be a non-negative integer")
        url = httpx.URL(str(base_url))
        if url.scheme not in ("http", "https") or not url.host:
            raise ChamelaionError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
        self.api_key = api_key
        self.base_url = url
        self.timeout = timeout
        self.max_retries = max_retries
        self._default_headers: dict[str, str] = dict(default_headers or {})

    # -- building requests ------------------------------------------------------------------

    def _url(self, path: str) -> httpx.URL:
        base = str(self.base_url).rstrip("/")
        return httpx.URL(base + "/" + path.lstrip("/"))

    def _headers(self, options: RequestOptions, retries_taken: int) -> dict[str, str]:
        headers = {
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            **self._default_headers,
            "x-api-key": self.api_key,
            **dict(options.headers or {}),
        }
        if options.idempotency_key is not None:
            headers["Idempotency-Key"] = options.idempotency_key
        if retries_taken:
            headers["x-chamelaion-retry-count"] = str(retries_taken)
        return headers

    def _timeout(self, timeout: Timeout | NotGiven) -> Timeout:
        return self.timeout if isinstance(timeout, NotGiven) else timeout

    def _max_retries(self, options: RequestOptions) -> int:
        if isinstance(options.max_retries, NotGiven):
            return self.max_retries
        return options.max_retries

    def _build_request(
        self,
        options: RequestOptions,
        files: list[tuple[str, HttpxFile]] | None,
        retries_taken: int,
    ) -> httpx.Request:
        kwargs: dict[str, Any] = {}
        if options.json_data is not None:
            kwargs["json"] = options.json_data
        if files is not None:
            kwargs["files"] = files
            kwargs["data"] = dict(options.data or {})
        elif options.data is not None:
            kwargs["data"] = dict(options.data)
        return self._client.build_request(
            options.method,
            self._url(options.path),
            params=_clean_params(options.params),
            headers=self._headers(options, retries_taken),
            timeout=self._timeout(options.timeout),
            **kwargs,
        )

    @staticmethod
    @contextmanager
    def _files_for_attempt(
        options: RequestOptions,
    ) -> Iterator[list[tuple[str, HttpxFile]] | None]:
        if options.files is None:
            yield None
            return
        with open_files(options.files) as files:
            yield files

    @staticmethod
    def _can_resend(options: RequestOptions) -> bool:
        return options.files is None or all(is_rewindable(f) for f in options.files.values())

    # -- retry policy -----------------------------------------------------------------------

    @staticmethod
    def _should_retry_status(status_code: int) -> bool:
        return status_code in RETRY_STATUSES or status_code >= 500

    @staticmethod
    def _should_retry_exception(err: httpx.RequestError) -> bool:
        # A wrong scheme, a proxy setup or a redirect loop will not get better by trying again.
        return isinstance(err, httpx.TransportError) and not isinstance(
            err, (httpx.UnsupportedProtocol, httpx.ProxyError)
        )

    @staticmethod
    def _retry_delay(retries_taken: int, headers: httpx.Headers | None) -> float | None:
        """Seconds to wait before the next attempt, or None if the server asks for a wait
        longer than we are willing to block for."""
        if headers is not None:
            retry_after = parse_retry_after(headers)
            if retry_after is not None:
                return retry_after if retry_after <= MAX_RETRY_AFTER else None
        delay = min(INITIAL_RETRY_DELAY * (2.0**retries_taken), MAX_RETRY_DELAY)
        return delay * (1.0 - 0.25 * _jitter())

    @staticmethod
    def _connection_error(request: httpx.Request, err: httpx.RequestError) -> APIConnectionError:
        if isinstance(err, httpx.TimeoutException):
            return APITimeoutError(request)
        detail = str(err) or type(err).__name__
        return APIConnectionError(request=request, message=f"connection error: {detail}")

    # -- responses ----------------------------------------------------------------------------

    @staticmethod
    def _process_response(cast_to: type[_ModelT], response: httpx.Response) -> _ModelT:
        try:
            body = response.json()
        except ValueError as err:
            raise APIResponseValidationError(
                response, response.text, message="the API returned a body that is not JSON"
            ) from err
        try:
            return cast_to.model_validate(body)
        except pydantic.ValidationError as err:
            raise APIResponseValidationError(
                response,
                body,
                message=f"the API returned a body that is not a valid {cast_to.__name__}: {err}",
            ) from err

    def _download_url(self, output_url: str) -> httpx.URL:
        url = httpx.URL(output_url)
        if not url.is_absolute_url:
            url = self.base_url.join(output_url)
        return url

    def _after_attempt(
        self, request: httpx.Request, response: httpx.Response | None, attempt: _Attempt
    ) -> float | None:
        """What to do after one attempt: ``None`` if ``response`` is the answer (2xx), else the
        seconds to sleep before retrying. Raises the final error otherwise. ``response`` is
        ``None`` when the attempt failed with a retryable connection error. A streamed
        response must have been read before this may raise."""
        if response is None:
            return self._retry_delay(attempt.retries_taken, None)
        if response.is_success:
            return None
        if attempt.retries_left > 0 and self._should_retry_status(response.status_code):
            delay = self._retry_delay(attempt.retries_taken, response.headers)
            if delay is not None:
                log.info(
                    "retrying %s %s in %.2fs after HTTP %d",
                    request.method,
                    request.url,
                    delay,
                    response.status_code,
                )
                return delay
        raise make_status_error(response)

    def _check_retryable_error(
        self, request: httpx.Request, err: httpx.RequestError, attempt: _Attempt
    ) -> None:
        """Raise the SDK's error for a failed attempt unless it will be retried."""
        if attempt.retries_left > 0 and self._should_retry_exception(err):
            log.info("retrying %s %s after %s", request.method, request.url, type(err).__name__)
            return
        raise self._connection_error(request, err) from err


class SyncAPIClient(BaseClient[httpx.Client]):
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | httpx.URL,
        timeout: Timeout,
        max_retries: int,
        default_headers: Headers | None,
        http_client: httpx.Client | None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
        )
        if http_client is not None and not isinstance(http_client, httpx.Client):
            raise TypeError("http_client must be an httpx.Client (use AsyncChamelaion for async)")
        self._owns_client = http_client is None
        self._client = http_client or httpx.Client(timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        """Close the connection pool (only if this client created it)."""
        if self._owns_client:
            self._client.close()

    @property
    def is_closed(self) -> bool:
        return self._client.is_closed

    def _send(self, options: RequestOptions) -> httpx.Response:
        attempt = _Attempt(self._max_retries(options), self._can_resend(options))
        while True:
            response: httpx.Response | None = None
            with self._files_for_attempt(options) as files:
                request = self._build_request(options, files, attempt.retries_taken)
                try:
                    response = self._client.send(request)
                except httpx.RequestError as err:
                    self._check_retryable_error(request, err, attempt)
            delay = self._after_attempt(request, response, attempt)
            if delay is None and response is not None:
                return response
            if response is not None:
                response.close()
            _sleep(delay or 0.0)
            attempt.retries_taken += 1

    def request(self, cast_to: type[_ModelT], options: RequestOptions) -> _ModelT:
        return self._process_response(cast_to, self._send(options))

    def _download(
        self,
        output_url: str,
        dest: Path,
        *,
        on_progress: ProgressCallback | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
    ) -> None:
        """Stream ``output_url`` into ``dest`` through a temp file next to it; a retry after a
        broken transfer resumes with ``Range``. ``dest`` is left untouched on failure."""
        url = self._download_url(output_url)
        attempt = _Attempt(self.max_retries if isinstance(max_retries, NotGiven) else max_retries)
        with _temp_file_for(dest) as fileobj:
            state = _Download(fileobj, on_progress)
            while True:
                request = self._client.build_request(
                    "GET", url, headers=state.request_headers(), timeout=self._timeout(timeout)
                )
                response: httpx.Response | None = None
                try:
                    response = self._client.send(request, stream=True, follow_redirects=True)
                    if response.is_success:
                        state.begin(response)
                        for chunk in response.iter_bytes():
                            fileobj.write(chunk)
                            state.wrote(len(chunk))
                        state.check_complete(request)
                        return
                    response.read()  # an error body: small, and needed for the error message
                except httpx.RequestError as err:
                    self._check_retryable_error(request, err, attempt)
                    response = None
                finally:
                    if response is not None:
                        response.close()
                _sleep(self._after_attempt(request, response, attempt) or 0.0)
                attempt.retries_taken += 1


class AsyncAPIClient(BaseClient[httpx.AsyncClient]):
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | httpx.URL,
        timeout: Timeout,
        max_retries: int,
        default_headers: Headers | None,
        http_client: httpx.AsyncClient | None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
        )
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise TypeError("http_client must be an httpx.AsyncClient (use Chamelaion for sync)")
        self._owns_client = http_client is None
        self._client = http_client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    async def close(self) -> None:
        """Close the connection pool (only if this client created it)."""
        if self._owns_client:
            await self._client.aclose()

    @property
    def is_closed(self) -> bool:
        return self._client.is_closed

    def _build_request(
        self,
        options: RequestOptions,
        files: list[tuple[str, HttpxFile]] | None,
        retries_taken: int,
    ) -> httpx.Request:
        request = super()._build_request(options, files, retries_taken)
        if files is not None:
            # Read the files in a worker thread, chunk by chunk, not on the event loop.
            request.stream = ThreadedAsyncStream(cast(Any, request.stream))
        return request

    async def _send(self, options: RequestOptions) -> httpx.Response:
        attempt = _Attempt(self._max_retries(options), self._can_resend(options))
        while True:
            response: httpx.Response | None = None
            with self._files_for_attempt(options) as files:
                request = self._build_request(options, files, attempt.retries_taken)
                try:
                    response = await self._client.send(request)
                except httpx.RequestError as err:
                    self._check_retryable_error(request, err, attempt)
            delay = self._after_attempt(request, response, attempt)
            if delay is None and response is not None:
                return response
            if response is not None:
                await response.aclose()
            await _async_sleep(delay or 0.0)
            attempt.retries_taken += 1

    async def request(self, cast_to: type[_ModelT], options: RequestOptions) -> _ModelT:
        return self._process_response(cast_to, await self._send(options))

    async def _download(
        self,
        output_url: str,
        dest: Path,
        *,
        on_progress: ProgressCallback | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
    ) -> None:
        """Stream ``output_url`` into ``dest`` through a temp file next to it; a retry after a
        broken transfer resumes with ``Range``. ``dest`` is left untouched on failure."""
        import anyio.to_thread

        url = self._download_url(output_url)
        attempt = _Attempt(self.max_retries if isinstance(max_retries, NotGiven) else max_retries)
        with _temp_file_for(dest) as fileobj:
            state = _Download(fileobj, on_progress)
            while True:
                request = self._client.build_request(
                    "GET", url, headers=state.request_headers(), timeout=self._timeout(timeout)
                )
                response: httpx.Response | None = None
                try:
                    response = await self._client.send(request, stream=True, follow_redirects=True)
                    if response.is_success:
                        state.begin(response)
                        async for chunk in response.aiter_bytes():
                            await anyio.to_thread.run_sync(fileobj.write, chunk)
                            state.wrote(len(chunk))
                        state.check_complete(request)
                        return
                    await response.aread()  # an error body: small, needed for the message
                except httpx.RequestError as err:
                    self._check_retryable_error(request, err, attempt)
                    response = None
                finally:
                    if response is not None:
                        await response.aclose()
                await _async_sleep(self._after_attempt(request, response, attempt) or 0.0)
                attempt.retries_taken += 1
