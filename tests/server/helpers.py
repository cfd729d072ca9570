"""Helpers for the server tests, on top of the shared harness (`realserver`, which starts the
real `chamelaion serve` processes): direct database access, keys written like the CLI does, and a
loopback HTTP server that plays the part of a media CDN."""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import realserver
from chamelaion.server.db import make_engine, make_session_factory
from chamelaion.server.keys import create_key
from chamelaion.server.migrate import upgrade_database
from realserver import (
    ON_POSTGRES,
    REDIS_URL,
    Key,
    QuietHandler,
    Server,
    database_url,
    free_port,
    use_postgres,
)

__all__ = [  # the harness's names too: the server tests import them from here
    "ON_POSTGRES",
    "REDIS_URL",
    "ApiServer",
    "Key",
    "MediaHandler",
    "MediaServer",
    "Server",
    "close_databases",
    "database_url",
    "free_port",
    "new_key",
    "sessions_for",
    "use_postgres",
    "wait_for_status",
]

_engines: dict[str, Engine] = {}


def sessions_for(data_dir: Path) -> sessionmaker[Session]:
    """A session factory on the server's own database (migrated, like `serve` does)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    url = database_url(data_dir)
    if url not in _engines:
        _engines[url] = make_engine(url)
        upgrade_database(_engines[url])
    return make_session_factory(_engines[url])


def close_databases() -> None:
    """End of the session: close the tests' connections, drop the PostgreSQL databases."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
    realserver.close_databases()


def new_key(data_dir: Path, name: str = "test", **options: object) -> Key:
    """A key (by default on a new account), written to the server's database like the CLI does."""
    with sessions_for(data_dir)() as session:
        created = create_key(session, name, **options)  # type: ignore[arg-type]
        session.commit()
        return Key(created.key, created.record.id, created.record.account_id)


@dataclass
class ApiServer:
    server: Server
    key: Key  # account A
    other: Key  # account B

    @property
    def api(self) -> str:
        return self.server.api

    def client(self, key: Key | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.api,
            headers={"x-api-key": (key or self.key).key},
            timeout=30,
        )

    def post_multipart(self, body: bytes, boundary: str) -> httpx.Response:
        """POST a hand-made multipart body (for bodies httpx would not make) to the upload."""
        with self.client() as client:
            return client.post(
                "/lipsync/generate-with-media",
                content=body,
                headers={"content-type": f"multipart/form-data; boundary={boundary}"},
            )


class MediaHandler(QuietHandler):
    """Files from a directory, plus `/redirect/<n>/<name>` (n 302 redirects, then the file) and
    `/goto/<url-quoted location>` (one redirect anywhere)."""

    def do_GET(self) -> None:  # noqa: N802 - the http.server hook name
        parts = self.path.strip("/").split("/")
        if parts[0] == "redirect" and len(parts) == 3:
            hops = int(parts[1])
            target = f"/{parts[2]}" if hops <= 1 else f"/redirect/{hops - 1}/{parts[2]}"
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if parts[0] == "goto" and len(parts) == 2:
            self.send_response(302)
            self.send_header("Location", urllib.parse.unquote(parts[1]))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()


@dataclass
class MediaServer:
    directory: Path
    base_url: str

    def url(self, path: Path | str) -> str:
        name = path.name if isinstance(path, Path) else path
        return f"{self.base_url}/{name}"


def files_of(data_dir: Path, request_id: str) -> list[str]:
    """The names in the outputs directory that belong to the request, sorted."""
    return sorted(p.name for p in (data_dir / "outputs").iterdir() if request_id in p.name)


def completed_files(request_id: str) -> list[str]:
    """What a completed job leaves, and nothing else (no partial render, no draft): the output,
    its mouth track and its source video, as `files_of` lists them."""
    return [f"{request_id}{end}" for end in (".mouth.json", ".mp4", ".source")]


def wait_for_status(
    client: httpx.Client, request_id: str, statuses: set[str], timeout: float
) -> dict[str, object]:
    """Poll a request until its status is in `statuses`; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    body: dict[str, object] = {}
    while time.monotonic() < deadline:
        response = client.get(f"/lipsync/requests/{request_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] in statuses:
            return body
        time.sleep(0.1)
    raise AssertionError(f"request {request_id} still {body.get('status')} after {timeout}s")
