"""Liveness and readiness probes (no authentication, not rate limited)."""

from __future__ import annotations

import redis
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
    summary="The database (and, scaled out, the queue's Redis) is reachable and the disk has room",
    responses={
        503: error_responses(500)[500]
        | {"description": "`database unavailable`, `queue unavailable` or `insufficient storage`."}
    },
)
def readyz(request: Request) -> JSONResponse:
    state = app_state(request)
    try:
        with state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        raise ApiError(503, errors.NOT_READY) from exc
    if state.settings.broker_url and state.settings.queue == "celery":
        _ping_redis(state.settings.broker_url)
    if not Storage(state.settings).has_room():
        raise ApiError(503, errors.INSUFFICIENT_STORAGE)
    return JSONResponse({"status": "ok"})


def _ping_redis(url: str) -> None:
    """While the broker is down new jobs are stored and published once it is back, but none
    start: not ready. A fresh connection each time, so a probe never reports a stale one."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ApiError(503, errors.QUEUE_UNAVAILABLE) from exc
    finally:
        client.close()
