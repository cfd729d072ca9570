"""The SDK's exceptions.

::

    ChamelaionError
    ├── APIError
    │   ├── APIStatusError                  (any error status: .status_code, .message, .response)
    │   │   ├── BadRequestError             400
    │   │   ├── AuthenticationError         401
    │   │   ├── TokenLimitError             402
    │   │   ├── PermissionDeniedError       403
    │   │   ├── NotFoundError               404
    │   │   ├── UnsupportedMediaTypeError   415
    │   │   ├── RateLimitError              429
    │   │   └── InternalServerError         >= 500
    │   ├── APIConnectionError              (the server could not be reached)
    │   │   └── APITimeoutError             (the request timed out)
    │   └── APIResponseValidationError      (a 2xx response that is not what the API documents)
    └── WaitTimeoutError                    (requests.wait() gave up; also a TimeoutError)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from .types.lipsync_request import LipsyncRequest

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ChamelaionError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "TokenLimitError",
    "UnsupportedMediaTypeError",
    "WaitTimeoutError",
]


class ChamelaionError(Exception):
    """Base class of every error the SDK raises on purpose."""


class APIError(ChamelaionError):
    """An error talking to the API. ``request`` is the HTTP request that failed."""

    message: str
    request: httpx.Request
    body: object | None
    """The decoded JSON body of the response, or ``None`` when there was none."""

    def __init__(self, message: str, request: httpx.Request, *, body: object | None) -> None:
        super().__init__(message)
        self.message = message
        self.request = request
        self.body = body


class APIResponseValidationError(APIError):
    """A successful response whose body does not have the documented shape."""

    response: httpx.Response
    status_code: int

    def __init__(
        self, response: httpx.Response, body: object | None, *, message: str | None = None
    ) -> None:
        super().__init__(
            message or "the API returned a response that does not match the expected schema",
            response.request,
            body=body,
        )
        self.response = response
        self.status_code = response.status_code


class APIStatusError(APIError):
    """The API answered with a 4xx or 5xx status.

    ``message`` is the server's ``error`` string (e.g. ``"invalid token"``); ``str(err)`` adds the
    status code.
    """

    response: httpx.Response
    status_code: int

    def __init__(self, message: str, *, response: httpx.Response, body: object | None) -> None:
        super().__init__(message, response.request, body=body)
        self.response = response
        self.status_code = response.status_code

    def __str__(self) -> str:
        return f"Error code {self.status_code}: {self.message}"


class BadRequestError(APIStatusError):
    """400: the request was malformed (``invalid request body``, ``unsupported model``, ...)."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, malformed, unknown or revoked."""


class TokenLimitError(APIStatusError):
    """402: the API key's request quota is used up (``token limit reached``)."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this."""


class NotFoundError(APIStatusError):
    """404: no such request (or it belongs to another account)."""


class UnsupportedMediaTypeError(APIStatusError):
    """415: the body was not JSON where JSON is required."""


class RateLimitError(APIStatusError):
    """429: too many requests (``rate limit exceeded``); retried automatically first."""


class InternalServerError(APIStatusError):
    """5xx: the server failed; retried automatically first."""


class APIConnectionError(APIError):
    """The API could not be reached, or the connection broke before a response arrived."""

    def __init__(self, *, request: httpx.Request, message: str = "connection error") -> None:
        super().__init__(message, request, body=None)


class APITimeoutError(APIConnectionError):
    """The request timed out (after all retries)."""

    def __init__(self, request: httpx.Request) -> None:
        super().__init__(request=request, message="request timed out")


class WaitTimeoutError(ChamelaionError, TimeoutError):
    """``requests.wait()`` ran out of time before the request finished.

    ``last`` is the request as last seen (its ``status`` is still ``queued`` or ``processing``).
    """

    request_id: str
    timeout: float
    last: LipsyncRequest

    def __init__(self, request_id: str, timeout: float, last: LipsyncRequest) -> None:
        super().__init__(
            f"request {request_id} did not finish within {timeout:g}s (status: {last.status})"
        )
        self.request_id = request_id
        self.timeout = timeout
        self.last = last


class WebhookVerificationError(ChamelaionError):
    """A webhook delivery's signature is missing, malformed, wrong or too old."""


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: TokenLimitError,
    403: PermissionDeniedError,
    404: NotFoundError,
    415: UnsupportedMediaTypeError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The exception class for an error status."""
    if status_code >= 500:
        return InternalServerError
    return _STATUS_ERRORS.get(status_code, APIStatusError)


def make_status_error(response: httpx.Response) -> APIStatusError:
    """Build the exception for an error response; its body must already be read."""
    body: Any
    try:
        body = response.json()
    except ValueError:
        body = None
    message: str | None = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        message = body["error"]
    if message is None:
        text = response.text.strip()
        message = text[:500] if text else (response.reason_phrase or "HTTP error")
        if body is None and text:
            body = text
    cls = status_error_class(response.status_code)
    return cls(message, response=response, body=body)
