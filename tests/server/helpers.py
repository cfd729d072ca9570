"""Helpers for the server tests, on top of the shared harness (`realserver`, which starts the
real `chamelaion serve` processes): direct database access, keys written like the CLI does, and a
loopback HTTP server that plays the part of a media CDN."""

from __future__ import annotations

import http.server
import itertools
import json
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

import realserver
from chamelaion.engine import media
from chamelaion.server.db import make_engine, make_session_factory
from chamelaion.server.keys import create_key
from chamelaion.server.migrate import upgrade_database
from chamelaion.server.models import Account, JobSegment, JobStatus, LipsyncJob, utcnow
from chamelaion.server.webhooks import new_secret
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
    "contract_server",
    "database_url",
    "free_port",
    "new_key",
    "sessions_for",
    "use_postgres",
    "wait_for_status",
]

# Inputs of a URL job that is only ever queued (nothing fetches example.com in these tests).
EXAMPLE_INPUTS = [
    {"type": "video", "url": "https://example.com/v.mp4"},
    {"type": "audio", "url": "https://example.com/a.wav"},
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


@contextmanager
def contract_server(data_dir: Path) -> Iterator[ApiServer]:
    """API only (no workers: jobs stay queued), 1 MiB upload cap, keys on two accounts: the
    contract tests' server (the `api_server` fixture) and the schemathesis benchmark's."""
    key, other = new_key(data_dir, "a"), new_key(data_dir, "b")
    server = Server(data_dir, env={"CHAMELAION_MAX_UPLOAD_BYTES": str(1024 * 1024)})
    server.start()
    try:
        yield ApiServer(server, key, other)
    finally:
        server.stop()


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
) -> dict[str, Any]:
    """Poll a request until its status is in `statuses`; fail the test on timeout. The body is
    JSON, whatever nesting the request has."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = client.get(f"/lipsync/requests/{request_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] in statuses:
            return body
        time.sleep(0.1)
    raise AssertionError(f"request {request_id} still {body.get('status')} after {timeout}s")


LONG_JOB = {"sync_mode": "loop"}
# How long the helpers below wait for a worker to get somewhere: a ceiling that only a broken
# server reaches (a busy 2-core machine has taken over a minute to analyse the long inputs), never
# an expectation of speed.
PATIENCE = 300.0


def client_for(server: Server, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.api, headers={"x-api-key": key}, timeout=30)


def start_long_job(client: httpx.Client, inputs: tuple[Path, Path]) -> str:
    """Upload the long inputs (the `long_inputs` fixture), looped to the audio's length;
    return the request id once a worker is processing it."""
    video, audio = inputs
    with video.open("rb") as video_file, audio.open("rb") as audio_file:
        response = client.post(
            "/lipsync/generate-with-media",
            files={"video": video_file, "audio": audio_file},
            data=LONG_JOB,
        )
    request_id: str = response.json()["request_id"]
    wait_for_status(client, request_id, {"processing"}, PATIENCE)
    return request_id


def job_row(data_dir: Path, request_id: str) -> LipsyncJob:
    with sessions_for(data_dir)() as session:
        return session.scalars(select(LipsyncJob).where(LipsyncJob.id == request_id)).one()


def wait_for_progress(data_dir: Path, request_id: str, stage: str = "analysing") -> None:
    """Until the engine has reported progress in `stage` (it is past its start-up)."""
    deadline = time.monotonic() + PATIENCE
    while True:
        row = job_row(data_dir, request_id)
        if row.progress > 0.0 and row.progress_stage == stage:
            return
        assert row.status == "processing", f"job is {row.status} before reaching {stage}"
        assert time.monotonic() < deadline, f"no progress reported in {stage}"
        time.sleep(0.05)


def expire_lease(data_dir: Path, request_id: str) -> None:
    """Make a processing job's last heartbeat a day old, as if its lease ran out.

    For a job whose worker the test has just killed (nothing can heartbeat it any more): the
    server's own recovery (at start, or its periodic check) then re-queues it through the real
    lease comparison, without the test waiting out a lease short enough to also expire under a
    live worker whose heartbeat a busy machine delays."""
    with sessions_for(data_dir)() as session:
        expired = session.execute(
            update(LipsyncJob)
            .where(LipsyncJob.id == request_id, LipsyncJob.status == JobStatus.PROCESSING.value)
            .values(heartbeat_at=utcnow() - timedelta(days=1))
        ).rowcount  # type: ignore[attr-defined]
        session.commit()
    assert expired == 1, f"job {request_id} is not processing"


def expire_segment_lease(data_dir: Path, request_id: str, index: int) -> bool:
    """As `expire_lease`, for a segment a helper was rendering when the test killed it: the
    job's worker then takes it back through the real lease comparison. False if it had already
    (the real lease ran out first, on a slow machine)."""
    with sessions_for(data_dir)() as session:
        expired = session.execute(
            update(JobSegment)
            .where(
                JobSegment.job_id == request_id,
                JobSegment.index == index,
                JobSegment.status == "processing",
            )
            .values(heartbeat_at=utcnow() - timedelta(days=1))
        ).rowcount  # type: ignore[attr-defined]
        session.commit()
    return bool(expired)


def finished_segments(work: Path) -> dict[int, dict[str, Any]]:
    """A job work dir's finished segments, as its manifest records them (empty while there is
    no manifest)."""
    try:
        manifest = json.loads((work / "manifest.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {int(i): entry for i, entry in manifest["finished"].items()}


def file_identity(path: Path) -> tuple[int, int] | None:
    """A file's inode and modification time: a segment rendered again changes both."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


class WorkDirWatcher:
    """Snapshots of a work dir's finished segments and of some segment files' identities,
    every 20 ms, until told to stop: what a resumed attempt did before the finished job's work
    dir was freed. Only whole snapshots count: with the manifest and every watched file there
    (a segment rendered again replaces its file in one rename, so it is never missing; a
    missing one means the finished job's work dir is being removed, file by file)."""

    def __init__(self, work: Path, files: list[Path]) -> None:
        self.snapshots: list[tuple[dict[int, dict[str, Any]], list[tuple[int, int]]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(work, files), daemon=True)
        self._thread.start()

    def _watch(self, work: Path, files: list[Path]) -> None:
        while not self._stop.wait(0.02):
            finished = finished_segments(work)
            identities = [file_identity(f) for f in files]
            present = [identity for identity in identities if identity is not None]
            if finished and len(present) == len(files):
                self.snapshots.append((finished, present))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def assert_whole_output(output: Path, audio: Path, fps: float = 25.0) -> None:
    """The output plays to the end: every frame decodes, one frame period apart (none doubled
    or dropped), as many as the audio is long, with its sound as long as its pictures."""
    with av.open(str(output)) as container:
        stream = container.streams.video[0]
        base = stream.time_base
        assert base is not None
        times = [float((frame.pts or 0) * base) for frame in container.decode(stream)]
    frames = len(times)
    assert frames == pytest.approx(media.probe(audio).duration * fps, abs=1)
    steps = [b - a for a, b in itertools.pairwise(times)]
    assert steps and all(step == pytest.approx(1 / fps, abs=1e-3) for step in steps)
    with av.open(str(output)) as container:
        rate = container.streams.audio[0].sample_rate
        samples = sum(f.samples for f in container.decode(audio=0))
    assert samples / rate == pytest.approx(frames / fps, abs=0.05)
    assert media.probe(output).duration == pytest.approx(frames / fps, abs=0.05)


def shorten_audio(data_dir: Path, request_id: str, audio: Path) -> None:
    """Replace an uploaded job's stored audio with `audio` (atomically), while no worker holds
    the job: the next attempt then renders a short job. The long inputs (`long_inputs`) are
    only needed to be sure an attempt is still running when a test interrupts it; what follows
    (the job is taken again and completes) does not need its length."""
    source = Path(job_row(data_dir, request_id).audio_source)
    assert source.resolve().is_relative_to((data_dir / "inputs").resolve()), source  # an upload
    swap = source.with_name(f".{source.name}.swap")
    swap.write_bytes(audio.read_bytes())
    os.replace(swap, source)


@contextmanager
def dripping_server(interval: float = 0.3) -> Iterator[str]:
    """A URL whose server promises 1 MB and then sends one byte every `interval` seconds, for
    as long as the client stays: each read succeeds quickly, the whole never arrives."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def drip(connection: socket.socket) -> None:
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
            while not stop.wait(interval):
                try:
                    connection.sendall(b"x")
                except OSError:
                    return  # the client gave up

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=drip, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/slow.mp4"
    finally:
        stop.set()
        listener.close()


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """Records every POST; answers with `script`'s statuses in turn, then `then`."""

    url: str
    script: list[int] = field(default_factory=list)
    then: int = 200
    received: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float = PATIENCE) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"{len(self.received)} deliveries after {timeout}s, wanted {count}")


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    """A loopback HTTP server that plays a client's webhook endpoint."""
    state = Receiver(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with state.lock:
                state.received.append(Delivery(body, dict(self.headers.items())))
                status = state.script.pop(0) if state.script else state.then
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/hooks/chamelaion"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def secret_for(data_dir: Path, account_id: str) -> str:
    """A webhook secret stored as the CLI stores it (the CLI itself is tested once, above)."""
    with sessions_for(data_dir)() as session:
        account = session.get(Account, account_id)
        assert account is not None
        account.webhook_secret = new_secret()
        session.commit()
        return account.webhook_secret


def upload(client: httpx.Client, inputs: tuple[Path, Path], reference_id: str) -> str:
    """Create a job from two files; its request id."""
    video, audio = inputs
    with video.open("rb") as v, audio.open("rb") as a:
        response = client.post(
            "/lipsync/generate-with-media",
            files={"video": v, "audio": a},
            data={"reference_id": reference_id},
        )
    assert response.status_code == 200, response.text
    return str(response.json()["request_id"])
