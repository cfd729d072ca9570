"""Durability: SIGKILL the server mid-job, start it again, and the job still finishes.

Each job is interrupted while its long inputs are surely still rendering; while no worker holds
it, its audio is cut short (`shorten_audio`), so the attempt that completes it is quick. The
lease is the default one: a killed worker's lease is expired in the database (`expire_lease`)
rather than waited out, so no live worker's lease can run out because a busy machine delayed
its heartbeat (which would count an attempt these tests assert was not made).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import psutil

from server.helpers import (
    Server,
    client_for,
    completed_files,
    expire_lease,
    files_of,
    job_row,
    new_key,
    shorten_audio,
    start_long_job,
    wait_for_progress,
    wait_for_status,
)

# A ceiling, not an expectation: the short attempt takes seconds, on a busy machine a minute.
JOB_DEADLINE = 300.0


def test_killed_mid_job_then_restarted_completes(
    tmp_path: Path, long_inputs: tuple[Path, Path], short_speech: Path
) -> None:
    key = new_key(tmp_path, "crash")
    server = Server(tmp_path, workers=1).start()
    try:
        with client_for(server, key.key) as client:
            request_id = start_long_job(client, long_inputs)
            wait_for_progress(tmp_path, request_id, "rendering")  # a partial output exists now
        assert job_row(tmp_path, request_id).status == "processing"
        assert server.process is not None
        workers = psutil.Process(server.process.pid).children(recursive=True)
        assert workers, "no worker process"
        server.kill()
        _gone, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive, "a worker outlived the killed server"
        stuck = job_row(tmp_path, request_id)
        assert (stuck.status, stuck.attempts) == ("processing", 1)

        expire_lease(tmp_path, request_id)
        shorten_audio(tmp_path, request_id, short_speech)
        server.start()
        with client_for(server, key.key) as client:
            body = wait_for_status(client, request_id, {"completed", "failed"}, JOB_DEADLINE)
        assert body["status"] == "completed", body
        assert job_row(tmp_path, request_id).attempts == 2
        output = httpx.get(str(body["output_url"]))
        assert output.status_code == 200 and output.content[4:8] == b"ftyp"
        # the killed attempt's partial render is gone; only the finished job's files remain
        assert files_of(tmp_path, request_id) == completed_files(request_id)
    finally:
        server.stop()


def test_worker_killed_mid_job_is_replaced_and_the_job_requeued(
    tmp_path: Path, long_inputs: tuple[Path, Path], short_speech: Path
) -> None:
    key = new_key(tmp_path, "worker-crash")
    server = Server(tmp_path, workers=1).start()
    try:
        with client_for(server, key.key) as client:
            request_id = start_long_job(client, long_inputs)
            assert server.process is not None
            holder = job_row(tmp_path, request_id).worker_id
            assert holder is not None
            worker = psutil.Process(int(holder.split(":")[1]))  # hostname:pid:nonce
            worker.kill()
            worker.wait(10)
            shorten_audio(tmp_path, request_id, short_speech)
            expire_lease(tmp_path, request_id)  # the supervisor's periodic check re-queues it
            body = wait_for_status(client, request_id, {"completed", "failed"}, JOB_DEADLINE)
        assert body["status"] == "completed", body
        row = job_row(tmp_path, request_id)
        assert row.attempts == 2 and row.worker_id != holder
        assert server.process.poll() is None  # the API itself never went down
    finally:
        server.stop()


def test_graceful_stop_gives_the_job_back_without_counting_an_attempt(
    tmp_path: Path, long_inputs: tuple[Path, Path], short_speech: Path
) -> None:
    key = new_key(tmp_path, "graceful")
    server = Server(tmp_path, workers=1).start()
    try:
        with client_for(server, key.key) as client:
            request_id = start_long_job(client, long_inputs)
        wait_for_progress(tmp_path, request_id, "rendering")  # the engine is well under way
        # SIGTERM. No clock here: a worker that did not give the job back within the runner's
        # own grace period is killed, and the job would then still be processing.
        server.stop()
        row = job_row(tmp_path, request_id)
        assert (row.status, row.attempts, row.worker_id) == ("queued", 0, None), server.logs()
        shorten_audio(tmp_path, request_id, short_speech)
        server.start()
        with client_for(server, key.key) as client:
            body = wait_for_status(client, request_id, {"completed", "failed"}, JOB_DEADLINE)
        assert body["status"] == "completed", body
        assert job_row(tmp_path, request_id).attempts == 1
    finally:
        server.stop()
