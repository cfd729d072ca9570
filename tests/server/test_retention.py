"""Bounded disk: outputs expire after the retention time, orphaned inputs and stray renders are
reaped at start-up and periodically, and below the free-space floor new jobs are refused."""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from chamelaion.server.config import Settings
from chamelaion.server.models import InputKind, JobStatus, LipsyncJob, utcnow
from chamelaion.server.reaper import Reaped, Reaper
from server.helpers import (
    EXAMPLE_INPUTS,
    Key,
    Server,
    client_for,
    database_url,
    new_key,
    sessions_for,
)

HOUR = 3600.0


def add_job(
    data_dir: Path,
    key: Key,
    status: JobStatus,
    finished_at: datetime | None = None,
    inputs: bool = False,
    output: bool = False,
) -> str:
    """A request row as a worker would have left it, with its files on disk."""
    request_id = str(uuid.uuid4())
    with sessions_for(data_dir)() as session:
        session.add(
            LipsyncJob(
                id=request_id,
                account_id=key.account_id,
                status=status.value,
                finished_at=finished_at,
                input_kind=InputKind.UPLOAD.value,
                video_source="video.mp4",
                audio_source="audio.wav",
            )
        )
        session.commit()
    if inputs:
        write(data_dir / "inputs" / request_id / "video.mp4")
    if output:
        write(data_dir / "outputs" / f"{request_id}.mp4")
    return request_id


def write(path: Path, age: float = 0.0) -> Path:
    """A file (and its directory) last written `age` seconds ago."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * 1024)
    then = time.time() - age
    os.utime(path, (then, then))
    if path.parent.name not in ("inputs", "outputs"):
        os.utime(path.parent, (then, then))
    return path


def test_outputs_expire_and_orphans_are_reaped_at_start_and_periodically(tmp_path: Path) -> None:
    key = new_key(tmp_path, "reaper")
    now = utcnow()
    old = add_job(tmp_path, key, JobStatus.COMPLETED, now - timedelta(days=8), output=True)
    recent = add_job(tmp_path, key, JobStatus.COMPLETED, now - timedelta(hours=1), output=True)
    failed = add_job(tmp_path, key, JobStatus.FAILED, now, inputs=True)  # e.g. by recovery
    cancelled = add_job(tmp_path, key, JobStatus.CANCELLED, now, inputs=True)
    running = add_job(tmp_path, key, JobStatus.PROCESSING, inputs=True)
    live_render = write(tmp_path / "outputs" / f".{running}.a1b2c3d4.mp4")
    dead_render = write(tmp_path / "outputs" / f".{cancelled}.deadbeef.mp4")  # killed attempt
    cut_off_upload = write(tmp_path / "inputs" / str(uuid.uuid4()) / "video.mp4", age=2 * HOUR)
    arriving_upload = write(tmp_path / "inputs" / str(uuid.uuid4()) / "video.mp4")
    deleted_output = write(tmp_path / "outputs" / f"{uuid.uuid4()}.mp4")
    not_ours = write(tmp_path / "inputs" / "README.txt", age=2 * HOUR)

    server = Server(
        tmp_path, env={"CHAMELAION_REAPER_INTERVAL_SECONDS": "1"}, workers=1
    ).start()  # default retention (7 days), orphan grace (1 h)
    try:
        # reaped at start-up, before the server answered
        assert not (tmp_path / "outputs" / f"{old}.mp4").exists()
        assert (tmp_path / "outputs" / f"{recent}.mp4").exists()
        for gone in (failed, cancelled):
            assert not (tmp_path / "inputs" / gone).exists()
        assert (tmp_path / "inputs" / running / "video.mp4").exists()  # in use
        assert live_render.exists() and not dead_render.exists()
        assert not cut_off_upload.exists() and arriving_upload.exists()
        assert not deleted_output.exists() and not_ours.exists()

        with client_for(server, key.key) as client:
            expired = client.get(f"/lipsync/requests/{old}").json()
            kept = client.get(f"/lipsync/requests/{recent}").json()
        assert expired["status"] == "completed" and expired["output_expired"] is True
        assert "output_url" not in expired
        assert "output_expired" not in kept and httpx.get(kept["output_url"]).status_code == 200

        # and periodically: an upload cut off now is gone once it is old enough
        later = write(tmp_path / "inputs" / str(uuid.uuid4()) / "video.mp4", age=2 * HOUR)
        deadline = time.monotonic() + 20
        while later.exists():
            assert time.monotonic() < deadline, "not reaped periodically"
            time.sleep(0.2)
    finally:
        server.stop()


def test_an_api_only_server_reaps_too(tmp_path: Path) -> None:
    """`--workers 0`: no engine runs, but cut-off uploads and expired outputs are removed."""
    key = new_key(tmp_path, "api-only")
    old = add_job(tmp_path, key, JobStatus.COMPLETED, utcnow() - timedelta(days=8), output=True)
    cut_off_upload = write(tmp_path / "inputs" / str(uuid.uuid4()) / "video.mp4", age=2 * HOUR)
    server = Server(tmp_path, workers=0).start()
    try:
        assert not cut_off_upload.exists()  # reaped at start-up, before the server answered
        assert not (tmp_path / "outputs" / f"{old}.mp4").exists()
    finally:
        server.stop()


def test_retention_zero_keeps_outputs_forever(tmp_path: Path) -> None:
    key = new_key(tmp_path, "forever")
    ancient = add_job(
        tmp_path, key, JobStatus.COMPLETED, utcnow() - timedelta(days=400), output=True
    )
    settings = Settings(
        data_dir=tmp_path, database_url=database_url(tmp_path), output_retention_seconds=0
    )
    assert Reaper(settings, sessions_for(tmp_path)).run() == Reaped()
    assert (tmp_path / "outputs" / f"{ancient}.mp4").exists()
    settings.output_retention_seconds = 400 * 24 * 3600 - 60  # a minute less than its age
    assert Reaper(settings, sessions_for(tmp_path)).run() == Reaped(outputs_expired=1)
    assert not (tmp_path / "outputs" / f"{ancient}.mp4").exists()


def test_below_the_free_space_floor_new_jobs_get_507_and_readyz_fails(
    tmp_path: Path, short_face_video: Path, short_speech: Path
) -> None:
    """The floor is set above the disk's real free space (no disk is an exabyte)."""
    key = new_key(tmp_path, "full")
    server = Server(tmp_path, env={"CHAMELAION_MIN_FREE_BYTES": str(10**18)}).start()
    try:
        insufficient = {"error": "insufficient storage"}
        with client_for(server, key.key) as client:
            response = client.post(
                "/lipsync/generate",
                json={"inputs": EXAMPLE_INPUTS},
            )
            assert (response.status_code, response.json()) == (507, insufficient)
            with short_face_video.open("rb") as video, short_speech.open("rb") as audio:
                response = client.post(
                    "/lipsync/generate-with-media", files={"video": video, "audio": audio}
                )
            assert (response.status_code, response.json()) == (507, insufficient)
            listed = client.get("/lipsync/requests")  # reads still work
            assert listed.status_code == 200 and listed.json()["pagination"]["total"] == 0
        ready = httpx.get(f"{server.base_url}/readyz")
        assert (ready.status_code, ready.json()) == (503, insufficient)
        assert list((tmp_path / "inputs").iterdir()) == []  # nothing of the upload was kept
        unauthenticated = httpx.post(f"{server.api}/lipsync/generate", json={})
        assert unauthenticated.status_code == 401  # the key is checked first, as always
    finally:
        server.stop()
