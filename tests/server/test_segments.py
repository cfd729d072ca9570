"""Segments on the server: a worker SIGKILLed mid-job is replaced, and the job resumes from the
segments the dead worker finished, which are neither rendered again nor touched."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import av
import httpx
import psutil
from sqlalchemy import select

from chamelaion.server.models import JobSegment
from server.helpers import (
    Server,
    WorkDirWatcher,
    assert_whole_output,
    client_for,
    completed_files,
    file_identity,
    files_of,
    finished_segments,
    job_row,
    new_key,
    sessions_for,
    start_long_job,
    wait_for_status,
)

SEGMENT_SECONDS = "1"  # eight seconds of output in eight segments


def test_a_worker_killed_mid_job_resumes_from_its_finished_segments(
    tmp_path: Path, segment_inputs: tuple[Path, Path]
) -> None:
    key = new_key(tmp_path, "segments")
    env = {
        "CHAMELAION_JOB_LEASE_SECONDS": "2",
        "CHAMELAION_SEGMENT_SECONDS": SEGMENT_SECONDS,
        "CHAMELAION_JOB_CORES": "3",  # more threads than cores: set, not derived
    }
    server = Server(tmp_path, env=env, workers=1).start()
    try:
        with client_for(server, key.key) as client:
            request_id = start_long_job(client, segment_inputs)
            work = tmp_path / "inputs" / request_id / "segments"
            deadline = time.monotonic() + 120
            while len(finished_segments(work)) < 2:  # two segments rendered, the job well under way
                assert time.monotonic() < deadline, server.logs()
                time.sleep(0.02)
            holder = job_row(tmp_path, request_id).worker_id
            assert holder is not None
            worker = psutil.Process(int(holder.split(":")[1]))  # hostname:pid:nonce
            worker.kill()
            worker.wait(10)

            kept = finished_segments(work)  # what the dead worker finished, as it left it
            count = len(json.loads((work / "manifest.json").read_text())["segments"])
            assert len(kept) < count
            assert kept and all(entry["by"] == holder for entry in kept.values())
            files = [work / entry["file"] for entry in kept.values()]
            before = [file_identity(f) for f in files]
            watcher = WorkDirWatcher(work, files)
            try:
                body = wait_for_status(client, request_id, {"completed", "failed"}, 120)
            finally:
                watcher.stop()
        assert body["status"] == "completed", body
        row = job_row(tmp_path, request_id)
        assert row.attempts == 2 and row.worker_id != holder
        assert files_of(tmp_path, request_id) == completed_files(request_id)  # work dir freed

        # The second attempt left the dead worker's segments alone and rendered the rest.
        seen = watcher.snapshots
        assert seen, "the second attempt was never observed"
        for finished, identities in seen:
            assert {i: finished[i] for i in kept} == kept
            assert identities == before
        last = seen[-1][0]
        assert set(last) == set(range(count))
        assert all(entry["by"] != holder for i, entry in last.items() if i not in kept)
        # The restarted worker may help with the job's queued segments (as any idle worker
        # does) before the dead one's lease runs out and it takes the job itself: what it
        # finds finished then is the dead worker's segments and those, each rendered once.
        logs = server.logs()
        assert re.search(rf"job {request_id}: analysed .* faces drawn on 3 threads", logs), logs
        resumed = re.search(rf"job {request_id}: resuming: (\d+) of {count} ", logs)
        assert resumed and int(resumed.group(1)) >= len(kept), logs
        total, mine, others = _split_line(logs, request_id)
        assert (total, mine + others) == (count, count - int(resumed.group(1)))

        # The output is whole: it plays to the end, as long as the audio, sound included.
        output = tmp_path / "out.mp4"
        output.write_bytes(httpx.get(str(body["output_url"])).content)
        assert_whole_output(output, segment_inputs[1])
        assert not os.path.exists(work)
    finally:
        server.stop()


def _split_line(logs: str, request_id: str) -> tuple[int, int, int]:
    """(segments, rendered by the job's worker, by others) from the job worker's summary."""
    found = re.search(
        rf"job {request_id}: (\d+) segments: (\d+) rendered by this worker, (\d+) by others",
        logs,
    )
    assert found, logs
    total, mine, others = (int(n) for n in found.groups())
    return total, mine, others


def test_one_job_is_rendered_by_both_workers(
    tmp_path: Path, segment_inputs: tuple[Path, Path]
) -> None:
    """Two worker processes, one job: the second, idle, claims segments of the first's job; the
    first joins them. The output is whole and every segment was rendered once."""
    key = new_key(tmp_path, "parallel")
    env = {"CHAMELAION_SEGMENT_SECONDS": SEGMENT_SECONDS}
    server = Server(tmp_path, env=env, workers=2).start()
    try:
        with client_for(server, key.key) as client:
            request_id = start_long_job(client, segment_inputs)
            body = wait_for_status(client, request_id, {"completed", "failed"}, 120)
        assert body["status"] == "completed", body
        logs = server.logs()
        total, mine, others = _split_line(logs, request_id)
        assert total == 8 and mine + others == total
        # Two engine processes on this machine: each job draws on its share of the cores.
        share = max(1, len(os.sched_getaffinity(0)) // 2)
        drawn = rf"job {request_id}: analysed .* faces drawn on {share} threads"
        assert re.search(drawn, logs), logs
        assert mine >= 1 and others >= 1, logs
        helped = re.findall(rf"job {request_id}: segment (\d+) rendered", logs)
        assert len(helped) == others and len(set(helped)) == others
        output = tmp_path / "out.mp4"
        output.write_bytes(httpx.get(str(body["output_url"])).content)
        with av.open(str(output)) as container:
            assert sum(1 for _ in container.decode(video=0)) == 8 * 25
        assert files_of(tmp_path, request_id) == completed_files(request_id)
    finally:
        server.stop()


def _helper_of(data_dir: Path, request_id: str, holder: str) -> str | None:
    """A worker other than the job's own rendering one of its segments, if any."""
    with sessions_for(data_dir)() as session:
        return session.scalars(
            select(JobSegment.worker_id).where(
                JobSegment.job_id == request_id,
                JobSegment.status == "processing",
                JobSegment.worker_id != holder,
            )
        ).first()


def test_cancelling_a_job_frees_it_from_every_worker_rendering_it(
    tmp_path: Path, segment_inputs: tuple[Path, Path]
) -> None:
    key = new_key(tmp_path, "cancel-segments")
    env = {"CHAMELAION_SEGMENT_SECONDS": SEGMENT_SECONDS}
    server = Server(tmp_path, env=env, workers=2).start()
    try:
        with client_for(server, key.key) as client:
            request_id = start_long_job(client, segment_inputs)
            holder = job_row(tmp_path, request_id).worker_id
            assert holder is not None
            deadline = time.monotonic() + 120
            while _helper_of(tmp_path, request_id, holder) is None:
                assert time.monotonic() < deadline, server.logs()
                time.sleep(0.02)
            cancelled = client.post(f"/lipsync/requests/{request_id}/cancel")
            assert cancelled.json()["status"] == "cancelled", cancelled.text
        with sessions_for(tmp_path)() as session:  # forgotten with the status change
            left = session.scalars(select(JobSegment).where(JobSegment.job_id == request_id))
            assert left.all() == []
        deadline = time.monotonic() + 30
        while (tmp_path / "inputs" / request_id).exists() or files_of(tmp_path, request_id):
            assert time.monotonic() < deadline, "the job's files were not freed"
            time.sleep(0.05)
        while f"job {request_id}: cancelled; stopped and its files freed" not in server.logs():
            assert time.monotonic() < deadline, "the job's worker did not stop"
            time.sleep(0.1)
        time.sleep(1.5)  # a helper's next segment heartbeat, had it gone on rendering
    finally:
        server.stop()
    logs = server.logs()
    assert f"job {request_id}: 8 segments:" not in logs  # never joined
    assert "unexpected error" not in logs and "failed; left for" not in logs, logs
