"""Output and source downloads through signed, expiring URLs, with HTTP Range so players can
seek."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from chamelaion.server import errors
from chamelaion.server.errors import ApiError
from chamelaion.server.models import JobStatus, LipsyncJob
from chamelaion.server.routes.common import error_responses
from chamelaion.server.state import AppState, app_state
from chamelaion.server.storage import (
    RangeNotSatisfiableError,
    SignatureCheck,
    Storage,
    file_chunks,
    parse_range,
)

router = APIRouter(tags=["files"])


@dataclass
class SignedLink:
    """The query of a signed download link."""

    expires: Annotated[int, Query(ge=0, le=2**62)]
    signature: Annotated[str, Query(max_length=128)]


@router.head("/files/{request_id}.mp4", include_in_schema=False)
@router.get(
    "/files/{request_id}.mp4",
    summary="Download an output",
    description="The MP4 of a completed request. Authorised by the URL's signature (as given in "
    "`output_url`), not by an API key. Supports single `Range: bytes=` requests.",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}}},
        206: {
            "description": "The requested byte range.",
            "content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}},
        },
        **error_responses(400, 403, 404, 416, 500),
    },
)
async def download(
    request: Request, request_id: str, link: Annotated[SignedLink, Depends()]
) -> StreamingResponse:
    state = app_state(request)
    _require(state.signer.check(request_id, link.expires, link.signature))
    path = Storage(state.settings).output_path(request_id)
    return await _send_file(request, state, request_id, path, "video/mp4")


@router.head("/files/{request_id}/source", include_in_schema=False)
@router.get(
    "/files/{request_id}/source",
    summary="Download a completed request's source video",
    description="The video the request was made from, as it was uploaded or fetched (kept once "
    "the request completed). Authorised by the URL's signature (as given by "
    "`GET /v1/lipsync/requests/{id}/source`), not by an API key; an output link's signature is "
    "not valid here. Supports single `Range: bytes=` requests.",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        206: {"description": "The requested byte range."},
        **error_responses(400, 403, 404, 416, 500),
    },
)
async def download_source(
    request: Request, request_id: str, link: Annotated[SignedLink, Depends()]
) -> StreamingResponse:
    state = app_state(request)
    _require(state.signer.check_source(request_id, link.expires, link.signature))
    path = Storage(state.settings).source_path(request_id)
    # The container is whatever the user sent: browsers' players sniff it.
    return await _send_file(request, state, request_id, path, "application/octet-stream")


def _require(check: SignatureCheck) -> None:
    if check is SignatureCheck.INVALID:
        raise ApiError(403, errors.INVALID_SIGNATURE)
    if check is SignatureCheck.EXPIRED:
        raise ApiError(403, errors.LINK_EXPIRED)


async def _send_file(
    request: Request, state: AppState, request_id: str, path: Path, media_type: str
) -> StreamingResponse:
    """The file of a completed request, whole or the one byte range asked for."""
    size = await run_in_threadpool(_completed_file_size, state, request_id, path)
    if size is None:
        raise ApiError(404, errors.NOT_FOUND)
    try:
        byte_range = parse_range(request.headers.get("range"), size)
    except RangeNotSatisfiableError:
        raise ApiError(
            416, errors.RANGE_NOT_SATISFIABLE, {"Content-Range": f"bytes */{size}"}
        ) from None
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600"}
    if byte_range is None:
        start, length, status = 0, size, 200
    else:
        start, length, status = byte_range.start, byte_range.length, 206
        headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{size}"
    headers["Content-Length"] = str(length)
    body = file_chunks(path, start, length) if request.method == "GET" else iter(())
    return StreamingResponse(body, status_code=status, media_type=media_type, headers=headers)


def _completed_file_size(state: AppState, request_id: str, path: Path) -> int | None:
    """The file's size if the request completed and the file is there, else None."""
    with state.sessions() as session:
        job = session.get(LipsyncJob, request_id)
        if job is None or job.status != JobStatus.COMPLETED.value:
            return None
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None
