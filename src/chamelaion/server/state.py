"""What the app shares between requests, hung off `app.state` by `create_app`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Concatenate, ParamSpec, TypeVar

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from chamelaion.server.config import Settings
from chamelaion.server.idempotency import Purger
from chamelaion.server.queue.dispatch import Dispatcher
from chamelaion.server.ratelimit import RateLimiter
from chamelaion.server.storage import OutputSigner

P = ParamSpec("P")
T = TypeVar("T")


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

    async def read(
        self, query: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`query(connection, ...)` on a fresh connection, for the read paths (auth, polling).

        With SQLite, on the event loop: a local file in WAL mode serves a read without waiting
        on writers, and skipping the thread-pool hop is what lets one process serve >1000
        reads/s. Any other database is across a network that can stall: there it runs on the
        thread pool, so a hung server holds the requests that wait on it, not the process
        (probes, downloads, other requests go on).
        """
        if self.engine.dialect.name == "sqlite":
            return _run(self.engine, query, *args, **kwargs)
        return await run_in_threadpool(partial(_run, self.engine, query, *args, **kwargs))


def _run(
    engine: Engine,
    query: Callable[Concatenate[Connection, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    with engine.connect() as connection:
        return query(connection, *args, **kwargs)


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.chamelaion
    return state
