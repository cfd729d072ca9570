"""Scale-out benchmark: jobs per minute with 1 and 2 Celery worker processes, and queue latency.

    .venv/bin/python bench/scale.py [--jobs 30] [--paced 12] [--workers 1 2]

For each worker count N: a fresh PostgreSQL database and Redis key prefix, one
`chamelaion serve --no-worker` (CHAMELAION_QUEUE=celery) and N `chamelaion worker --concurrency 1`
processes, all on loopback. After one warm-up job per worker:

1. burst: `--jobs` upload jobs (1 s of 160x120 talking head, a spoken word) submitted at once.
   Jobs per minute = jobs / (last finished_at - first created_at). The queue latency (submit to
   `processing`: started_at - created_at) here is mostly waiting behind the backlog.
   Also the cores kept busy meanwhile (CPU seconds per second) by the workers, by the API, and
   on the whole machine (PostgreSQL, Redis, this client, anything else running).
2. paced: `--paced` jobs, one every (1.5 x the burst's per-job time): the latency of the queue
   itself when a worker is free (publish, Redis, the worker's claim).

Needs PostgreSQL and Redis (defaults: the test servers on 127.0.0.1). Times come from the job
rows, so they are the service's own view.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx
import psutil
import redis
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the test media generator

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS = "redis://127.0.0.1:6379/0"
DEADLINE = 600.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "chamelaion.cli", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
        )


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


class Cluster:
    """One API and `workers` worker processes over a fresh database and key prefix."""

    def __init__(self, root: Path, workers: int, postgres: str, redis_url: str) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.port = free_port()
        self.prefix = f"chm-bench-{secrets.token_hex(4)}"
        self.redis_url = redis_url
        self.admin = create_engine(postgres, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        self.database = f"chm_bench_{os.getpid()}_{secrets.token_hex(3)}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.database}"'))
        url = make_url(postgres).set(database=self.database)
        self.database_url = url.render_as_string(hide_password=False)
        self.env = {
            "CHAMELAION_QUEUE": "celery",
            "CHAMELAION_BROKER_URL": redis_url,
            "CHAMELAION_REDIS_KEY_PREFIX": self.prefix,
            "CHAMELAION_DATABASE_URL": self.database_url,
            "CHAMELAION_RATE_LIMIT_GENERATE": "1000000/minute",
            "CHAMELAION_RATE_LIMIT_READ": "1000000/minute",
        }
        self.api = spawn(
            ["serve", "--no-worker", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            self.env,
            root / "api.log",
        )
        wait_for(self._api_up, "the API")
        printed = (root / "api.log").read_text()
        self.key = printed.split("CHAMELAION_API_KEY=", 1)[1].split()[0]
        self.workers = []
        for index in range(workers):
            log = root / f"worker{index}.log"
            self.workers.append(
                spawn(
                    [
                        *("worker", "--concurrency", "1", "--hostname", f"bench{index}@%h"),
                        *("--data-dir", str(self.data_dir)),
                    ],
                    self.env,
                    log,
                )
            )

            def ready(log: Path = log) -> bool:
                return " ready." in log.read_text()

            wait_for(ready, "a worker")
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}/api/v1",
            headers={"x-api-key": self.key},
            timeout=60,
        )

    def _api_up(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def submit(self, video: Path, audio: Path) -> str:
        with video.open("rb") as v, audio.open("rb") as a:
            response = self.client.post(
                "/lipsync/generate-with-media", files={"video": v, "audio": a}
            )
        response.raise_for_status()
        return str(response.json()["request_id"])

    def times(self, ids: list[str]) -> list[tuple[str, datetime, datetime, datetime]]:
        """(status, created, started, finished) of each job, waiting until all are done."""
        engine = create_engine(self.database_url, poolclass=NullPool)
        query = text(
            "SELECT status, created_at, started_at, finished_at, error_message "
            "FROM lipsync_requests WHERE id = ANY(:ids)"
        )
        deadline = time.monotonic() + DEADLINE
        try:
            while True:
                with engine.connect() as connection:
                    rows = connection.execute(query, {"ids": ids}).all()
                if all(row[0] in ("completed", "failed") for row in rows):
                    for row in rows:
                        if row[0] == "failed":
                            print(f"failed job: {row[4]}", file=sys.stderr)
                    return [(row[0], row[1], row[2], row[3]) for row in rows]
                if time.monotonic() > deadline:
                    raise RuntimeError("jobs did not finish in time")
                time.sleep(0.2)
        finally:
            engine.dispose()

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time so far of the API and of all the workers (with their pool processes)."""

        def tree(pid: int) -> float:
            root = psutil.Process(pid)
            return sum(sum(p.cpu_times()[:2]) for p in [root, *root.children(recursive=True)])

        machine = psutil.cpu_times()
        return {
            "api": tree(self.api.pid),
            "workers": sum(tree(w.pid) for w in self.workers),
            "machine": sum(machine) - machine.idle - machine.iowait,
        }

    def close(self) -> None:
        self.client.close()
        for process in [*self.workers, self.api]:
            stop(process)
        client = redis.Redis.from_url(self.redis_url)
        for key in client.scan_iter(match=f"{self.prefix}:*", count=1000):
            client.delete(key)
        client.close()
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
        self.admin.dispose()


def run(
    workers: int, jobs: int, paced: int, args: argparse.Namespace, media: Path
) -> dict[str, float]:
    video, audio = media / "tiny.mp4", media / "tiny.wav"
    with tempfile.TemporaryDirectory(prefix=f"scale-{workers}-") as folder:
        cluster = Cluster(Path(folder), workers, args.postgres, args.redis)
        try:
            cluster.times([cluster.submit(video, audio) for _ in range(workers)])  # warm-up

            cpu_before, clock = cluster.cpu_seconds(), time.monotonic()
            with ThreadPoolExecutor(4) as pool:
                ids = list(pool.map(lambda _: cluster.submit(video, audio), range(jobs)))
            rows = cluster.times(ids)
            cpu = {
                name: (after - cpu_before[name]) / (time.monotonic() - clock)
                for name, after in cluster.cpu_seconds().items()
            }
            first = min(row[1] for row in rows)
            last = max(row[3] for row in rows)
            span = (last - first).total_seconds()
            burst_wait = [(row[2] - row[1]).total_seconds() for row in rows]
            failed = sum(row[0] != "completed" for row in rows)

            interval = 1.5 * span / jobs
            paced_ids = []
            for _ in range(paced):
                started = time.monotonic()
                paced_ids.append(cluster.submit(video, audio))
                time.sleep(max(0.0, interval - (time.monotonic() - started)))
            paced_rows = cluster.times(paced_ids)
            paced_wait = [(row[2] - row[1]).total_seconds() for row in paced_rows]
            failed += sum(row[0] != "completed" for row in paced_rows)
        finally:
            cluster.close()
    return {
        "workers": workers,
        "jobs_per_minute": jobs / span * 60,
        "span": span,
        "burst_p50": statistics.median(burst_wait),
        "burst_max": max(burst_wait),
        "paced_p50": statistics.median(paced_wait),
        "paced_p95": percentile(paced_wait, 0.95),
        "failed": failed,
        "api_cpu": cpu["api"],
        "workers_cpu": cpu["workers"],
        "machine_cpu": cpu["machine"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=30, help="burst size (30)")
    parser.add_argument("--paced", type=int, default=12, help="paced jobs (12)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--postgres", default=POSTGRES, help="server to create databases on")
    parser.add_argument("--redis", default=REDIS)
    args = parser.parse_args()

    import mediagen

    with tempfile.TemporaryDirectory(prefix="scale-media-") as folder:
        media = Path(folder)
        mediagen.write_face_video(media / "tiny.mp4", 1.0, 25.0, 160, 120)
        mediagen.write_wav(media / "tiny.wav", mediagen.phrases_with_gaps(["hello"], gap=0.2))
        results = [run(n, args.jobs, args.paced, args, media) for n in args.workers]

    print(f"cores: {os.cpu_count()}; jobs: 1 s 160x120 talking head + a word (upload)")
    print(
        f"{'workers':>7}  {'jobs/min':>8}  {'burst s':>7}  {'wait p50':>8}  {'wait max':>8}  "
        f"{'paced p50':>9}  {'paced p95':>9}  failed  cores busy: workers + API (machine)"
    )
    for r in results:
        print(
            f"{r['workers']:>7}  {r['jobs_per_minute']:>8.1f}  {r['span']:>7.1f}  "
            f"{r['burst_p50']:>7.2f}s  {r['burst_max']:>7.2f}s  "
            f"{r['paced_p50'] * 1000:>7.0f}ms  {r['paced_p95'] * 1000:>7.0f}ms  {r['failed']:>6}  "
            f"{r['workers_cpu']:.2f} + {r['api_cpu']:.2f} ({r['machine_cpu']:.2f})"
        )
    if len(results) >= 2:
        ratio = results[-1]["jobs_per_minute"] / results[0]["jobs_per_minute"]
        print(f"scaling {results[0]['workers']} -> {results[-1]['workers']} workers: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
