"""Every error the API returns is `{"error": "<message>"}`; nothing else ever leaves the server.

The messages are the contract (seed + issue 3): clients match on them, so they live here, once.
FastAPI's own handlers (422 validation bodies, `{"detail": ...}`) are replaced so their default
bodies can never leak through.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as db_errors
from starlette.exceptions import HTTPException as StarletteHTTPException

from chamelaion.engine.options import MAX_TRANSCRIPT_CHARS

log = logging.getLogger("chamelaion.server")

# What a 503 asks the client to wait before trying again (the SDKs honour it).
RETRY_AFTER_SECONDS = 5

INVALID_BODY = "invalid request body"
NOT_JSON = "content-type must be application/json"
NOT_MULTIPART = "content-type must be multipart/form-data"
ONE_VIDEO = "expected exactly one video input"
ONE_AUDIO = "expected exactly one audio input"
BAD_INPUT_TYPE = 'input type must be "video" or "audio"'
MISSING_AUTH = "missing authorization header"
BAD_AUTH_FORMAT = "invalid authorization format"
MISSING_TOKEN = "missing token"
INVALID_TOKEN = "invalid token"
REVOKED = "unauthorized"
TOKEN_LIMIT = "token limit reached"
RATE_LIMITED = "rate limit exceeded"
NOT_FOUND = "not found"
FILE_TOO_LARGE = "file too large"
UNSUPPORTED_MODEL = "unsupported model"
INVALID_TRANSCRIPT_LANGUAGE = (
    'invalid transcript_language: give a BCP-47 language tag (e.g. "en", "fr-FR", "pt-BR")'
)
INVALID_SPEAKER = (
    'invalid speaker: give {"frame": a source frame index from 0, "x": 0 to 1, "y": 0 to 1}'
)
SPEAKER_BEYOND_VIDEO = "speaker frame is beyond the video's last frame"
TRANSCRIPT_TOO_LONG = f"transcript too long: at most {MAX_TRANSCRIPT_CHARS} characters"
INVALID_VIDEO = "invalid video file"
INVALID_AUDIO = "invalid audio file"
STILL_IMAGE = "video is a still image"
VIDEO_TOO_LARGE = "video resolution too large"
VIDEO_TOO_LONG = "video too long"
AUDIO_TOO_LONG = "audio too long"
INVALID_REFERENCE_ID = "invalid reference_id"
URL_NOT_ALLOWED = "url not allowed"
FETCH_FAILED = "failed to fetch {kind}: {reason}"  # as a URL job's error_message says it
BODY_TOO_LARGE = "request body too large"
INVALID_IDEMPOTENCY_KEY = "invalid idempotency key"
IDEMPOTENCY_KEY_REUSED = "idempotency key already used with a different request"
INVALID_SIGNATURE = "invalid signature"
LINK_EXPIRED = "link expired"
RANGE_NOT_SATISFIABLE = "range not satisfiable"
METHOD_NOT_ALLOWED = "method not allowed"
NOT_READY = "database unavailable"
QUEUE_UNAVAILABLE = "queue unavailable"
INSUFFICIENT_STORAGE = "insufficient storage"
NO_WEBHOOK_SECRET = (
    'webhook_url needs a webhook secret: create one with "chamelaion keys webhook-secret"'
)
INTERNAL = "internal error"


class ApiError(Exception):
    """Raised anywhere in a request; becomes `{"error": message}` with `status`."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def error_response(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


_STARLETTE_MESSAGES = {404: NOT_FOUND, 405: METHOD_NOT_ALLOWED, 413: FILE_TOO_LARGE}


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.headers)


async def _validation_error(_request: Request, _exc: Exception) -> JSONResponse:
    return error_response(400, INVALID_BODY)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    message = _STARLETTE_MESSAGES.get(status, INVALID_BODY if status < 500 else INTERNAL)
    return error_response(status, message, exc.headers)


def _out_of_space(exc: Exception) -> bool:
    return "database or disk is full" in str(exc)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """The database could not be reached or used (PostgreSQL down or restarting, a connection
    cut, SQLite locked past its busy timeout or unwritable): a 503 the client may retry after
    Retry-After, never a 500. Nothing was half-done: every write is one transaction."""
    if _out_of_space(exc):
        log.error("database write failed on %s %s: disk full", request.method, request.url.path)
        return error_response(507, INSUFFICIENT_STORAGE)
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return error_response(503, NOT_READY, {"Retry-After": str(RETRY_AFTER_SECONDS)})


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, INTERNAL)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Connection-level and lock failures only: a constraint violation or a programming error
    # stays a 500 (a bug to fix, not something to wait out).
    for unavailable in (
        db_errors.OperationalError,
        db_errors.InterfaceError,
        db_errors.DisconnectionError,
        db_errors.TimeoutError,
    ):
        app.add_exception_handler(unavailable, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
