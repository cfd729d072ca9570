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

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get(
    "/readyz",
    response_model=Health,
    summary="The database is reachable",
    responses={503: error_responses(500)[500] | {"description": "`database unavailable`."}},
)
def readyz(request: Request) -> JSONResponse:
    try:
        with app_state(request).engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        raise ApiError(503, errors.NOT_READY) from exc
    return JSONResponse({"status": "ok"})
