"""Reading lip-sync requests back: one by id (or reference_id), or a page of them; and what
the Studio shows of a completed one: its mouth track and a link to its source video.

These are the hot paths, so they are async and run their (indexed, read-only) Core queries
through `AppState.read`: on the event loop with SQLite, on the thread pool with a database
across a network; with no ORM object construction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Connection, bindparam, delete, func, select

from chamelaion.server import errors
from chamelaion.server.auth import Caller, read_caller
from chamelaion.server.errors import ApiError
from chamelaion.server.models import JobStatus, LipsyncJob
from chamelaion.server.presenters import PUBLIC_COLUMNS, JobView, present_job, public_base_url
from chamelaion.server.queue.hooks import job_store
from chamelaion.server.routes.common import AUTHENTICATED, error_responses
from chamelaion.server.schemas import (
    MAX_REFERENCE_ID,
    LipsyncRequest,
    LipsyncRequestDeleted,
    MouthTrack,
    RequestListResponse,
    SourceLink,
)
from chamelaion.server.state import AppState, app_state
from chamelaion.server.storage import Storage

router = APIRouter(tags=["requests"])

# Statements built once (building one costs more than running it); values are bound per call.
_mine = LipsyncJob.account_id == bindparam("account_id")
_BY_ID = select(*PUBLIC_COLUMNS).where(LipsyncJob.id == bindparam("id"), _mine)
_NEWEST_BY_REFERENCE = (
    select(*PUBLIC_COLUMNS)
    .where(_mine, LipsyncJob.reference_id == bindparam("reference_id"))
    .order_by(LipsyncJob.created_at.desc(), LipsyncJob.id.desc())
    .limit(1)
)


_same_reference = LipsyncJob.reference_id == bindparam("reference_id")
_COUNT = select(func.count()).select_from(LipsyncJob)
_ALL, _BY_REFERENCE = (_mine,), (_mine, _same_reference)
# Each page carries the total as a column (one statement, one round trip instead of two); only
# a page past the end, which has no rows to carry it, needs the separate count.
_PAGES = {
    filtered: (
        _COUNT.where(*conditions),
        select(*PUBLIC_COLUMNS, _COUNT.where(*conditions).scalar_subquery().label("total"))
        .where(*conditions)
        .order_by(LipsyncJob.created_at, LipsyncJob.id)
        .limit(bindparam("limit"))
        .offset(bindparam("offset")),
    )
    for filtered, conditions in ((False, _ALL), (True, _BY_REFERENCE))
}
_COMPLETED_BY_ID = select(LipsyncJob.id).where(
    LipsyncJob.id == bindparam("id"), _mine, LipsyncJob.status == JobStatus.COMPLETED.value
)


def _may_be_stored(reference_id: str) -> bool:
    """False for a reference_id no request can have: one with a NUL (refused at creation, and
    PostgreSQL cannot hold one, nor compare a column with one: it would answer an error)."""
    return "\x00" not in reference_id


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


# These two take a request id only (a UUID), and come before the route below, whose `path` id
# (a reference_id may hold a "/") would otherwise take them: only a reference_id of the form
# "<uuid>/mouth" or "<uuid>/source" must be looked up by its request's id instead.
@router.get(
    "/lipsync/requests/{id:uuid}/mouth",
    response_model=MouthTrack,
    summary="Get the mouth track of a completed request",
    description="Per output frame, the mouth opening the engine rendered, and the output's "
    "sound as peaks, on one time axis: what the Studio plots under the videos. `not found` "
    "unless the request completed with a track (requests completed before tracks were kept "
    "have none).",
    responses=error_responses(*AUTHENTICATED, 404),
)
async def mouth(
    request: Request, caller: Annotated[Caller, Depends(read_caller)], id: uuid.UUID
) -> Response:
    path = await _kept_file(request, caller, id, Storage.mouth_path)
    try:
        track = await anyio.Path(path).read_bytes()
    except FileNotFoundError:  # gone since it was looked at
        raise ApiError(404, errors.NOT_FOUND) from None
    return Response(track, media_type="application/json")


@router.get(
    "/lipsync/requests/{id:uuid}/source",
    response_model=SourceLink,
    summary="Get a link to a completed request's source video",
    description="A signed, expiring URL (like `output_url`) of the video the request was made "
    "from, kept once it completed, to compare the output with. `not found` unless the request "
    "completed with its source kept.",
    responses=error_responses(*AUTHENTICATED, 404),
)
async def source(
    request: Request, caller: Annotated[Caller, Depends(read_caller)], id: uuid.UUID
) -> JSONResponse:
    await _kept_file(request, caller, id, Storage.source_path)
    state = app_state(request)
    url = state.signer.source_url(public_base_url(request, state), str(id))
    return JSONResponse({"url": url})


async def _kept_file(
    request: Request, caller: Caller, id: uuid.UUID, path_of: Callable[[Storage, str], Path]
) -> Path:
    """The file the worker kept for this request, if the request is the caller's and completed
    and the file is there; else `not found`."""
    state = app_state(request)
    completed = await state.read(_is_completed, str(id), caller.account_id)
    path = path_of(Storage(state.settings), str(id))
    if not completed or not await anyio.Path(path).is_file():
        raise ApiError(404, errors.NOT_FOUND)
    return path


def _is_completed(connection: Connection, id: str, account_id: str) -> bool:
    values = {"id": id, "account_id": account_id}
    return connection.execute(_COMPLETED_BY_ID, values).scalar() is not None


def _page(
    connection: Connection, filtered: bool, values: dict[str, Any], limit: int, offset: int
) -> tuple[Sequence[Any], int]:
    """A page of rows (PUBLIC_COLUMNS and the total) and the total."""
    count, page = _PAGES[filtered]
    rows = connection.execute(page, {**values, "limit": limit, "offset": offset}).all()
    total: int = rows[0].total if rows else connection.execute(count, values).scalar_one()
    return rows, total


def _find(connection: Connection, id: str, account_id: str) -> JobView:
    """The caller's request by UUID, else the newest with that reference_id; else 404."""
    row: JobView | None = None
    if _is_uuid(id):
        row = connection.execute(_BY_ID, {"id": id, "account_id": account_id}).first()
    if row is None and _may_be_stored(id):
        row = connection.execute(
            _NEWEST_BY_REFERENCE, {"reference_id": id, "account_id": account_id}
        ).first()
    if row is None:
        raise ApiError(404, errors.NOT_FOUND)
    return row


def _cancel(state: AppState, id: str, account_id: str) -> JobView:
    """Cancel the request if it is still queued or processing; the request as it is after."""
    with state.engine.connect() as connection:
        request_id = _find(connection, id, account_id).id
    if job_store(state.sessions).cancel(request_id) == JobStatus.QUEUED.value:
        Storage(state.settings).discard_inputs(request_id)  # no worker ever saw them
    # (a processing job's worker stops at its next heartbeat and frees its files itself)
    with state.engine.connect() as connection:
        return _find(connection, request_id, account_id)


def _delete(state: AppState, id: str, account_id: str) -> str:
    """Cancel the request if it runs, then remove its row (and the webhook deliveries it is
    owed, by cascade), its inputs and its output."""
    with state.engine.connect() as connection:
        request_id: str = _find(connection, id, account_id).id
    job_store(state.sessions).cancel(request_id)
    with state.sessions() as session:
        session.execute(
            delete(LipsyncJob).where(
                LipsyncJob.id == request_id, LipsyncJob.account_id == account_id
            )
        )
        session.commit()
    storage = Storage(state.settings)
    storage.discard_inputs(request_id)
    storage.discard_output(request_id)
    return request_id


@router.post(
    "/lipsync/requests/{id:path}/cancel",
    response_model=LipsyncRequest,
    response_model_exclude_none=True,
    summary="Cancel lip sync request",
    description="Stops a `queued` or `processing` request: its status becomes `cancelled` at "
    "once, and a worker running it stops within seconds and frees its files. A request that "
    "has already finished is returned unchanged. By request UUID or `reference_id`.",
    responses=error_responses(*AUTHENTICATED, 404),
)
async def cancel(
    request: Request,
    caller: Annotated[Caller, Depends(read_caller)],
    id: str,
) -> JSONResponse:
    state = app_state(request)
    row = await run_in_threadpool(_cancel, state, id, caller.account_id)
    return JSONResponse(present_job(row, public_base_url(request, state), state.signer))


@router.delete(
    "/lipsync/requests/{id:path}",
    response_model=LipsyncRequestDeleted,
    summary="Delete lip sync request",
    description="Removes the request, its inputs and its output for good (a running one is "
    "cancelled first); it is `not found` afterwards. By request UUID or `reference_id`.",
    responses=error_responses(*AUTHENTICATED, 404),
)
async def delete_request(
    request: Request,
    caller: Annotated[Caller, Depends(read_caller)],
    id: str,
) -> JSONResponse:
    request_id = await run_in_threadpool(_delete, app_state(request), id, caller.account_id)
    return JSONResponse({"id": request_id, "deleted": True})


@router.get(
    "/lipsync/requests/{id:path}",
    response_model=LipsyncRequest,
    response_model_exclude_none=True,
    summary="Get lip sync request",
    description="Returns a single lip sync request by request UUID or `reference_id` "
    "(the newest request with that reference_id). Other accounts' requests are `not found`.",
    responses=error_responses(*AUTHENTICATED, 404),
)
async def retrieve(
    request: Request,
    caller: Annotated[Caller, Depends(read_caller)],
    id: str,
) -> JSONResponse:
    state = app_state(request)
    row = await state.read(_find, id, caller.account_id)
    return JSONResponse(present_job(row, public_base_url(request, state), state.signer))


@router.get(
    "/lipsync/requests",
    response_model=RequestListResponse,
    response_model_exclude_none=True,
    summary="List lip sync requests",
    description="Returns a page of the account's lip sync requests, oldest first.",
    responses=error_responses(400, *AUTHENTICATED),
)
async def list_requests(
    request: Request,
    caller: Annotated[Caller, Depends(read_caller)],
    limit: Annotated[int, Query(ge=1, le=100, description="Page size (1-100).")] = 20,
    offset: Annotated[int, Query(ge=0, le=2**62, description="Items to skip.")] = 0,
    reference_id: Annotated[
        str | None,
        Query(min_length=1, max_length=MAX_REFERENCE_ID, description="Exact reference_id."),
    ] = None,
) -> JSONResponse:
    state = app_state(request)
    values = {"account_id": caller.account_id, "reference_id": reference_id}
    rows: Sequence[Any] = ()  # Rows of PUBLIC_COLUMNS and the total
    total = 0
    if reference_id is None or _may_be_stored(reference_id):
        rows, total = await state.read(_page, reference_id is not None, values, limit, offset)
    base_url = public_base_url(request, state)
    return JSONResponse(
        {
            "data": [present_job(row, base_url, state.signer) for row in rows],
            "pagination": {"limit": limit, "offset": offset, "total": total},
        }
    )
