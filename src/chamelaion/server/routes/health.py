"""Liveness and readiness probes (no authentication, not rate limited)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from chamelaion.server import errors
from chamelaion.server.errors import ApiError
from chamelaion.server.routes.common import error_responses
from chamelaion.server.schemas import Health
from chamelaion.server.state import app_state
from chamelaion.server.storage import Storage

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get(
    "/readyz",
    response_model=Health,
    summary="The database is reachable and the disk has room",
    responses={
        503: error_responses(500)[500]
        | {"description": "`database unavailable` or `insufficient storage`."}
    },
)
def readyz(request: Request) -> JSONResponse:
    state = app_state(request)
    try:
        with state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        raise ApiError(503, errors.NOT_READY) from exc
    if not Storage(state.settings).has_room():
        raise ApiError(503, errors.INSUFFICIENT_STORAGE)
    return JSONResponse({"status": "ok"})
