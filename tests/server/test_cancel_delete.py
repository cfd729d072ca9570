"""Cancel and delete: the status changes at once, a running worker stops within seconds and
frees the job's files, a deleted request is gone; plus progress and stage while processing."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

import mediagen
from server.helpers import (
    PATIENCE,
    ApiServer,
    Server,
    client_for,
    files_of,
    job_row,
    new_key,
    start_long_job,
    upload,
    wait_for_progress,
    wait_for_status,
)

STAGES = {"fetching", "analysing", "rendering", "scoring"}
# A job's stored progress once its faces are scanned: the analysis is the first third of the
# engine's share (`Progress.fraction`, the worker's `_ENGINE_SHARE`), less rounding.
SCANNED = 0.9 / 3 - 1e-6


def every_file_of(data_dir: Path, request_id: str) -> list[str]:
    """Every input and output file (temporary ones too) of a request."""
    inputs = data_dir / "inputs" / request_id
    return files_of(data_dir, request_id) + (
        sorted(p.name for p in inputs.iterdir()) if inputs.exists() else []
    )


def wait_until_freed(data_dir: Path, request_id: str) -> None:
    """Until the request's files are gone (a stopped worker frees them). That the worker
    stopped at a checkpoint rather than finishing the job is told by its log line, not by a
    clock: a busy machine can make either take long."""
    deadline = time.monotonic() + PATIENCE
    while every_file_of(data_dir, request_id):
        assert time.monotonic() < deadline, every_file_of(data_dir, request_id)
        time.sleep(0.05)


def test_running_jobs_are_cancelled_and_deleted_and_their_workers_stop(
    tmp_path: Path, long_inputs: tuple[Path, Path]
) -> None:
    key = new_key(tmp_path, "cancel")
    server = Server(tmp_path, workers=1).start()
    try:
        with client_for(server, key.key) as client:
            first = start_long_job(client, long_inputs)
            video, audio = long_inputs
            with video.open("rb") as video_file, audio.open("rb") as audio_file:
                second = client.post(
                    "/lipsync/generate-with-media",
                    files={"video": video_file, "audio": audio_file},
                    data={"sync_mode": "loop", "reference_id": "second"},
                ).json()["request_id"]

            # progress and stage while processing
            deadline = time.monotonic() + PATIENCE
            while True:
                body = client.get(f"/lipsync/requests/{first}").json()
                assert body["status"] == "processing", body
                if body.get("stage") == "rendering":
                    break
                assert time.monotonic() < deadline, body
                time.sleep(0.1)
            assert 0.0 < body["progress"] < 1.0 and set(body) >= {"progress", "stage"}

            cancelled = client.post(f"/lipsync/requests/{first}/cancel")
            assert cancelled.status_code == 200, cancelled.text
            assert cancelled.json()["status"] == "cancelled" and "finished_at" in cancelled.json()
            assert "progress" not in cancelled.json() and "stage" not in cancelled.json()
            wait_until_freed(tmp_path, first)  # inputs and partial render gone
            again = client.post(f"/lipsync/requests/{first}/cancel")  # changes nothing
            assert again.json() == cancelled.json()

            # the worker is free again: it takes the next job, which we delete mid-run
            wait_for_status(client, second, {"processing"}, PATIENCE)
            deleted = client.delete("/lipsync/requests/second")  # by reference_id
            assert deleted.status_code == 200, deleted.text
            assert deleted.json() == {"id": second, "deleted": True}
            assert client.get(f"/lipsync/requests/{second}").status_code == 404
            assert client.delete(f"/lipsync/requests/{second}").status_code == 404
            wait_until_freed(tmp_path, second)
            # its worker stops at the engine's next progress report (seconds, even under load)
            deadline = time.monotonic() + PATIENCE
            while f"job {second}: deleted; stopped and its files freed" not in server.logs():
                assert time.monotonic() < deadline, "the worker did not stop"
                time.sleep(0.2)
    finally:
        server.stop()
    logs = server.logs()
    assert f"job {first}: cancelled; stopped and its files freed" in logs
    assert "unexpected error" not in logs


def test_scoring_reports_progress_and_a_cancel_stops_it(
    tmp_path: Path, long_inputs: tuple[Path, Path]
) -> None:
    """The output's scoring pass (a face-mesh pass over the whole output) is no blind spot: its
    progress shows (past the engine's 0.9), and a cancel stops it rather than waiting for it."""
    key = new_key(tmp_path, "cancel-scoring")
    server = Server(tmp_path, workers=1).start()
    try:
        with client_for(server, key.key) as client:
            request_id = start_long_job(client, long_inputs)
            deadline = time.monotonic() + PATIENCE
            while True:
                body = client.get(f"/lipsync/requests/{request_id}").json()
                assert body["status"] == "processing", body  # finished without showing it
                if body.get("stage") == "scoring" and body["progress"] > 0.9:
                    break
                assert time.monotonic() < deadline, body
                time.sleep(0.05)
            assert client.post(f"/lipsync/requests/{request_id}/cancel").status_code == 200
            deadline = time.monotonic() + PATIENCE
            while f"job {request_id}: cancelled; stopped and its files freed" not in server.logs():
                assert time.monotonic() < deadline, "the worker did not stop"
                time.sleep(0.1)
            assert every_file_of(tmp_path, request_id) == []  # no output moved into place
    finally:
        server.stop()


def test_a_cancel_is_noticed_while_a_long_audio_is_recognised(
    tmp_path: Path, media_dir: Path
) -> None:
    """A 2 s video and 150 s of speech: the phone recogniser runs on the audio first (one run
    per 30 s; tens of seconds on a 2-core machine), then the faces are scanned in seconds. A
    cancel while it runs stops the worker in the analysis, between two of those runs, rather
    than once the analysis is done and the render's first frame is drawn."""
    video = mediagen.write_face_video(media_dir / "two_second_face.mp4", 2.0, 25.0, 320, 240)
    speech = mediagen.phrases_with_gaps(["hello mama", "good morning", "see you soon"], gap=0.5)
    while speech.duration < 150.0:
        speech = speech + speech
    audio = mediagen.write_wav(media_dir / "long_dub.wav", speech)
    key = new_key(tmp_path, "cancel-recognition")
    server = Server(tmp_path, workers=1).start()
    try:
        with client_for(server, key.key) as client:
            request_id = start_long_job(client, (video, audio))  # looped to the audio's length
            deadline = time.monotonic() + PATIENCE
            while job_row(tmp_path, request_id).progress_stage != "analysing":
                assert time.monotonic() < deadline, "the analysis never began"
                time.sleep(0.05)
            time.sleep(2.0)  # into the recognition, which takes far longer than this
            row = job_row(tmp_path, request_id)
            assert row.progress_stage == "analysing" and row.progress < SCANNED, row
            assert client.post(f"/lipsync/requests/{request_id}/cancel").status_code == 200
            cancelled_at = time.monotonic()
            while f"job {request_id}: cancelled; stopped and its files freed" not in server.logs():
                assert time.monotonic() < cancelled_at + PATIENCE, "the worker did not stop"
                time.sleep(0.1)
            print(f"stopped {time.monotonic() - cancelled_at:.1f} s after the cancel")
            logs = server.logs()
            assert f"job {request_id}: analysed" not in logs  # stopped within the analysis
            wait_until_freed(tmp_path, request_id)
    finally:
        server.stop()
    assert "unexpected error" not in server.logs()


def test_a_job_deleted_mid_render_stops_without_an_error(
    tmp_path: Path, segment_inputs: tuple[Path, Path]
) -> None:
    """A delete removes the job's files at once, under the engine still writing them, so the
    worker may fail on a missing file before its heartbeat tells it the job is gone: that is
    the stop the delete asked for, not an error. Segments of 1 s make it likely: the
    worker opens the source and a new file in the job's dirs every second."""
    key = new_key(tmp_path, "delete-mid-render")
    server = Server(tmp_path, workers=1, env={"CHAMELAION_SEGMENT_SECONDS": "1"}).start()
    try:
        with client_for(server, key.key) as client:
            request_id = start_long_job(client, segment_inputs)
            wait_for_progress(tmp_path, request_id, "rendering")
            assert client.delete(f"/lipsync/requests/{request_id}").status_code == 200
            deadline = time.monotonic() + PATIENCE
            while f"job {request_id}: deleted; stopped and its files freed" not in server.logs():
                assert time.monotonic() < deadline, "the worker did not stop"
                time.sleep(0.1)
            wait_until_freed(tmp_path, request_id)
    finally:
        server.stop()
    assert "unexpected error" not in server.logs()


def test_queued_jobs_cancel_and_delete_and_their_errors(
    api_server: ApiServer, short_face_video: Path, short_speech: Path
) -> None:
    """API only (no workers), so the jobs stay queued until cancelled."""
    data_dir = api_server.server.data_dir
    key = new_key(data_dir, "queued-cancel")

    with api_server.client(key) as client, api_server.client(api_server.other) as stranger:
        queued = upload(client, (short_face_video, short_speech), "to-cancel")
        assert every_file_of(data_dir, queued)  # the uploaded inputs
        assert stranger.post(f"/lipsync/requests/{queued}/cancel").status_code == 404
        assert stranger.delete(f"/lipsync/requests/{queued}").status_code == 404
        response = client.post("/lipsync/requests/to-cancel/cancel")
        assert response.status_code == 200
        assert response.json()["id"] == queued and response.json()["status"] == "cancelled"
        assert every_file_of(data_dir, queued) == []  # freed at once: no worker had them
        listed = client.get("/lipsync/requests", params={"reference_id": "to-cancel"}).json()
        assert [item["status"] for item in listed["data"]] == ["cancelled"]

        other = upload(client, (short_face_video, short_speech), "to-delete")
        assert client.delete(f"/lipsync/requests/{other}").json() == {"id": other, "deleted": True}
        assert every_file_of(data_dir, other) == []
        assert client.get("/lipsync/requests").json()["pagination"]["total"] == 1

        for missing in ("nope", "6f82a2d8-a6d4-4e8a-a0fa-e8b09823a2d8", other):
            for response in (
                client.post(f"/lipsync/requests/{missing}/cancel"),
                client.delete(f"/lipsync/requests/{missing}"),
            ):
                assert (response.status_code, response.json()) == (404, {"error": "not found"})
        unauthenticated = httpx.delete(f"{api_server.api}/lipsync/requests/{queued}")
        assert unauthenticated.status_code == 401
        assert client.get(f"/lipsync/requests/{queued}/cancel").status_code == 404
