"""The request object carries its output's lip sync: measured by the worker after rendering,
stored with the job, presented as an optional `sync` object, parsed by the SDK."""

from __future__ import annotations

import uuid
from pathlib import Path

import footage
import pytest

from chamelaion.server.models import InputKind, JobStatus, LipsyncJob, utcnow
from chamelaion.server.queue.jobs import JobStore, OutputSync
from chamelaion.server.queue.worker import _measure_sync
from chamelaion.types import LipsyncRequest
from server.helpers import ApiServer, new_key, sessions_for
from server.test_jobs import add_jobs, load


def test_the_store_records_the_output_sync(tmp_path: Path) -> None:
    sessions = sessions_for(tmp_path)
    add_jobs(sessions, new_key(tmp_path).account_id, 2)
    store = JobStore(sessions)
    done = {}
    for sync in (OutputSync(-1, 0.117), None):
        claimed = store.claim("w")
        assert claimed is not None
        assert store.complete(claimed.id, "w", f"/tmp/{claimed.id}.mp4", sync)
        done[claimed.id] = sync
    for job_id, sync in done.items():
        job = load(sessions, job_id)
        stored = (job.sync_offset_frames, job.sync_confidence)
        assert stored == ((None, None) if sync is None else (sync.offset_frames, sync.confidence))


def test_a_completed_request_shows_its_sync(api_server: ApiServer) -> None:
    request_id = str(uuid.uuid4())
    now = utcnow()
    with sessions_for(api_server.server.data_dir)() as session:
        session.add(
            LipsyncJob(
                id=request_id,
                account_id=api_server.key.account_id,
                status=JobStatus.COMPLETED.value,
                created_at=now,
                started_at=now,
                finished_at=now,
                input_kind=InputKind.URL.value,
                video_source="https://example.com/v.mp4",
                audio_source="https://example.com/a.wav",
                output_path="/nonexistent.mp4",
                sync_offset_frames=2,
                sync_confidence=0.0831,
            )
        )
        session.commit()
    with api_server.client() as client:
        body = client.get(f"/lipsync/requests/{request_id}").json()
        listed = client.get("/lipsync/requests", params={"limit": 100}).json()["data"]
    assert body["sync"] == {"offset_frames": 2, "confidence": 0.0831}
    assert [r["sync"] for r in listed if r["id"] == request_id] == [body["sync"]]
    parsed = LipsyncRequest.model_validate(body)
    assert parsed.sync is not None
    assert (parsed.sync.offset_frames, parsed.sync.confidence) == (2, 0.0831)


@pytest.mark.store_independent
def test_the_worker_measures_a_real_output() -> None:
    clip = footage.by_name("retalking_face_2")  # held out: never trained on
    if not clip.path.exists():
        pytest.skip(f"footage not available: {clip.name}")
    sync = _measure_sync("job", clip.path)
    assert sync is not None
    assert abs(sync.offset_frames) <= 1
    assert sync.confidence > 0.05


@pytest.mark.store_independent
def test_an_output_that_cannot_be_measured_gives_no_score(blank_video: Path) -> None:
    assert _measure_sync("job", blank_video) is None  # no sound track: nothing to score
