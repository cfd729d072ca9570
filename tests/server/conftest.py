"""Fixtures for the server tests (the helpers they use live in `server.helpers`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import realserver
from server.helpers import (
    ApiServer,
    MediaHandler,
    MediaServer,
    Server,
    close_databases,
    new_key,
)


@pytest.fixture(scope="session", autouse=True)
def _databases() -> Iterator[None]:
    """Drop the session's PostgreSQL databases at its end (nothing to do on SQLite)."""
    yield
    close_databases()


@pytest.fixture(scope="session")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """API only (no workers: jobs stay queued), 1 MiB upload cap, for the contract tests."""
    data_dir = tmp_path_factory.mktemp("api-server")
    key, other = new_key(data_dir, "a"), new_key(data_dir, "b")
    server = Server(data_dir, env={"CHAMELAION_MAX_UPLOAD_BYTES": str(1024 * 1024)})
    server.start()
    try:
        yield ApiServer(server, key, other)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def media_server(media_dir: Path) -> Iterator[MediaServer]:
    """Serves the session's generated media over HTTP on 127.0.0.1 (a loopback "CDN")."""

    with realserver.media_server(media_dir, MediaHandler) as url:
        yield MediaServer(media_dir, url)
