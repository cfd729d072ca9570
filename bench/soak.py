"""Soak: the real service left running under a steady mix of jobs while its processes are killed.

    .venv/bin/python bench/soak.py [--minutes 30] [--rate 6] [--kill-every 150] [--grace 5]

One `chamelaion serve` (SQLite, its own data dir, one embedded worker) on loopback, with a short
output retention and a frequent reaper, so that a data dir that only grows shows within the run.
For `--minutes` it submits `--rate` jobs a minute (3-5 s generated clips, so a job takes seconds on
two loaded cores), a seeded mix of: uploads and URL jobs (served by a loopback file server), a
third of them asking for a webhook (to a loopback receiver); jobs cancelled or deleted a few
seconds after they were made; and bad inputs (an undecodable file by URL, a faceless video, an
unreachable URL). Every submission carries an `Idempotency-Key` and is retried while the server is
down, as a studio's client does, so a kill mid-upload neither loses a job nor makes two.

Every `--kill-every` seconds it SIGKILLs, in turn, the engine worker process (the server's
supervisor restarts it) or the serve process itself (its workers die with it; the soak restarts it
on the same port and data dir, and the server re-queues what was running once its lease is out).

After the last submission it waits up to `--grace` minutes for every job to end and every owed
webhook to arrive, then prints: jobs submitted, completed, failed (by error_message), cancelled,
deleted, stuck (not finished by then); webhooks received against owed; the data dir's disk use
sampled through the run (job files, database, logs); the serve process's and the worker's peak
RSS. It checks and prints the invariants: submitted = completed + failed + cancelled + deleted,
nothing stuck or lost, no job completed twice (the workers' log lines), no job notified twice.
Exit status 1 if an invariant fails.
"""

from __future__ import annotations

import argparse
import functools
import heapq
import json
import os
import platform
import random
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx
import psutil
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the test harness and media generator

import mediagen  # noqa: E402
import realserver  # noqa: E402
from server.helpers import (  # noqa: E402
    REDIS_URL,
    Receiver,
    Server,
    close_databases,
    new_key,
    secret_for,
    webhook_receiver,
)
from server.test_scaleout import LEASE_SECONDS, CeleryWorker, celery_env  # noqa: E402

RETENTION_SECONDS = 120
REAPER_SECONDS = 30

DISK_SAMPLE_SECONDS = 20.0
RSS_SAMPLE_SECONDS = 1.0
SUBMIT_PATIENCE = 180.0  # a restart takes seconds; only a server that never comes back waits this
FINISHED = {"completed", "failed", "cancelled"}

# (kind, weight): what the soak asks for, and in what proportion.
MIX = [
    ("upload", 30),
    ("url", 22),
    ("cancel", 10),
    ("delete", 8),
    ("faceless", 10),
    ("broken url", 10),
    ("unreachable url", 10),
]


@dataclass
class Media:
    faces: list[tuple[Path, Path]]  # (video, audio) pairs, 3-5 s
    faceless: Path
    broken: Path  # named .mp4, holds no video
    base_url: str  # the loopback file server's, serving the directory of all of these
    unreachable: str  # a loopback port nothing listens on

    def url(self, path: Path) -> str:
        return f"{self.base_url}/{path.name}"


def make_media(folder: Path) -> list[tuple[Path, Path]]:
    lines = [["hello mama", "good morning"], ["see you soon", "thank you"], ["open the window"]]
    faces = []
    for index, (seconds, phrases) in enumerate(zip((3.0, 4.0, 5.0), lines, strict=True)):
        audio = mediagen.write_wav(
            folder / f"speech{index}.wav", mediagen.phrases_with_gaps(phrases, gap=0.4)
        )
        video = mediagen.write_face_video(folder / f"face{index}.mp4", seconds, 25.0, 160, 120)
        faces.append((video, audio))
    mediagen.write_blank_video(folder / "faceless.mp4", 3.0, size=160)
    (folder / "broken.mp4").write_bytes(random.Random(7).randbytes(200_000))
    return faces


@dataclass
class Submitted:
    id: str
    kind: str
    webhook: bool
    action: str | None = None  # "cancel" or "delete", once done
    action_status: int | None = None


@dataclass
class Samples:
    disk: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    serve_rss: int = 0
    worker_rss: int = 0
    kills: list[tuple[float, str, bool]] = field(default_factory=list)  # (when, what, mid-job)


class Service:
    """The service under test and how to kill parts of it: one serve process with an embedded
    worker, or (`scaleout`) an API-only serve process and a `chamelaion worker` (Celery) on
    PostgreSQL and Redis at 127.0.0.1, each in a database and key prefix of its own."""

    def __init__(self, data_dir: Path, scaleout: bool) -> None:
        env = {
            "CHAMELAION_ALLOW_PRIVATE_URLS": "true",
            "CHAMELAION_OUTPUT_RETENTION_SECONDS": str(RETENTION_SECONDS),
            "CHAMELAION_REAPER_INTERVAL_SECONDS": str(REAPER_SECONDS),
            "CHAMELAION_ORPHAN_GRACE_SECONDS": "60",
            "CHAMELAION_WEBHOOK_RETRY_BASE_SECONDS": "2",
            "CHAMELAION_MIN_FREE_BYTES": "0",
            "CHAMELAION_ACCESS_LOG": "false",
        }
        self.celery: CeleryWorker | None = None
        self.redis_prefix = f"chm-soak-{os.getpid()}-{secrets.token_hex(4)}"
        if scaleout:  # celery_env: the broker, a database of its own, the lease
            env = {**env, **celery_env(data_dir, self.redis_prefix)}
            self.server = Server(data_dir, env=env, workers=0)
            self.celery = CeleryWorker(data_dir, env, "soak-worker")
        else:
            env["CHAMELAION_JOB_LEASE_SECONDS"] = str(LEASE_SECONDS)
            self.server = Server(data_dir, env=env, workers=1)
        self.lock = threading.Lock()  # held while a process is replaced

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    def describe(self) -> str:
        if self.celery is None:
            return "1 serve process (SQLite) with 1 embedded worker"
        return (
            "1 API-only serve process and 1 Celery worker (--concurrency 1) on PostgreSQL and "
            "Redis at 127.0.0.1"
        )

    def start(self) -> None:
        self.server.start()
        if self.celery is not None:
            self.celery.start()

    def stop(self) -> None:
        if self.celery is not None:
            self.celery.stop()
        self.server.stop()
        if self.celery is not None:
            client = redis.Redis.from_url(REDIS_URL)
            for key in client.scan_iter(match=f"{self.redis_prefix}:*", count=1000):
                client.delete(key)
            client.close()
        close_databases()

    def serve_process(self) -> psutil.Process | None:
        with self.lock:
            return _alive(self.server.process)

    def workers(self) -> list[psutil.Process]:
        """The engine worker processes: the embedded ones (spawned children of serve, not
        multiprocessing's tracker), or the Celery worker and its pool."""
        with self.lock:
            parent = _alive(self.server.process if self.celery is None else self.celery.process)
        if parent is None:
            return []
        try:
            if self.celery is not None:
                return [parent, *parent.children()]
            children = parent.children()
            return [c for c in children if "resource_tracker" not in " ".join(c.cmdline())]
        except psutil.NoSuchProcess:
            return []

    def kill_worker(self) -> bool:
        """SIGKILL the engine worker: the embedded one is restarted by the server's supervisor,
        the Celery one here (a machine that died and came back)."""
        if self.celery is not None:
            with self.lock:
                self.celery.kill()
                self.celery.start()
            return True
        workers = self.workers()
        for worker in workers:
            worker.send_signal(signal.SIGKILL)
        return bool(workers)

    def kill_and_restart_serve(self) -> None:
        with self.lock:
            self.server.kill()
            self.server.start()

    def logs(self) -> str:
        """Every serve process's stderr and the Celery worker's log (the workers log there)."""
        paths = sorted(self.data_dir.glob("serve-*.err"))
        if self.celery is not None:
            paths.append(self.celery.log_path)
        return "".join(p.read_text(errors="replace") for p in paths)


def _alive(process: subprocess.Popen[bytes] | None) -> psutil.Process | None:
    try:
        return psutil.Process(process.pid) if process and process.poll() is None else None
    except psutil.NoSuchProcess:
        return None


def disk_use(data_dir: Path) -> dict[str, int]:
    """Bytes in the data dir: job files (inputs, outputs), the database, the server's logs."""
    use = Counter[str]()
    for path in data_dir.rglob("*"):
        try:
            if not path.is_file():
                continue
            size = path.stat().st_size
        except FileNotFoundError:
            continue  # removed while we looked
        relative = path.relative_to(data_dir)
        if relative.parts[0] in ("inputs", "outputs"):
            use["files"] += size
        elif relative.name.startswith("chamelaion.db"):
            use["database"] += size
        elif relative.suffix in (".out", ".err", ".log"):
            use["logs"] += size
        else:
            use["other"] += size
    return dict(use)


def monitor(service: Service, samples: Samples, stop: threading.Event) -> None:
    started = time.monotonic()
    next_disk = started
    while not stop.wait(RSS_SAMPLE_SECONDS):
        serve = service.serve_process()
        try:
            if serve is not None:
                samples.serve_rss = max(samples.serve_rss, serve.memory_info().rss)
            for worker in service.workers():
                samples.worker_rss = max(samples.worker_rss, worker.memory_info().rss)
        except psutil.NoSuchProcess:
            pass
        if time.monotonic() >= next_disk:
            samples.disk.append((time.monotonic() - started, disk_use(service.data_dir)))
            next_disk += DISK_SAMPLE_SECONDS


def killer(
    service: Service,
    key: str,
    every: float,
    jobs: list[Submitted],
    samples: Samples,
    stop: threading.Event,
) -> None:
    """Every `every` seconds, once a job is running (or a minute passed), kill in turn the
    worker or the serve process: a kill that lands on an idle service tests little."""
    started = time.monotonic()
    turn = 0
    with httpx.Client(base_url=service.server.api, headers={"x-api-key": key}) as client:
        while not stop.wait(every):
            turn += 1
            mid_job = _until_a_job_runs(client, jobs, stop)
            when = time.monotonic() - started
            if turn % 2:
                if service.kill_worker():
                    samples.kills.append((when, "worker", mid_job))
            else:
                service.kill_and_restart_serve()
                samples.kills.append((when, "serve", mid_job))


def _until_a_job_runs(client: httpx.Client, jobs: list[Submitted], stop: threading.Event) -> bool:
    """Wait up to a minute for one of the latest jobs to be processing; whether one was."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not stop.is_set():
        for job in jobs[-3:]:
            try:
                response = client.get(f"/lipsync/requests/{job.id}")
            except httpx.TransportError:
                continue  # restarting
            if response.status_code == 200 and response.json()["status"] == "processing":
                return True
        time.sleep(0.1)
    return False


def call(request: Callable[[], httpx.Response]) -> httpx.Response:
    """A request retried while the server is down or restarting (connection refused or cut)."""
    deadline = time.monotonic() + SUBMIT_PATIENCE
    while True:
        try:
            return request()
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def submit(
    client: httpx.Client, kind: str, media: Media, webhook: str | None, rng: random.Random
) -> str:
    video, audio = rng.choice(media.faces)
    data: dict[str, str] = {"webhook_url": webhook} if webhook else {}
    headers = {"Idempotency-Key": str(uuid.uuid4())}  # the same on every retry of this job
    if kind in ("url", "broken url", "unreachable url"):
        source = {
            "url": media.url(video),
            "broken url": media.url(media.broken),
            "unreachable url": media.unreachable,
        }[kind]
        body = {
            "inputs": [
                {"type": "video", "url": source},
                {"type": "audio", "url": media.url(audio)},
            ],
            **data,
        }
        response = call(
            functools.partial(client.post, "/lipsync/generate", json=body, headers=headers)
        )
    else:
        if kind == "faceless":
            video = media.faceless

        def upload() -> httpx.Response:  # the files opened afresh on each retry
            with video.open("rb") as v, audio.open("rb") as a:
                return client.post(
                    "/lipsync/generate-with-media",
                    files={"video": v, "audio": a},
                    data=data,
                    headers=headers,
                )

        response = call(upload)
    if response.status_code != 200:
        raise RuntimeError(f"{kind} job refused: {response.status_code} {response.text}")
    return str(response.json()["request_id"])


def final_states(
    client: httpx.Client, jobs: list[Submitted]
) -> dict[str, dict[str, object] | None]:
    """Each job's request object, None where it is not found (deleted)."""
    states: dict[str, dict[str, object] | None] = {}
    for job in jobs:
        response = call(functools.partial(client.get, f"/lipsync/requests/{job.id}"))
        states[job.id] = response.json() if response.status_code == 200 else None
    return states


def notifications(receiver: Receiver) -> dict[str, list[tuple[str, str]]]:
    """Per request id, the (delivery id, status) of each webhook received."""
    out: dict[str, list[tuple[str, str]]] = {}
    with receiver.lock:
        received = list(receiver.received)
    for delivery in received:
        body = json.loads(delivery.body)
        headers = {k.lower(): v for k, v in delivery.headers.items()}
        out.setdefault(body["id"], []).append((headers["chamelaion-delivery"], body["status"]))
    return out


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


@dataclass
class Run:
    jobs: list[Submitted]
    states: dict[str, dict[str, object] | None]
    hooks: dict[str, list[tuple[str, str]]]
    samples: Samples
    logs: str
    submit_seconds: float
    grace_seconds: float
    service: Service


def drive(args: argparse.Namespace, folder: Path) -> Run:
    media_dir = folder / "media"
    media_dir.mkdir()
    faces = make_media(media_dir)
    data_dir = folder / "data"
    service = Service(data_dir, args.scaleout)  # first: it may give the data dir its database
    key = new_key(data_dir, "soak")
    secret_for(data_dir, key.account_id)
    rng = random.Random(args.seed)
    kinds, weights = zip(*MIX, strict=True)
    jobs: list[Submitted] = []
    actions: list[tuple[float, int, str]] = []  # (due, index in jobs, "cancel"/"delete")
    samples = Samples()
    stop = threading.Event()
    with (
        realserver.media_server(media_dir) as base_url,
        webhook_receiver() as receiver,
        httpx.Client(
            base_url=service.server.api, headers={"x-api-key": key.key}, timeout=60
        ) as client,
    ):
        media = Media(
            faces,
            media_dir / "faceless.mp4",
            media_dir / "broken.mp4",
            base_url,
            f"http://127.0.0.1:{realserver.free_port()}/gone.mp4",
        )
        service.start()
        threads = [
            threading.Thread(target=monitor, args=(service, samples, stop), daemon=True),
            threading.Thread(
                target=killer,
                args=(service, key.key, args.kill_every, jobs, samples, stop),
                daemon=True,
            ),
        ]
        try:
            for thread in threads:
                thread.start()
            started = time.monotonic()
            interval = 60.0 / args.rate
            end = started + args.minutes * 60
            due = started
            while due < end or actions:
                now = time.monotonic()
                while actions and actions[0][0] <= now:
                    _, index, action = heapq.heappop(actions)
                    job = jobs[index]
                    path = f"/lipsync/requests/{job.id}"
                    response = call(
                        functools.partial(client.post, f"{path}/cancel")
                        if action == "cancel"
                        else functools.partial(client.delete, path)
                    )
                    job.action, job.action_status = action, response.status_code
                if due < end and now >= due:
                    kind = rng.choices(kinds, weights)[0]
                    webhook = kind != "delete" and rng.random() < 1 / 3
                    job_id = submit(client, kind, media, receiver.url if webhook else None, rng)
                    jobs.append(Submitted(job_id, kind, webhook))
                    if kind in ("cancel", "delete"):
                        heapq.heappush(actions, (now + rng.uniform(0.5, 8.0), len(jobs) - 1, kind))
                    due += interval
                time.sleep(0.05)
            submit_seconds = time.monotonic() - started

            # Grace: every job finished and every owed webhook arrived, or the time is up.
            grace_end = time.monotonic() + args.grace * 60
            while True:
                states = final_states(client, jobs)
                hooks = notifications(receiver)
                unfinished = [i for i, s in states.items() if s and s["status"] not in FINISHED]
                owed = [j.id for j in jobs if j.webhook and states[j.id] and j.id not in hooks]
                if (not unfinished and not owed) or time.monotonic() > grace_end:
                    break
                time.sleep(5)
            grace_seconds = time.monotonic() - started - submit_seconds
            stop.wait(args.settle)  # the last outputs seen to go too
        finally:
            stop.set()
            for thread in threads:
                thread.join()
            logs = service.logs()
            service.stop()
        return Run(jobs, states, hooks, samples, logs, submit_seconds, grace_seconds, service)


def report(args: argparse.Namespace, run: Run, load_before: tuple[float, ...]) -> bool:
    jobs, states, hooks, samples = run.jobs, run.states, run.hooks, run.samples
    status = {j.id: (None if states[j.id] is None else states[j.id]["status"]) for j in jobs}  # type: ignore[index]
    counts = Counter(s or "deleted" for s in status.values())
    failures = Counter(
        str(states[j.id]["error_message"])  # type: ignore[index]
        for j in jobs
        if status[j.id] == "failed"
    )
    deleted_asked = {j.id for j in jobs if j.action == "delete"}
    lost = [j.id for j in jobs if status[j.id] is None and j.id not in deleted_asked]
    stuck = [j.id for j in jobs if status[j.id] not in FINISHED and status[j.id] is not None]
    # The worker logs `job <id>: completed` once it has recorded the job as completed (a JSON
    # line from serve, a plain one from Celery).
    completions = Counter(re.findall(r'job ([0-9a-f-]{36}): completed(?=["\s]|$)', run.logs))
    twice = [job_id for job_id, n in completions.items() if n > 1]
    completed = {j.id for j in jobs if status[j.id] == "completed"}
    # a job deleted after it completed logged its completion too
    completed_then_deleted = set(completions) - completed
    deleted = {j.id for j in jobs if status[j.id] is None}
    owed = [j.id for j in jobs if j.webhook and status[j.id] in FINISHED]
    missing = [i for i in owed if i not in hooks]
    notified_twice = [i for i, got in hooks.items() if len({d for d, _ in got}) > 1]
    wrong = [i for i in owed if i in hooks and hooks[i][-1][1] != status[i]]
    by_kind = Counter((j.kind, status[j.id] or "deleted") for j in jobs)

    print(
        f"soak: {args.minutes:g} min of submissions on {platform.node()}, {os.cpu_count()} cores, "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; load average before "
        f"{load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} (1 min)"
    )
    print(
        f"service: {run.service.describe()}; {args.rate:g} jobs/min of 3-5 s "
        f"160x120 clips; output retention {RETENTION_SECONDS} s, reaper every {REAPER_SECONDS} s, "
        f"lease {LEASE_SECONDS} s"
    )
    kills = Counter(what for _, what, _ in samples.kills)
    mid_job = sum(running for _, _, running in samples.kills)
    print(
        f"kills: {kills['worker']} worker SIGKILLs (then restarted), "
        f"{kills['serve']} serve SIGKILLs (restarted), one every {args.kill_every:g} s; "
        f"{mid_job} of them while a job was processing"
    )
    print(
        f"submitted {len(jobs)}: "
        + ", ".join(f"{k} {n}" for k, n in Counter(j.kind for j in jobs).most_common())
    )
    print(
        f"completed {counts['completed']}, failed {counts['failed']}, "
        f"cancelled {counts['cancelled']}, deleted {counts['deleted']}, "
        f"stuck {len(stuck)}, lost {len(lost)} (the last job finished "
        f"{run.grace_seconds / 60:.1f} min after the last submission; stuck: not finished "
        f"{args.grace:g} min after it)"
    )
    for message, n in failures.most_common():
        print(f"  failed {n:>4}  {message}")
    print(
        "outcome by kind: " + "; ".join(f"{k} -> {s} {n}" for (k, s), n in sorted(by_kind.items()))
    )
    print(
        f"webhooks: owed {len(owed)}, received for {len(owed) - len(missing)} "
        f"({sum(len(v) for v in hooks.values())} POSTs), missing {len(missing)}, "
        f"notified twice {len(notified_twice)}, status mismatch {len(wrong)}"
    )
    print("disk use of the data dir (files = inputs + outputs):")
    print(f"  {'min':>6}  {'files':>10}  {'database':>10}  {'logs':>10}")
    step = max(1, len(samples.disk) // 15)
    for seconds, use in [*samples.disk[::step], samples.disk[-1]]:
        print(
            f"  {seconds / 60:>6.1f}  {mib(use.get('files', 0)):>10}  "
            f"{mib(use.get('database', 0)):>10}  {mib(use.get('logs', 0)):>10}"
        )
    settled = [u.get("files", 0) for s, u in samples.disk if s > RETENTION_SECONDS + REAPER_SECONDS]
    half = len(settled) // 2
    first, second = max(settled[:half] or [0]), max(settled[half:] or [0])
    print(
        f"  files once retention applies: max {mib(first)} in the first half, {mib(second)} in "
        f"the second; at the end {mib(settled[-1] if settled else 0)}"
    )
    print(f"peak RSS: serve {mib(samples.serve_rss)}, worker {mib(samples.worker_rss)}")
    print(
        f"worker log: {sum(completions.values())} completions of {len(completions)} jobs "
        f"({len(completed_then_deleted)} deleted afterwards), "
        f"{len(re.findall(r': attempt [0-9]+ started', run.logs))} attempts started, "
        f"{len(re.findall(r': attempt ([2-9]|[0-9][0-9]+) started', run.logs))} of them retries"
    )

    checks = {
        "submitted = completed + failed + cancelled + deleted": len(jobs)
        == counts["completed"] + counts["failed"] + counts["cancelled"] + counts["deleted"],
        "0 stuck": not stuck,
        "0 lost (not found without being deleted)": not lost,
        "no job completed twice (one completion log line per completed job)": not twice
        and completed <= set(completions)
        and completed_then_deleted <= deleted,
        "every owed webhook received, once, with the final status": not (
            missing or notified_twice or wrong
        ),
    }
    if len(settled) >= 4:  # else the run ended before retention could show
        checks["job files flat (second half <= 1.5 x first half)"] = second <= 1.5 * max(first, 1)
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    if len(settled) < 4:
        print("n/a   job files flat: too short a run to see retention and the reaper at work")
    for label, ids in (("stuck", stuck), ("lost", lost), ("twice", twice), ("missing", missing)):
        if ids:
            print(f"  {label}: {' '.join(ids[:10])}", file=sys.stderr)
    return all(checks.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="of submissions (30)")
    parser.add_argument("--rate", type=float, default=6.0, help="jobs a minute (6)")
    parser.add_argument("--kill-every", type=float, default=150.0, help="seconds (150)")
    parser.add_argument("--grace", type=float, default=5.0, help="minutes to finish (5)")
    parser.add_argument(
        "--settle",
        type=float,
        default=RETENTION_SECONDS + 2 * REAPER_SECONDS,
        help="seconds to keep sampling the disk after the grace (retention + 2 reaper periods)",
    )
    parser.add_argument(
        "--scaleout",
        action="store_true",
        help="an API-only serve and a Celery worker on PostgreSQL and Redis at 127.0.0.1",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="soak-") as folder:
        run = drive(args, Path(folder))
    return 0 if report(args, run, load_before) else 1


if __name__ == "__main__":
    raise SystemExit(main())
