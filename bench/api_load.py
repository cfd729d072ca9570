"""HTTP API load benchmark: reads at 64 connections, then 200 concurrent uploads.

    .venv/bin/python bench/api_load.py [--seconds 10] [--connections 64] [--uploads 200]

Starts `chamelaion serve` (SQLite, no engine workers, so uploaded jobs stay queued) in a
temporary data dir, and drives it from this process, a separate load generator on loopback:

1. GET /api/v1/lipsync/requests/{id} for random ids, then GET /api/v1/lipsync/requests, each for
   a bounded time and request count, over keep-alive connections with a minimal asyncio HTTP/1.1
   client (a full client library would be the bottleneck, not the server). Prints req/s, p50, p99.
2. `--uploads` multipart uploads (a 2 s talking-head MP4 and a 2.5 s WAV) all at once, each on
   its own connection. Prints errors and the number of rows the API then reports.

Targets (issue 3, 2 cores, SQLite): reads >= 1000 req/s with p99 < 50 ms; uploads 0 errors.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

SEED_REQUESTS = 500
MAX_REQUESTS_PER_PHASE = 200_000


@dataclass
class PhaseResult:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0

    def report(self) -> str:
        ordered = sorted(self.latencies)
        count = len(ordered)
        p50 = ordered[count // 2] * 1000 if count else float("nan")
        p99 = ordered[min(count - 1, int(count * 0.99))] * 1000 if count else float("nan")
        rate = count / self.elapsed if self.elapsed else 0.0
        return (
            f"{self.name:<28} {count:>7} req  {rate:>8.0f} req/s  p50 {p50:6.1f} ms  "
            f"p99 {p99:6.1f} ms  errors {self.errors}"
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CHAMELAION_RATE_LIMIT_READ": "100000000/minute",
        "CHAMELAION_RATE_LIMIT_GENERATE": "100000000/minute",
    }
    log = (data_dir / "serve.log").open("wb")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "chamelaion.cli", "serve", "--port", str(port)),
            *("--data-dir", str(data_dir), "--workers", "0"),
        ],
        stdout=log,
        stderr=log,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


def create_key(data_dir: Path) -> str:
    from chamelaion.server.db import make_engine, make_session_factory
    from chamelaion.server.keys import create_key as make_key
    from chamelaion.server.migrate import upgrade_database

    engine = make_engine(f"sqlite:///{(data_dir / 'chamelaion.db').resolve()}")
    upgrade_database(engine)
    with make_session_factory(engine)() as session:
        created = make_key(session, "bench")
        session.commit()
    engine.dispose()
    return created.key


async def keep_alive_worker(
    port: int, key: str, paths: list[str], result: PhaseResult, stop_at: float, budget: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at and budget[0] > 0:
            budget[0] -= 1
            path = random.choice(paths)
            request = (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {key}\r\n\r\n"
            ).encode()
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            result.latencies.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 200"):
                result.errors += 1
    finally:
        writer.close()


async def read_phase(
    name: str, port: int, key: str, paths: list[str], connections: int, seconds: float
) -> PhaseResult:
    result = PhaseResult(name)
    budget = [MAX_REQUESTS_PER_PHASE]
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(
        *(keep_alive_worker(port, key, paths, result, stop_at, budget) for _ in range(connections))
    )
    result.elapsed = time.perf_counter() - started
    return result


async def upload_phase(port: int, key: str, video: bytes, audio: bytes, count: int) -> PhaseResult:
    result = PhaseResult(f"{count} concurrent uploads")
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}/api/v1",
        headers={"x-api-key": key},
        limits=limits,
        timeout=120,
    ) as client:

        async def one(index: int) -> None:
            started = time.perf_counter()
            try:
                response = await client.post(
                    "/lipsync/generate-with-media",
                    files={
                        "video": ("talk.mp4", video, "video/mp4"),
                        "audio": ("dub.wav", audio, "audio/wav"),
                    },
                    data={"reference_id": f"bench-upload-{index}"},
                )
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            result.latencies.append(time.perf_counter() - started)
            result.errors += 0 if ok else 1

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        result.elapsed = time.perf_counter() - started
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each read phase")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--uploads", type=int, default=200)
    args = parser.parse_args()

    import mediagen

    with tempfile.TemporaryDirectory(prefix="chamelaion-bench-") as tmp:
        data_dir = Path(tmp)
        key = create_key(data_dir)
        port = free_port()
        server = start_server(data_dir, port)
        try:
            api = f"http://127.0.0.1:{port}/api/v1"
            with httpx.Client(base_url=api, headers={"x-api-key": key}) as client:
                ids = []
                for index in range(SEED_REQUESTS):
                    response = client.post(
                        "/lipsync/generate",
                        json={
                            "inputs": [
                                {"type": "video", "url": f"https://cdn.example.com/{index}.mp4"},
                                {"type": "audio", "url": f"https://cdn.example.com/{index}.wav"},
                            ],
                            "reference_id": f"seed-{index % 50}",
                        },
                    )
                    ids.append(response.json()["request_id"])
            print(f"server: SQLite, 1 API process, no engine workers; {SEED_REQUESTS} rows seeded")
            by_id = [f"/api/v1/lipsync/requests/{request_id}" for request_id in ids]
            listing = [
                f"/api/v1/lipsync/requests?limit=20&offset={offset}"
                for offset in range(0, SEED_REQUESTS, 20)
            ]
            server_process = psutil.Process(server.pid)
            for name, paths in (("GET by id", by_id), ("GET list (limit 20)", listing)):
                server_process.cpu_percent()
                with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                    result = runner.run(
                        read_phase(
                            f"{name} @{args.connections}",
                            port,
                            key,
                            paths,
                            args.connections,
                            args.seconds,
                        )
                    )
                busy = server_process.cpu_percent()
                print(f"{result.report()}  server CPU {busy:.0f}%", flush=True)

            video = mediagen.write_face_video(data_dir / "talk.mp4", 2.0, 25.0, 320, 240)
            speech = mediagen.phrases_with_gaps(["hello mama"], gap=0.6)
            audio = mediagen.write_wav(data_dir / "dub.wav", speech)
            result = asyncio.run(
                upload_phase(port, key, video.read_bytes(), audio.read_bytes(), args.uploads)
            )
            print(result.report(), flush=True)
            with httpx.Client(base_url=api, headers={"x-api-key": key}) as client:
                uploaded = sum(
                    client.get(
                        "/lipsync/requests", params={"reference_id": f"bench-upload-{i}"}
                    ).json()["pagination"]["total"]
                    for i in range(args.uploads)
                )
            print(f"rows created by the uploads: {uploaded} (expected {args.uploads})")
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
