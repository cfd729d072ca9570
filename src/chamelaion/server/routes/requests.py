"""Reading lip-sync requests back: one by id (or reference_id), or a page of them."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from chamelaion.server import errors
from chamelaion.server.auth import Caller, read_caller
from chamelaion.server.errors import ApiError
from chamelaion.server.models import LipsyncJob
from chamelaion.server.presenters import present_job, public_base_url
from chamelaion.server.routes.common import AUTHENTICATED, error_responses
from chamelaion.server.schemas import MAX_REFERENCE_ID, LipsyncRequest, RequestListResponse
from chamelaion.server.state import app_state

router = APIRouter(tags=["requests"])


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


@router.get(
    "/lipsync/requests/{id}",
    response_model=LipsyncRequest,
    response_model_exclude_none=True,
    summary="Get lip sync request",
    description="Returns a single lip sync request by request UUID or `reference_id` "
    "(the newest request with that reference_id). Other accounts' requests are `not found`.",
    responses=error_responses(*AUTHENTICATED, 404),
)
def retrieve(
    request: Request,
    caller: Annotated[Caller, Depends(read_caller)],
    id: str,
) -> JSONResponse:
    state = app_state(request)
    with state.sessions() as session:
        job = None
        if _is_uuid(id):
            job = session.scalars(
                select(LipsyncJob).where(
                    LipsyncJob.id == id, LipsyncJob.account_id == caller.account_id
                )
            ).first()
        if job is None:
            job = session.scalars(
                select(LipsyncJob)
                .where(LipsyncJob.account_id == caller.account_id, LipsyncJob.reference_id == id)
                .order_by(LipsyncJob.created_at.desc(), LipsyncJob.id.desc())
                .limit(1)
            ).first()
    if job is None:
        raise ApiError(404, errors.NOT_FOUND)
    return JSONResponse(present_job(job, public_base_url(request, state), state))


@router.get(
    "/lipsync/requests",
    response_model=RequestListResponse,
    response_model_exclude_none=True,
    summary="List lip sync requests",
    description="Returns a page of the account's lip sync requests, oldest first.",
    responses=error_responses(400, *AUTHENTICATED),
)
def list_requests(
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
    conditions: list[Any] = [LipsyncJob.account_id == caller.account_id]
    if reference_id is not None:
        conditions.append(LipsyncJob.reference_id == reference_id)
    with state.sessions() as session:
        total = session.scalar(select(func.count()).select_from(LipsyncJob).where(*conditions))
        jobs = session.scalars(
            select(LipsyncJob)
            .where(*conditions)
            .order_by(LipsyncJob.created_at, LipsyncJob.id)
            .limit(limit)
            .offset(offset)
        ).all()
    base_url = public_base_url(request, state)
    return JSONResponse(
        {
            "data": [present_job(job, base_url, state) for job in jobs],
            "pagination": {"limit": limit, "offset": offset, "total": total or 0},
        }
    )
