"""The job store on a real SQLite database: atomic claims, leases, recovery, attempt limits."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from chamelaion.server.models import InputKind, LipsyncJob, utcnow
from chamelaion.server.queue.hooks import job_store
from chamelaion.server.queue.jobs import ClaimedSegment, JobStore, submit
from server.helpers import new_key, sessions_for


def add_jobs(sessions: sessionmaker[Session], account_id: str, count: int) -> list[str]:
    ids = []
    with sessions() as session:
        for _ in range(count):
            job = LipsyncJob(
                account_id=account_id,
                input_kind=InputKind.URL.value,
                video_source="https://example.com/v.mp4",
                audio_source="https://example.com/a.wav",
            )
            submit(session, job)
            session.flush()
            ids.append(job.id)
        session.commit()
    return ids


def age_heartbeats(sessions: sessionmaker[Session], seconds: float) -> None:
    with sessions() as session:
        session.execute(
            update(LipsyncJob).values(heartbeat_at=utcnow() - timedelta(seconds=seconds))
        )
        session.commit()


def load(sessions: sessionmaker[Session], job_id: str) -> LipsyncJob:
    with sessions() as session:
        job = session.get(LipsyncJob, job_id)
        assert job is not None
        return job


def test_concurrent_claims_never_share_a_job(tmp_path: Path) -> None:
    sessions = sessions_for(tmp_path)
    ids = add_jobs(sessions, new_key(tmp_path).account_id, 40)
    store = JobStore(sessions)
    claimed: dict[str, list[str]] = {}

    def worker(name: str) -> None:
        mine = claimed.setdefault(name, [])
        while (job := store.claim(name)) is not None:
            mine.append(job.id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [job_id for jobs in claimed.values() for job_id in jobs]
    assert sorted(everything) == sorted(ids)  # each exactly once
    assert all(load(sessions, job_id).status == "processing" for job_id in ids)


def test_claims_oldest_first(tmp_path: Path) -> None:
    sessions = sessions_for(tmp_path)
    ids = add_jobs(sessions, new_key(tmp_path).account_id, 3)
    store = JobStore(sessions)
    assert [store.claim("w").id for _ in ids] == ids  # type: ignore[union-attr]
    assert store.claim("w") is None


def test_stale_jobs_are_requeued_then_failed_after_max_attempts(tmp_path: Path) -> None:
    sessions = sessions_for(tmp_path)
    (job_id,) = add_jobs(sessions, new_key(tmp_path).account_id, 1)
    store = JobStore(sessions)
    lease = timedelta(seconds=30)
    for attempt in (1, 2):
        claimed = store.claim(f"w{attempt}")
        assert claimed is not None and claimed.attempt == attempt
        assert store.recover_stale(lease, max_attempts=3) == (0, 0)  # heartbeat still fresh
        age_heartbeats(sessions, 60)
        assert store.recover_stale(lease, max_attempts=3) == (1, 0)
        job = load(sessions, job_id)
        assert (job.status, job.worker_id, job.started_at) == ("queued", None, None)
    assert store.claim("w3") is not None
    age_heartbeats(sessions, 60)
    assert store.recover_stale(lease, max_attempts=3) == (0, 1)
    job = load(sessions, job_id)
    assert job.status == "failed"
    assert job.error_message == "processing was interrupted 3 times; giving up"
    assert job.finished_at is not None


def test_a_worker_that_lost_its_job_cannot_report_on_it(tmp_path: Path) -> None:
    sessions = sessions_for(tmp_path)
    (job_id,) = add_jobs(sessions, new_key(tmp_path).account_id, 1)
    store = JobStore(sessions)
    assert store.claim("old") is not None
    age_heartbeats(sessions, 60)
    store.recover_stale(timedelta(seconds=30), max_attempts=3)
    assert store.claim("new") is not None
    assert not store.complete(job_id, "old", "/tmp/x.mp4")
    assert not store.fail(job_id, "old", "late")
    assert not store.heartbeat(job_id, "old", 0.5, "render")
    assert store.heartbeat(job_id, "new", 0.5, "render")
    assert store.complete(job_id, "new", "/tmp/out.mp4")
    job = load(sessions, job_id)
    assert (job.status, job.output_path, job.progress) == ("completed", "/tmp/out.mp4", 1.0)
    assert not store.fail(job_id, "new", "too late: already completed")


def test_release_gives_the_attempt_back(tmp_path: Path) -> None:
    sessions = sessions_for(tmp_path)
    (job_id,) = add_jobs(sessions, new_key(tmp_path).account_id, 1)
    store = JobStore(sessions)
    assert store.claim("w") is not None
    assert store.release(job_id, "w")
    job = load(sessions, job_id)
    assert (job.status, job.attempts, job.worker_id) == ("queued", 0, None)


def test_many_workers_claiming_one_job_by_id_one_wins(tmp_path: Path) -> None:
    """What duplicate Celery messages do: every worker asks for the same job at the same time."""
    sessions = sessions_for(tmp_path)
    job_ids = add_jobs(sessions, new_key(tmp_path).account_id, 5)
    store = JobStore(sessions)
    winners: dict[str, list[str]] = {job_id: [] for job_id in job_ids}
    start = threading.Barrier(8)

    def worker(name: str) -> None:
        for job_id in job_ids:
            start.wait()
            if store.claim(name, job_id) is not None:
                winners[job_id].append(name)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(len(names) == 1 for names in winners.values()), winners
    for job_id, (name,) in winners.items():
        job = load(sessions, job_id)
        assert (job.status, job.worker_id, job.attempts) == ("processing", name, 1)


def test_segments_are_claimed_once_each_and_forgotten_when_the_job_ends(tmp_path: Path) -> None:
    sessions = sessions_for(tmp_path)
    first, second = add_jobs(sessions, new_key(tmp_path).account_id, 2)
    store = job_store(sessions)
    assert store.claim("holder") is not None and store.claim("other") is not None
    assert not store.queue_segments(first, "other", [0, 1])  # only the job's holder may
    assert store.claim_segment("w") is None
    assert store.queue_segments(first, "holder", range(12))
    assert store.queue_segments(second, "other", [0])
    claimed: dict[str, list[ClaimedSegment]] = {}

    def helper(name: str) -> None:
        mine = claimed.setdefault(name, [])
        while (segment := store.claim_segment(name, first)) is not None:
            mine.append(segment)

    threads = [threading.Thread(target=helper, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = sorted(s.index for segments in claimed.values() for s in segments)
    assert everything == list(range(12))  # each exactly once
    lease = timedelta(seconds=30)
    assert store.segments_left(first) == 12
    for name, segments in claimed.items():
        for segment in segments:
            assert not store.finish_segment(segment, "someone else")
            assert store.finish_segment(segment, name)
    assert store.segments_left(first) == 0
    # Without a job id: the oldest job's queued segment; a silent worker's segment comes back.
    taken = store.claim_segment("w")
    assert taken == ClaimedSegment(second, 0)
    assert store.take_back_segments(second, lease) == [] and store.claim_segment("w") is None
    assert store.take_back_segments(second, timedelta(0)) == [0]  # its heartbeat is old
    assert store.segments_left(second) == 1
    assert not store.segment_heartbeat(taken, "w")  # ...so it is no longer w's
    assert store.claim_segment("x", second) == taken
    assert not store.release_segment(taken, "w") and store.release_segment(taken, "x")
    assert store.claim_segment("y", second) == taken
    assert store.complete(second, "other", "out.mp4")
    assert store.segments_left(second) == 0  # a finished job keeps no segments
    assert not store.segment_heartbeat(taken, "y")
