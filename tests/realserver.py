"""The one harness that starts the real service for tests: `chamelaion serve` subprocesses on
loopback, their databases, keys made with the command line, and a loopback media server.

The server tests, the Python SDK's tests and the TypeScript SDK's tests (driven from
tests/typescript) all start servers through `Server` here. It imports nothing of the server
package, so the SDK's tests still import it (and skip themselves) where only the SDK is installed.

The servers run on SQLite unless CHAMELAION_TEST_DATABASE=postgresql: then each data dir gets its
own fresh database on the server at CHAMELAION_TEST_POSTGRES_URL (`make test` runs the server
tests both ways), all dropped at the end of the session by `close_databases`.
"""

from __future__ import annotations

import http.server
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

STARTUP_TIMEOUT = 90.0

POSTGRES_URL = os.environ.get(
    "CHAMELAION_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("CHAMELAION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ON_POSTGRES = os.environ.get("CHAMELAION_TEST_DATABASE", "sqlite") == "postgresql"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresDatabases:
    """Fresh PostgreSQL databases for one test session, all dropped at its end.

    Names carry the run's pid and a random tag, so concurrent runs on one server never meet.
    """

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.tag = f"chm_test_{os.getpid()}_{secrets.token_hex(3)}"
        self._created: list[str] = []

    def _admin(self) -> Any:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        return create_engine(self.server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)

    def create(self) -> str:
        """A new empty database's URL."""
        from sqlalchemy import make_url, text

        name = f"{self.tag}_{len(self._created)}"
        with self._admin().connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        self._created.append(name)
        return make_url(self.server_url).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if not self._created:
            return
        from sqlalchemy import text

        with self._admin().connect() as connection:
            for name in self._created:  # FORCE: a killed server may have left sessions open
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._created.clear()


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


def _env(data_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    """The environment of a server or CLI process: none of the caller's CHAMELAION_* settings
    leak in; the data dir's database, then `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAMELAION_")}
    return {**env, "CHAMELAION_DATABASE_URL": database_url(data_dir), **extra}


@dataclass
class Key:
    key: str
    key_id: str
    account_id: str


def _cli(data_dir: Path, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "chamelaion.cli", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(data_dir, {}),
        cwd=data_dir,  # no stray .env from the working directory
    )
    if out.returncode != 0:
        raise RuntimeError(f"chamelaion {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def create_key(data_dir: Path, name: str, *options: str) -> Key:
    """`chamelaion keys create --name NAME [options]`; the key is read from its output."""
    data_dir.mkdir(parents=True, exist_ok=True)
    text = _cli(data_dir, "keys", "create", "--name", name, *options)
    key = re.search(r"API key[^:]*:\s*(\S+)", text)
    key_id = re.search(r"key id:\s*(\S+)", text)
    account = re.search(r"account id:\s*(\S+)", text)
    assert key and key_id and account, text
    return Key(key.group(1), key_id.group(1), account.group(1))


def revoke_key(data_dir: Path, key_id: str) -> None:
    _cli(data_dir, "keys", "revoke", key_id)


@dataclass
class Server:
    """A `chamelaion serve` subprocess. Its stdout/stderr go to files in its data dir.

    Rate limits are out of the way (100000/minute) unless `env` or a key sets them.
    """

    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 0
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    name: str = "serve"  # of its log files: replicas may share a data dir

    @property
    def base_url(self) -> str:
        """The server's root (`/healthz`, `/openapi.json`)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        """Where the API's paths start (`/lipsync/...`)."""
        return f"{self.base_url}/api/v1"

    @property
    def sdk_base_url(self) -> str:
        """What the SDKs take as their base URL: they call `/v1/...` under it."""
        return f"{self.base_url}/api"

    @property
    def stdout_path(self) -> Path:
        return self.data_dir / f"{self.name}-{self.starts}.out"

    @property
    def stderr_path(self) -> Path:
        return self.data_dir / f"{self.name}-{self.starts}.err"

    def start(self) -> Server:
        self.starts += 1
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = _env(
            self.data_dir,
            {
                "CHAMELAION_RATE_LIMIT_READ": "100000/minute",
                "CHAMELAION_RATE_LIMIT_GENERATE": "100000/minute",
                **self.env,
            },
        )
        command = [sys.executable, "-m", "chamelaion.cli", "serve", "--port", str(self.port)]
        command += ["--data-dir", str(self.data_dir), "--workers", str(self.workers)]
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=err, env=env, cwd=self.data_dir
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited at start:\n{self.logs()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start:\n{self.logs()}")

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
        path = self.stderr_path
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def running(server: Server) -> Iterator[Server]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class QuietHTTPServer(http.server.ThreadingHTTPServer):
    """Clients that hang up early (the size-cap tests do) are expected; do not print them."""

    def handle_error(self, request: object, client_address: object) -> None:
        pass


@contextmanager
def media_server(
    directory: Path, handler_class: type[QuietHandler] = QuietHandler
) -> Iterator[str]:
    """Serves ``directory`` over HTTP on loopback (a stand-in CDN); yields its base URL."""

    def handler(*args: object, **kwargs: object) -> QuietHandler:
        return handler_class(*args, directory=str(directory), **kwargs)  # type: ignore[arg-type]

    httpd = QuietHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def close_databases() -> None:
    """End of the session: drop the PostgreSQL databases it made."""
    postgres.drop_all()
