"""A real `chamelaion serve` on loopback for the SDK tests, driven only through its command line
(`chamelaion serve`, `chamelaion keys create|revoke`), the way a user runs it."""

from __future__ import annotations

import http.server
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from chamelaion import AsyncChamelaion, Chamelaion

STARTUP_TIMEOUT = 90.0
LIVE_UPLOAD_CAP = 8 * 1024 * 1024  # the upload cap of the `live_api` server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAMELAION_")}
    return {**env, **extra}


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
        env=_env({}),
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
    """A `chamelaion serve` subprocess; its output goes to files in its data dir."""

    data_dir: Path
    workers: int = 0
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """What the SDK takes as base_url: it calls /v1/... under it."""
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = _env(
            {
                "CHAMELAION_RATE_LIMIT_READ": "100000/minute",
                "CHAMELAION_RATE_LIMIT_GENERATE": "100000/minute",
                **self.env,
            }
        )
        command = [sys.executable, "-m", "chamelaion.cli", "serve", "--port", str(self.port)]
        command += ["--data-dir", str(self.data_dir), "--workers", str(self.workers)]
        with (
            (self.data_dir / "serve.out").open("wb") as out,
            (self.data_dir / "serve.err").open("wb") as err,
        ):
            self.process = subprocess.Popen(
                command, stdout=out, stderr=err, env=env, cwd=self.data_dir
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited at start:\n{self.logs()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).is_success:
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

    def logs(self) -> str:
        path = self.data_dir / "serve.err"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""


class CuttingProxy:
    """A TCP proxy on loopback to ``target_port`` that can break a download half way.

    Set ``cut_after`` to a byte count: the next connection is closed after that many bytes of
    response (headers included). ``heads`` records the head of each request that passed through.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.cut_after: int | None = None
        self.heads: list[str] = []
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def start(self) -> CuttingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            limit, self.cut_after = self.cut_after, None
            threading.Thread(target=self._serve, args=(client, limit), daemon=True).start()

    def _serve(self, client: socket.socket, limit: int | None) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
        except OSError:
            client.close()
            return

        def requests() -> None:
            try:
                while data := client.recv(65536):
                    if data[:4] in (b"GET ", b"HEAD", b"POST"):
                        self.heads.append(data.split(b"\r\n\r\n", 1)[0].decode("latin-1"))
                    upstream.sendall(data)
            except OSError:
                pass
            finally:
                with suppress(OSError):
                    upstream.shutdown(socket.SHUT_WR)

        threading.Thread(target=requests, daemon=True).start()
        sent = 0
        try:
            while data := upstream.recv(65536):
                if limit is not None and sent + len(data) >= limit:
                    client.sendall(data[: limit - sent])
                    break  # cut: close both sides mid-response
                client.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


@contextmanager
def running(server: Server) -> Iterator[Server]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def media_server(directory: Path) -> Iterator[str]:
    """Serves ``directory`` over HTTP on loopback (a stand-in CDN); yields its base URL."""

    def handler(*args: object, **kwargs: object) -> _QuietHandler:
        return _QuietHandler(*args, directory=str(directory), **kwargs)  # type: ignore[arg-type]

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # type: ignore[arg-type]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@dataclass
class Live:
    """A running server, a key on a fresh account, and a loopback media server."""

    server: Server
    key: Key
    media_url: str
    proxy: CuttingProxy | None = None  # where output URLs point, if set

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    def new_key(self, *options: str) -> Key:
        return create_key(self.data_dir, "sdk-test", *options)

    def client(self, key: Key | str | None = None, **kwargs: Any) -> Chamelaion:
        api_key = key.key if isinstance(key, Key) else (key or self.key.key)
        kwargs.setdefault("timeout", 60.0)
        kwargs.setdefault("base_url", self.server.base_url)
        return Chamelaion(api_key=api_key, **kwargs)

    def async_client(self, key: Key | str | None = None, **kwargs: Any) -> AsyncChamelaion:
        api_key = key.key if isinstance(key, Key) else (key or self.key.key)
        kwargs.setdefault("timeout", 60.0)
        kwargs.setdefault("base_url", self.server.base_url)
        return AsyncChamelaion(api_key=api_key, **kwargs)
