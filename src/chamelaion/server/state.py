"""What the app shares between requests, hung off `app.state` by `create_app`."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from chamelaion.server.config import Settings
from chamelaion.server.dispatch import Dispatcher
from chamelaion.server.idempotency import Purger
from chamelaion.server.ratelimit import RateLimiter
from chamelaion.server.storage import OutputSigner


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    rate_limiter: RateLimiter
    signer: OutputSigner
    idempotency_purger: Purger
    # With CHAMELAION_QUEUE=celery: publishes each job once it is committed.
    dispatcher: Dispatcher | None = None


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.chamelaion
    return state
