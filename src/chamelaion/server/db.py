"""Database engine and sessions. Plain SQLAlchemy 2, so SQLite and PostgreSQL both work."""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

# Longest wait to connect to PostgreSQL: an unreachable server fails a request (503), not hangs it.
CONNECT_TIMEOUT_SECONDS = 5


def make_engine(url: str, lock_timeout: float = 30.0) -> Engine:
    """An engine tuned for the backend: SQLite gets WAL so readers never wait for writers, and
    waits up to `lock_timeout` seconds for another writer's lock before giving up; PostgreSQL
    connections are checked before use (`pool_pre_ping`), so a connection cut by a restart of
    the server is replaced rather than failing the request that drew it from the pool."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": lock_timeout},
            pool_size=20,
            max_overflow=40,
        )
        event.listen(engine, "connect", partial(_configure_sqlite, lock_timeout))
        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )


def _configure_sqlite(lock_timeout: float, dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(lock_timeout * 1000)}")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
