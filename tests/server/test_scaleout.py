"""Scale-out (issue 6): API replicas and Celery workers on PostgreSQL and Redis, all real
processes on loopback. Each test gets its own database and its own Redis key prefix."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import av
import httpx
import psutil
import pytest
import redis
from sqlalchemy import create_engine, select, text
from sqlalchemy.pool import NullPool

import mediagen
from chamelaion import verify_webhook
from chamelaion.server.migrate import MIGRATION_LOCK_KEY
from chamelaion.server.models import InputKind, JobSegment, LipsyncJob, utcnow
from chamelaion.server.queue.hooks import job_store
from chamelaion.server.queue.jobs import submit
from chamelaion.server.queue.worker import TEST_STOP_AT
from server.helpers import (
    REDIS_URL,
    Key,
    Receiver,
    Server,
    WorkDirWatcher,
    assert_whole_output,
    completed_files,
    expire_lease,
    expire_segment_lease,
    file_identity,
    files_of,
    finished_segments,
    new_key,
    secret_for,
    sessions_for,
    start_long_job,
    upload,
    use_postgres,
)

JOB_DEADLINE = 300.0  # a ceiling only a broken cluster reaches, never an expectation of speed
# Long enough that a live worker's lease never runs out because a busy machine delayed its
# heartbeat (the tests count attempts); a killed worker's lease is expired in the database
# (`expire_lease`) instead of waited out. It is also how long a worker waits before it looks
# again at a job another worker holds (the visibility-timeout test waits that out once).
LEASE_SECONDS = 10


@pytest.fixture(scope="module")
def tiny_inputs(media_dir: Path) -> tuple[Path, Path]:
    """1 s of 160x120 talking head and a word: a job takes about a second."""
    video = mediagen.write_face_video(media_dir / "tiny_face.mp4", 1.0, 25.0, 160, 120)
    audio = mediagen.write_wav(
        media_dir / "tiny_speech.wav", mediagen.phrases_with_gaps(["hello"], gap=0.2)
    )
    return video, audio


@pytest.fixture(scope="module")
def longer_inputs(media_dir: Path) -> tuple[Path, Path]:
    """5 s: a job that is surely still running a few seconds after it started."""
    speech = mediagen.phrases_with_gaps(["hello mama", "good morning", "see you"], gap=0.6)
    audio = mediagen.write_wav(media_dir / "longer_speech.wav", speech)
    video = mediagen.write_face_video(media_dir / "longer_face.mp4", 5.0, 25.0, 160, 120)
    return video, audio


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"chm-test-{os.getpid()}-{secrets.token_hex(4)}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)
    client.close()


def celery_env(data_dir: Path, prefix: str, **extra: str) -> dict[str, str]:
    return {
        "CHAMELAION_QUEUE": "celery",
        "CHAMELAION_BROKER_URL": REDIS_URL,
        "CHAMELAION_REDIS_KEY_PREFIX": prefix,
        "CHAMELAION_DATABASE_URL": use_postgres(data_dir),
        "CHAMELAION_JOB_LEASE_SECONDS": str(LEASE_SECONDS),
        **extra,
    }


@dataclass
class CeleryWorker:
    """A `chamelaion worker` process in a session of its own, so it can be killed whole, like
    the machine it runs on dying."""

    data_dir: Path
    env: dict[str, str]
    name: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    def start(self) -> CeleryWorker:
        command = [sys.executable, "-m", "chamelaion.cli", "worker", "--concurrency", "1"]
        command += ["--hostname", f"{self.name}@%h", "--data-dir", str(self.data_dir)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        deadline = time.monotonic() + JOB_DEADLINE
        while " ready." not in self.log():
            assert self.process.poll() is None, f"worker exited at start:\n{self.log()}"
            assert time.monotonic() < deadline, f"worker not ready:\n{self.log()}"
            time.sleep(0.1)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def owns(self, pid: int) -> bool:
        assert self.process is not None
        return pid in {child.pid for child in psutil.Process(self.process.pid).children()}

    def stopped_pool_process(self) -> psutil.Process:
        """The pool process once it has stopped itself at its `TEST_STOP_AT` point."""
        assert self.process is not None
        deadline = time.monotonic() + JOB_DEADLINE
        while True:
            for child in psutil.Process(self.process.pid).children():
                with contextlib.suppress(psutil.NoSuchProcess):
                    if child.status() == psutil.STATUS_STOPPED:
                        return child
            assert self.process.poll() is None, f"worker exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"worker never stopped:\n{self.log()}"
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once: no cleanup of any kind."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # warm shutdown: finish the running job
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture
def cluster_dir(tmp_path: Path) -> Path:
    use_postgres(tmp_path)
    return tmp_path


def client_for(server: Server, key: Key) -> httpx.Client:
    return httpx.Client(base_url=server.api, headers={"x-api-key": key.key}, timeout=30)


def rows(data_dir: Path, ids: list[str]) -> dict[str, LipsyncJob]:
    with sessions_for(data_dir)() as session:
        found = session.scalars(select(LipsyncJob).where(LipsyncJob.id.in_(ids))).all()
        return {job.id: job for job in found}


def wait_until_finished(data_dir: Path, ids: list[str], timeout: float) -> dict[str, LipsyncJob]:
    deadline = time.monotonic() + timeout
    while True:
        jobs = rows(data_dir, ids)
        pending = [i for i in ids if jobs[i].status not in ("completed", "failed")]
        if not pending:
            return jobs
        assert time.monotonic() < deadline, f"{len(pending)} jobs unfinished: {pending}"
        time.sleep(0.2)


def claims(logs: str, job_id: str) -> int:
    """How many times a worker took the job (one line per claim, attempt number included)."""
    return len(re.findall(rf"job {job_id}: claimed by ", logs))


def assert_one_output_each(data_dir: Path, ids: list[str]) -> None:
    for job_id in ids:
        assert files_of(data_dir, job_id) == completed_files(job_id)


def test_twenty_jobs_survive_a_killed_worker_and_an_api_restart(
    cluster_dir: Path,
    redis_prefix: str,
    tiny_inputs: tuple[Path, Path],
    longer_inputs: tuple[Path, Path],
) -> None:
    env = celery_env(cluster_dir, redis_prefix)
    key = new_key(cluster_dir, "scale")
    api = Server(cluster_dir, env=env).start()
    workers = [CeleryWorker(cluster_dir, env, f"w{i}").start() for i in (1, 2)]
    ids: list[str] = []
    try:
        with client_for(api, key) as client:
            victim = upload(client, longer_inputs, "victim")  # long enough to die mid-way
            ids.append(victim)
            ids += [upload(client, tiny_inputs, f"first-{i}") for i in range(9)]
        # Wait until the engine is working on the long job, then kill its worker outright.
        deadline = time.monotonic() + JOB_DEADLINE
        while not ((row := rows(cluster_dir, [victim])[victim]).progress > 0):
            assert time.monotonic() < deadline, "the long job never got going"
            time.sleep(0.05)
        assert row.status == "processing" and row.worker_id is not None
        holder_pid = int(row.worker_id.split(":")[1])  # hostname:pid:nonce
        (killed,) = [worker for worker in workers if worker.owns(holder_pid)]
        holder = psutil.Process(holder_pid)
        killed.kill()
        _gone, alive = psutil.wait_procs([holder], timeout=10)
        assert not alive, "the pool process outlived its worker"
        assert rows(cluster_dir, [victim])[victim].status == "processing"  # killed mid-job
        expire_lease(cluster_dir, victim)  # the other worker's sweep re-queues it

        api.kill()  # and the API goes down too, while jobs are still queued
        api.start()
        with client_for(api, key) as client:
            ids += [upload(client, tiny_inputs, f"second-{i}") for i in range(10)]

        jobs = wait_until_finished(cluster_dir, ids, JOB_DEADLINE)
        logs = "".join(worker.log() for worker in workers)
        for job_id, job in jobs.items():
            assert job.status == "completed", (job_id, job.status, job.error_message)
            expected = 2 if job_id == victim else 1
            assert (job.attempts, claims(logs, job_id)) == (expected, expected), job_id
        assert "outcome dropped" not in logs
        assert_one_output_each(cluster_dir, ids)
        with client_for(api, key) as client:
            listing = client.get("/lipsync/requests", params={"limit": 100}).json()
        assert listing["pagination"]["total"] == 20
    finally:
        for worker in workers:
            worker.stop()
        api.stop()


def test_a_message_back_from_the_visibility_timeout_does_not_run_the_job_again(
    cluster_dir: Path, redis_prefix: str, longer_inputs: tuple[Path, Path]
) -> None:
    """Redis hands an unacknowledged message out again after the visibility timeout, here 1 s,
    while the job (several seconds) still runs: the other worker sees the job held, retries
    later, and then finds it completed."""
    env = celery_env(cluster_dir, redis_prefix, CHAMELAION_BROKER_VISIBILITY_TIMEOUT="1")
    key = new_key(cluster_dir, "visibility")
    api = Server(cluster_dir, env=env).start()
    workers = [CeleryWorker(cluster_dir, env, f"w{i}").start() for i in (1, 2)]
    try:
        with client_for(api, key) as client:
            job_id = upload(client, longer_inputs, "long")
        job = wait_until_finished(cluster_dir, [job_id], JOB_DEADLINE)[job_id]
        logs = "".join(worker.log() for worker in workers)
        assert f"job {job_id}: held by another worker; retrying later" in logs  # it came back
        assert (job.status, job.attempts, claims(logs, job_id)) == ("completed", 1, 1)
        # The retried message still finds the job once it is done, and leaves it alone.
        deadline = time.monotonic() + LEASE_SECONDS + JOB_DEADLINE
        while f"job {job_id}: completed; nothing to do" not in (
            logs := "".join(w.log() for w in workers)
        ):
            assert time.monotonic() < deadline, "the retried message never came back"
            time.sleep(0.2)
        assert claims(logs, job_id) == 1
        assert_one_output_each(cluster_dir, [job_id])
    finally:
        for worker in workers:
            worker.stop()
        api.stop()


def test_a_pool_process_killed_mid_job_hands_the_job_on(
    cluster_dir: Path, redis_prefix: str, longer_inputs: tuple[Path, Path]
) -> None:
    """Only the engine process dies; its worker lives, requeues the message at once (reject on
    worker lost) and starts a new pool process. The job runs again, once, to completion."""
    env = celery_env(cluster_dir, redis_prefix)
    key = new_key(cluster_dir, "pool")
    api = Server(cluster_dir, env=env).start()
    worker = CeleryWorker(cluster_dir, env, "w").start()
    try:
        with client_for(api, key) as client:
            job_id = upload(client, longer_inputs, "pool")
        deadline = time.monotonic() + JOB_DEADLINE
        while not ((row := rows(cluster_dir, [job_id])[job_id]).progress > 0):
            assert time.monotonic() < deadline, "the job never got going"
            time.sleep(0.05)
        assert row.worker_id is not None
        holder = psutil.Process(int(row.worker_id.split(":")[1]))
        assert worker.owns(holder.pid)
        holder.kill()
        holder.wait(10)
        expire_lease(cluster_dir, job_id)  # the message is back at once; the job, at the sweep
        job = wait_until_finished(cluster_dir, [job_id], JOB_DEADLINE)[job_id]
        logs = worker.log()
        assert "WorkerLostError" in logs  # Celery noticed, and requeued rather than failed
        assert (job.status, job.attempts, claims(logs, job_id)) == ("completed", 2, 2)
        assert_one_output_each(cluster_dir, [job_id])
    finally:
        worker.stop()
        api.stop()


def test_one_job_is_rendered_by_two_celery_workers(
    cluster_dir: Path, redis_prefix: str, segment_inputs: tuple[Path, Path]
) -> None:
    """The worker that takes a job offers its segments by message; the other worker, idle,
    renders some of them; the first joins them all into one whole output."""
    env = celery_env(cluster_dir, redis_prefix, CHAMELAION_SEGMENT_SECONDS="1")
    key = new_key(cluster_dir, "segments")
    api = Server(cluster_dir, env=env).start()
    workers = [CeleryWorker(cluster_dir, env, f"seg{i}").start() for i in (1, 2)]
    try:
        with client_for(api, key) as client:
            job_id = start_long_job(client, segment_inputs)  # 8 s, looped: 8 segments
        job = wait_until_finished(cluster_dir, [job_id], JOB_DEADLINE)[job_id]
        assert (job.status, job.attempts) == ("completed", 1), job.error_message
        summaries = {
            worker.name: re.search(
                rf"job {job_id}: (\d+) segments: (\d+) rendered by this worker, (\d+) by others",
                worker.log(),
            )
            for worker in workers
        }
        (holder,) = [name for name, found in summaries.items() if found]
        found = summaries[holder]
        assert found is not None
        total, mine, others = (int(n) for n in found.groups())
        assert total == 8 and mine + others == total and others >= 1
        (helper,) = [worker for worker in workers if worker.name != holder]
        helped = re.findall(rf"job {job_id}: segment (\d+) rendered", helper.log())
        assert len(helped) == len(set(helped)) == others
        assert_one_output_each(cluster_dir, [job_id])
        with client_for(api, key) as client:
            body = client.get(f"/lipsync/requests/{job_id}").json()
        (cluster_dir / "out.mp4").write_bytes(httpx.get(str(body["output_url"])).content)
        with av.open(str(cluster_dir / "out.mp4")) as container:
            assert sum(1 for _ in container.decode(video=0)) == 8 * 25
    finally:
        for worker in workers:
            worker.stop()
        api.stop()


def test_a_worker_killed_while_joining_is_resumed_without_rendering_again(
    cluster_dir: Path, redis_prefix: str, segment_inputs: tuple[Path, Path]
) -> None:
    """The job's worker is SIGKILLed half-way through writing the output (it stops itself
    there, `TEST_STOP_AT`, so the kill lands mid-join every time). Another worker takes the job
    up, finds every segment rendered, renders none again (files untouched), joins them into a
    whole output, and no half-written output is left."""
    env = celery_env(cluster_dir, redis_prefix, CHAMELAION_SEGMENT_SECONDS="1")
    key = new_key(cluster_dir, "join")
    api = Server(cluster_dir, env=env).start()
    joiner = CeleryWorker(cluster_dir, {**env, TEST_STOP_AT: "join"}, "joiner").start()
    resumer: CeleryWorker | None = None
    try:
        with client_for(api, key) as client:
            job_id = start_long_job(client, segment_inputs)  # 8 s, looped: 8 segments
        stopped = joiner.stopped_pool_process()
        holder = rows(cluster_dir, [job_id])[job_id].worker_id
        assert holder is not None and int(holder.split(":")[1]) == stopped.pid
        # Mid-join: the output half-written under its draft name, not in place.
        outputs = cluster_dir / "outputs"
        (draft,) = [p for p in outputs.iterdir() if job_id in p.name and "joining" in p.name]
        assert draft.stat().st_size > 0 and not (outputs / f"{job_id}.mp4").exists()
        work = cluster_dir / "inputs" / job_id / "segments"
        kept = finished_segments(work)
        assert sorted(kept) == list(range(8)) and {e["by"] for e in kept.values()} == {holder}
        files = [work / entry["file"] for entry in kept.values()]
        before = [file_identity(f) for f in files]

        joiner.kill()
        expire_lease(cluster_dir, job_id)  # the next worker's sweep re-queues it
        watcher = WorkDirWatcher(work, files)
        try:
            resumer = CeleryWorker(cluster_dir, env, "resumer").start()
            job = wait_until_finished(cluster_dir, [job_id], JOB_DEADLINE)[job_id]
        finally:
            watcher.stop()
        assert (job.status, job.attempts) == ("completed", 2), job.error_message
        log = resumer.log()
        assert claims(log, job_id) == 1
        assert f"job {job_id}: resuming: 8 of 8 segments already rendered" in log
        assert f"job {job_id}: 8 segments: 0 rendered by this worker, 0 by others, 8 before" in log
        assert watcher.snapshots, "the second attempt was never observed"
        assert all(finished == kept and ids == before for finished, ids in watcher.snapshots)
        assert_one_output_each(cluster_dir, [job_id])  # the draft is gone
        assert not (cluster_dir / "inputs" / job_id).exists()
        with client_for(api, key) as client:
            body = client.get(f"/lipsync/requests/{job_id}").json()
        (cluster_dir / "out.mp4").write_bytes(httpx.get(str(body["output_url"])).content)
        assert_whole_output(cluster_dir / "out.mp4", segment_inputs[1])
    finally:
        for worker in (joiner, resumer):
            if worker is not None:
                worker.stop()
        api.stop()


def test_a_helper_killed_mid_segment_has_its_segment_taken_back(
    cluster_dir: Path, redis_prefix: str, segment_inputs: tuple[Path, Path]
) -> None:
    """A worker helping with another worker's job is SIGKILLed one frame into its segment (it
    stops itself there, `TEST_STOP_AT`; only a helper reaches that point, so both workers can
    carry it). The job's worker renders the rest, takes the dead helper's segment back once
    its lease has run out, renders it and joins: one attempt, a whole output."""
    env = celery_env(
        cluster_dir, redis_prefix, CHAMELAION_SEGMENT_SECONDS="1", **{TEST_STOP_AT: "segment"}
    )
    key = new_key(cluster_dir, "helper")
    api = Server(cluster_dir, env=env).start()
    workers = [CeleryWorker(cluster_dir, env, f"helper{i}").start() for i in (1, 2)]
    try:
        with client_for(api, key) as client:
            job_id = start_long_job(client, segment_inputs)  # 8 s, looped: 8 segments
        holder = rows(cluster_dir, [job_id])[job_id].worker_id
        assert holder is not None
        (helper,) = [w for w in workers if not w.owns(int(holder.split(":")[1]))]
        stopped = helper.stopped_pool_process()
        with sessions_for(cluster_dir)() as session:
            (segment,) = session.scalars(
                select(JobSegment).where(
                    JobSegment.job_id == job_id,
                    JobSegment.status == "processing",
                    JobSegment.worker_id != holder,
                )
            ).all()
        assert segment.worker_id is not None
        assert int(segment.worker_id.split(":")[1]) == stopped.pid
        # Mid-segment: begun (its draft may not hold a packet yet: the encoder looks ahead),
        # neither in place nor recorded.
        work = cluster_dir / "inputs" / job_id / "segments"
        assert not (work / f"segment-{segment.index:04d}.mp4").exists()
        assert segment.index not in finished_segments(work)

        helper.kill()
        expire_segment_lease(cluster_dir, job_id, segment.index)
        job = wait_until_finished(cluster_dir, [job_id], JOB_DEADLINE)[job_id]
        assert (job.status, job.attempts) == ("completed", 1), job.error_message
        (keeper,) = [w for w in workers if w is not helper]
        log = keeper.log()
        assert f"job {job_id}: segments {segment.index} taken back from a silent worker" in log
        assert f"job {job_id}: 8 segments: 8 rendered by this worker, 0 by others" in log
        assert not re.search(rf"job {job_id}: segment \d+ rendered", helper.log())
        assert_one_output_each(cluster_dir, [job_id])
        assert not (cluster_dir / "inputs" / job_id).exists()  # its draft went with the work dir
        with client_for(api, key) as client:
            body = client.get(f"/lipsync/requests/{job_id}").json()
        (cluster_dir / "out.mp4").write_bytes(httpx.get(str(body["output_url"])).content)
        assert_whole_output(cluster_dir / "out.mp4", segment_inputs[1])
    finally:
        for worker in workers:
            worker.stop()
        api.stop()


def test_a_job_committed_but_never_published_is_swept_up(
    cluster_dir: Path, redis_prefix: str, tiny_inputs: tuple[Path, Path]
) -> None:
    """As if the API died between committing a job and publishing its message."""
    env = celery_env(cluster_dir, redis_prefix)
    account = new_key(cluster_dir, "orphan").account_id
    inputs = cluster_dir / "inputs" / "orphan"
    inputs.mkdir(parents=True)
    video, audio = (inputs / "video.mp4", inputs / "audio.wav")
    video.write_bytes(tiny_inputs[0].read_bytes())
    audio.write_bytes(tiny_inputs[1].read_bytes())
    with sessions_for(cluster_dir)() as session:
        job = LipsyncJob(
            account_id=account,
            input_kind=InputKind.UPLOAD.value,
            video_source=str(video),
            audio_source=str(audio),
            created_at=utcnow() - timedelta(minutes=1),
        )
        submit(session, job)
        session.commit()
        job_id = job.id
    worker = CeleryWorker(cluster_dir, env, "sweeper").start()
    try:
        done = wait_until_finished(cluster_dir, [job_id], JOB_DEADLINE)[job_id]
        assert (done.status, done.attempts) == ("completed", 1)
        assert "sweep: 0 re-queued, 0 failed, 1 published" in worker.log()
    finally:
        worker.stop()


def test_webhooks_are_shared_by_the_workers_and_each_sent_once(
    cluster_dir: Path, redis_prefix: str, receiver: Receiver
) -> None:
    """Twenty deliveries owed at once (cancelling a job owes one, through the "job finished"
    hook), two workers' senders claiming them: every one arrives, none twice."""
    env = celery_env(cluster_dir, redis_prefix, CHAMELAION_ALLOW_PRIVATE_URLS="true")
    key = new_key(cluster_dir, "hooks")
    secret = secret_for(cluster_dir, key.account_id)
    sessions = sessions_for(cluster_dir)
    with sessions() as session:
        jobs = [
            LipsyncJob(
                account_id=key.account_id,
                input_kind=InputKind.URL.value,
                video_source="https://example.com/v.mp4",
                audio_source="https://example.com/a.wav",
                webhook_url=receiver.url,
            )
            for _ in range(20)
        ]
        for job in jobs:
            submit(session, job)
        session.commit()
    store = job_store(sessions)
    assert all(store.cancel(job.id) == "queued" for job in jobs)
    workers = [CeleryWorker(cluster_dir, env, f"hooks{n}").start() for n in range(2)]
    try:
        receiver.wait_for(len(jobs))
        time.sleep(1.0)  # a duplicate, if any, would arrive now
    finally:
        for worker in workers:
            worker.stop()
    sent = [
        verify_webhook(delivery.body, delivery.headers["Chamelaion-Signature"], secret)
        for delivery in receiver.received
    ]
    assert sorted(request.id for request in sent) == sorted(job.id for job in jobs)
    assert {request.status for request in sent} == {"cancelled"}


def test_two_api_replicas_share_one_rate_limit(cluster_dir: Path, redis_prefix: str) -> None:
    env = celery_env(cluster_dir, redis_prefix)
    key = new_key(cluster_dir, "limited", rate_limit_read="4/minute")
    replicas = [Server(cluster_dir, env=env, name=f"api{i}").start() for i in (1, 2)]
    try:
        statuses = []
        for attempt in range(6):
            with client_for(replicas[attempt % 2], key) as client:
                statuses.append(client.get("/lipsync/requests").status_code)
        # Each replica alone would allow four; together they allow four in all.
        assert statuses == [200, 200, 200, 200, 429, 429]
    finally:
        for replica in replicas:
            replica.stop()


def test_serve_no_worker_and_worker_needs_celery(tmp_path: Path) -> None:
    from chamelaion.cli import build_parser

    assert build_parser().parse_args(["serve", "--no-worker"]).workers == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAMELAION_")}
    refused = subprocess.run(
        [sys.executable, "-m", "chamelaion.cli", "worker", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert refused.returncode == 2 and "CHAMELAION_QUEUE=celery" in refused.stdout


def test_replicas_migrating_at_once_wait_for_each_other(tmp_path: Path) -> None:
    """Replicas started together all run `db upgrade`: one migrates, the others wait on the
    advisory lock and then find the schema current, instead of failing on existing tables."""
    url = use_postgres(tmp_path)
    env = {**os.environ, "CHAMELAION_DATABASE_URL": url}
    command = [sys.executable, "-m", "chamelaion.cli", "db", "upgrade", "--data-dir"]
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as holder:
            holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            upgrades = [
                subprocess.Popen(
                    [*command, str(tmp_path / f"r{i}")], env=env, stdout=subprocess.PIPE
                )
                for i in range(3)
            ]
            deadline = time.monotonic() + JOB_DEADLINE
            waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            while holder.execute(text(waiting)).scalar_one() < 3:
                assert all(u.poll() is None for u in upgrades), "an upgrade did not wait"
                assert time.monotonic() < deadline, "the upgrades never reached the lock"
                time.sleep(0.05)
            holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            holder.commit()
        for upgrade in upgrades:
            out, _ = upgrade.communicate(timeout=JOB_DEADLINE)
            assert upgrade.returncode == 0 and b"database at head" in out
    finally:
        engine.dispose()
