"""Dependencies failing under a running service (issue 15): a database or a Redis taken away and
given back while the real `chamelaion serve` (and, scaled out, a Celery worker) runs.

Each outage is real: a Redis and a PostgreSQL of the test's own (`ownservices`), killed and
started again, or the SQLite file write-locked by another connection. The API answers 503 with
Retry-After (never 500, never a hang) while the database is away, keeps serving on a local rate
limiter while Redis is away, recovers by itself, and loses no job.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from chamelaion.server.db import make_engine, make_session_factory
from chamelaion.server.keys import create_key
from chamelaion.server.migrate import upgrade_database
from chamelaion.server.models import LipsyncJob
from server.helpers import (
    EXAMPLE_INPUTS,
    ON_POSTGRES,
    Server,
    client_for,
    new_key,
    start_long_job,
    upload,
    wait_for_status,
)
from server.ownservices import OwnPostgres, own_postgres, own_redis
from server.test_scaleout import CeleryWorker, celery_env, claims, redis_prefix, tiny_inputs

__all__ = ["redis_prefix", "tiny_inputs"]  # fixtures shared with the scale-out tests

UNAVAILABLE = {"error": "database unavailable"}


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json() == UNAVAILABLE
    assert int(response.headers["retry-after"]) > 0


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite's own write lock (the session runs on PostgreSQL)")
def test_a_write_locked_sqlite_answers_503_then_recovers(tmp_path: Path) -> None:
    """Another process holds SQLite's write lock past the lock timeout: creates get 503 and
    spend no quota; reads go on (WAL); once the lock is released a create succeeds."""
    key = new_key(tmp_path, "locked", max_requests=1)
    server = Server(tmp_path, env={"CHAMELAION_DATABASE_LOCK_TIMEOUT_SECONDS": "0.5"}).start()
    try:
        with client_for(server, key.key) as client:
            body = {"inputs": EXAMPLE_INPUTS}
            holder = sqlite3.connect(tmp_path / "chamelaion.db", isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")  # the write lock, as a long writer holds it
            try:
                _assert_unavailable(client.post("/lipsync/generate", json=body))
                assert client.get("/lipsync/requests").json()["pagination"]["total"] == 0
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            created = client.post("/lipsync/generate", json=body)
            assert created.status_code == 200, created.text  # the quota of 1 was not spent
            listed = client.get("/lipsync/requests").json()
            assert [r["id"] for r in listed["data"]] == [created.json()["request_id"]]
    finally:
        server.stop()
    assert "Traceback" not in server.logs()


@pytest.fixture(scope="module")
def postgres_cluster() -> Iterator[OwnPostgres]:
    with own_postgres() as cluster:
        yield cluster


def _key_in(url: str, name: str) -> str:
    """A key in the database at `url` (migrated first, as `serve` would)."""
    engine = make_engine(url)
    try:
        upgrade_database(engine)
        with make_session_factory(engine)() as session:
            created = create_key(session, name)
            session.commit()
            return created.key
    finally:
        engine.dispose()


def _on_own_postgres(data_dir: Path, cluster: OwnPostgres, **env: str) -> dict[str, str]:
    return {"CHAMELAION_DATABASE_URL": cluster.url, **env}


def test_postgres_stopped_answers_503_and_the_api_recovers(
    tmp_path: Path, postgres_cluster: OwnPostgres, tiny_inputs: tuple[Path, Path]
) -> None:
    key = _key_in(postgres_cluster.url, "outage")
    server = Server(tmp_path, env=_on_own_postgres(tmp_path, postgres_cluster)).start()
    try:
        with client_for(server, key) as client:
            first = upload(client, tiny_inputs, "before")
            postgres_cluster.stop()
            try:
                started = time.monotonic()
                _assert_unavailable(client.get("/lipsync/requests"))
                _assert_unavailable(client.get(f"/lipsync/requests/{first}"))
                video, audio = tiny_inputs
                with video.open("rb") as v, audio.open("rb") as a:
                    _assert_unavailable(
                        client.post("/lipsync/generate-with-media", files={"video": v, "audio": a})
                    )
                body = {"inputs": EXAMPLE_INPUTS}
                _assert_unavailable(client.post("/lipsync/generate", json=body))
                ready = httpx.get(f"{server.base_url}/readyz")
                assert (ready.status_code, ready.json()) == (503, UNAVAILABLE)
                assert time.monotonic() - started < 20  # answered, not hung
            finally:
                postgres_cluster.start()
            # Pooled connections were cut by the restart: each is replaced, no request fails.
            for _ in range(20):
                assert client.get(f"/lipsync/requests/{first}").status_code == 200
            second = upload(client, tiny_inputs, "after")
            listed = client.get("/lipsync/requests").json()["data"]
            assert [r["reference_id"] for r in listed] == ["before", "after"]
            assert second == listed[1]["id"]
            assert len(list((tmp_path / "inputs").iterdir())) == 2  # none from the refused upload
    finally:
        server.stop()
    assert "unhandled error" not in server.logs()


def test_a_hung_database_holds_only_the_requests_that_wait_on_it(
    tmp_path: Path, postgres_cluster: OwnPostgres
) -> None:
    """With PostgreSQL stalled (not refusing: hanging), an authenticated request waits on it on
    a worker thread; the event loop goes on answering the probes and unauthenticated errors."""
    key = _key_in(postgres_cluster.url, "hung")
    server = Server(tmp_path, env=_on_own_postgres(tmp_path, postgres_cluster)).start()
    try:
        with client_for(server, key) as client:
            assert client.get("/lipsync/requests").status_code == 200  # a pooled connection
            with ThreadPoolExecutor(1) as pool:
                with postgres_cluster.frozen():
                    waiting = pool.submit(client.get, "/lipsync/requests", timeout=60)
                    time.sleep(1.0)  # the request is in the key lookup, on a stalled connection
                    assert not waiting.done()
                    started = time.monotonic()
                    assert httpx.get(f"{server.base_url}/healthz", timeout=5).status_code == 200
                    no_key = httpx.get(f"{server.base_url}/v1/lipsync/requests", timeout=5)
                    assert no_key.status_code == 401
                    assert time.monotonic() - started < 2
                # Given back, the database answers the request that waited for it.
                assert waiting.result(timeout=30).status_code == 200
    finally:
        server.stop()


def test_a_job_finished_while_postgres_is_down_is_recorded_once_it_is_back(
    tmp_path: Path, postgres_cluster: OwnPostgres, long_inputs: tuple[Path, Path]
) -> None:
    """The worker renders through the outage, its heartbeats fail and its lease runs out; it
    keeps the outcome until the database is back and records it: one attempt, no re-render."""
    key = _key_in(postgres_cluster.url, "render-through")
    env = _on_own_postgres(tmp_path, postgres_cluster, CHAMELAION_JOB_LEASE_SECONDS="2")
    server = Server(tmp_path, env=env, workers=1).start()
    try:
        with client_for(server, key) as client:
            request_id = start_long_job(client, long_inputs)
            postgres_cluster.stop()
            try:
                output = tmp_path / "outputs" / f"{request_id}.mp4"
                deadline = time.monotonic() + 120
                while not output.exists():  # rendered and moved into place: only recording left
                    assert time.monotonic() < deadline, server.logs()
                    time.sleep(0.1)
                time.sleep(3)  # past the 2 s lease
            finally:
                postgres_cluster.start()
            done = wait_for_status(client, request_id, {"completed", "failed"}, 60)
            assert done["status"] == "completed", done
        engine = make_engine(postgres_cluster.url)
        try:
            with make_session_factory(engine)() as session:
                row = session.scalars(select(LipsyncJob).where(LipsyncJob.id == request_id)).one()
                assert row.attempts == 1
        finally:
            engine.dispose()
    finally:
        server.stop()
    assert "attempt 2 started" not in server.logs()
    assert "recording its outcome failed; retrying" in server.logs()


def test_redis_restarted_empty_loses_no_job_and_the_api_keeps_answering(
    tmp_path: Path, redis_prefix: str, tiny_inputs: tuple[Path, Path]
) -> None:
    """Scaled out on a Redis of the test's own: a job queued in Redis when it dies (and comes
    back empty), and a job created while it is down, both run once it is back, each once;
    meanwhile reads and creates keep working (local rate limiting) and /readyz says why it is
    not ready."""
    with own_redis() as broker:
        env = celery_env(tmp_path, redis_prefix, CHAMELAION_BROKER_URL=broker.url)
        key = new_key(tmp_path, "redis-outage")
        server = Server(tmp_path, env=env).start()
        worker = CeleryWorker(tmp_path, env, "faults").start()
        try:
            with client_for(server, key.key) as client:
                first = upload(client, tiny_inputs, "first")
                assert wait_for_status(client, first, {"completed"}, 120)
                worker.stop()
                in_redis = upload(client, tiny_inputs, "queued-in-redis")
                broker.stop()
                for _ in range(10):
                    assert client.get("/lipsync/requests").status_code == 200
                started = time.monotonic()
                while_down = upload(client, tiny_inputs, "created-while-down")
                print(f"create with Redis down: {time.monotonic() - started:.2f} s")
                ready = httpx.get(f"{server.base_url}/readyz")
                assert (ready.status_code, ready.json()) == (503, {"error": "queue unavailable"})
                broker.start()  # empty: the message of `in_redis` is gone
                for _ in range(50):  # pooled connections to the old Redis are replaced
                    assert client.get("/lipsync/requests").status_code == 200
                assert httpx.get(f"{server.base_url}/readyz").status_code == 200
                worker = CeleryWorker(tmp_path, env, "faults-2").start()
                for request_id in (in_redis, while_down):
                    done = wait_for_status(client, request_id, {"completed", "failed"}, 120)
                    assert done["status"] == "completed", done
                    assert claims(worker.log(), request_id) == 1
        finally:
            worker.stop()
            server.stop()
    assert "unhandled error" not in server.logs()
    assert "counting locally" in server.logs()
