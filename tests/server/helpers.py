"""Helpers for the server tests: real `chamelaion serve` processes on loopback, real SQLite or
PostgreSQL, real files, and a loopback HTTP server that plays the part of a media CDN."""

from __future__ import annotations

import http.server
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from chamelaion.server.db import make_engine, make_session_factory
from chamelaion.server.keys import create_key
from chamelaion.server.migrate import upgrade_database

STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresDatabases:
    """Fresh PostgreSQL databases for one test session, all dropped at its end.

    Names carry the run's pid and a random tag, so concurrent runs on one server never meet.
    """

    def __init__(self, server_url: str) -> None:
        self._server = make_url(server_url)
        self.tag = f"chm_test_{os.getpid()}_{secrets.token_hex(3)}"
        self._created: list[str] = []

    def _admin(self) -> Engine:
        return create_engine(self._server, isolation_level="AUTOCOMMIT", poolclass=NullPool)

    def create(self) -> str:
        """A new empty database's URL."""
        name = f"{self.tag}_{len(self._created)}"
        with self._admin().connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        self._created.append(name)
        return self._server.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self._admin().connect() as connection:
            for name in self._created:  # FORCE: a killed server may have left sessions open
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._created.clear()


# The server tests run on SQLite unless CHAMELAION_TEST_DATABASE=postgresql: then each data dir
# gets its own fresh database on the server at CHAMELAION_TEST_POSTGRES_URL (`make test` runs
# the server tests both ways). The scale-out tests always use PostgreSQL and Redis.
POSTGRES_URL = os.environ.get(
    "CHAMELAION_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("CHAMELAION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ON_POSTGRES = os.environ.get("CHAMELAION_TEST_DATABASE", "sqlite") == "postgresql"
postgres = PostgresDatabases(POSTGRES_URL)
_database_urls: dict[Path, str] = {}


def database_url(data_dir: Path) -> str:
    """The database of the server whose data dir this is (the same one on every call)."""
    data_dir = data_dir.resolve()
    if data_dir not in _database_urls:
        _database_urls[data_dir] = (
            postgres.create() if ON_POSTGRES else f"sqlite:///{data_dir / 'chamelaion.db'}"
        )
    return _database_urls[data_dir]


def use_postgres(data_dir: Path) -> str:
    """Give this data dir a fresh PostgreSQL database, whichever backend the session runs on
    (the scale-out tests need one)."""
    data_dir = data_dir.resolve()
    if not database_url(data_dir).startswith("postgresql"):
        _database_urls[data_dir] = postgres.create()
    return _database_urls[data_dir]


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
    postgres.drop_all()


@dataclass
class Key:
    key: str
    key_id: str
    account_id: str


def new_key(data_dir: Path, name: str = "test", **options: object) -> Key:
    """A key (by default on a new account), written to the server's database like the CLI does."""
    with sessions_for(data_dir)() as session:
        created = create_key(session, name, **options)  # type: ignore[arg-type]
        session.commit()
        return Key(created.key, created.record.id, created.record.account_id)


@dataclass
class Server:
    """A `chamelaion serve` subprocess. Its stdout/stderr go to files in its data dir."""

    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 0
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    name: str = "serve"  # of its log files: replicas may share a data dir

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.base_url}/api/v1"

    @property
    def stdout_path(self) -> Path:
        return self.data_dir / f"{self.name}-{self.starts}.out"

    @property
    def stderr_path(self) -> Path:
        return self.data_dir / f"{self.name}-{self.starts}.err"

    def start(self) -> Server:
        self.starts += 1
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "CHAMELAION_RATE_LIMIT_READ": "100000/minute", **self.env}
        env["CHAMELAION_DATABASE_URL"] = database_url(self.data_dir)
        command = [sys.executable, "-m", "chamelaion.cli", "serve", "--port", str(self.port)]
        command += ["--data-dir", str(self.data_dir), "--workers", str(self.workers)]
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited at start:\n{self.stderr_path.read_text()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start:\n{self.stderr_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no cleanup of any kind
        self.process.wait()

    def logs(self) -> str:
        return self.stderr_path.read_text()


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


class MediaHandler(http.server.SimpleHTTPRequestHandler):
    """Files from a directory, plus `/redirect/<n>/<name>` (n 302 redirects, then the file) and
    `/goto/<url-quoted location>` (one redirect anywhere)."""

    def do_GET(self) -> None:
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

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class MediaServer:
    directory: Path
    base_url: str

    def url(self, path: Path | str) -> str:
        name = path.name if isinstance(path, Path) else path
        return f"{self.base_url}/{name}"


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
