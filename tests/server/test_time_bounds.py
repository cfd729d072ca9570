"""Time bounds through a real worker: a URL that drips is cut off at the fetch deadline, and a
job that runs past its wall-clock limit fails; each says why, and frees the worker and files."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.helpers import Server, client_for, dripping_server, new_key, wait_for_status

# Deadlines of the fetcher and the worker; the failed job is stored as every failure is (the
# webhook tests run that on PostgreSQL), so test-postgres leaves this out.
pytestmark = pytest.mark.store_independent


def test_fetch_deadline_and_job_time_limit(
    tmp_path: Path, short_face_video: Path, short_speech: Path
) -> None:
    key = new_key(tmp_path, "bounds")
    server = Server(
        tmp_path,
        env={
            "CHAMELAION_ALLOW_PRIVATE_URLS": "true",
            "CHAMELAION_FETCH_TOTAL_TIMEOUT": "2",
            # no job can finish in 0.5 s (loading and analysing alone take longer), and the
            # limit does not grow with the media's length here
            "CHAMELAION_JOB_TIME_LIMIT_SECONDS": "0.5",
            "CHAMELAION_JOB_TIME_LIMIT_PER_MEDIA_SECOND": "0",
        },
        workers=1,
    ).start()
    try:
        with client_for(server, key.key) as client, dripping_server() as slow_url:
            dripped = client.post(
                "/lipsync/generate",
                json={
                    "inputs": [
                        {"type": "video", "url": slow_url},
                        {"type": "audio", "url": slow_url},
                    ]
                },
            ).json()["request_id"]
            body = wait_for_status(client, dripped, {"completed", "failed"}, 60)
            assert body["error_message"] == "failed to fetch video: not finished within 2 s"
            assert body["status"] == "failed"

            with short_face_video.open("rb") as video, short_speech.open("rb") as audio:
                slow = client.post(
                    "/lipsync/generate-with-media", files={"video": video, "audio": audio}
                ).json()["request_id"]
            body = wait_for_status(client, slow, {"completed", "failed"}, 60)
            assert body["status"] == "failed"
            assert body["error_message"] == "processing took longer than its time limit (0.5 s)"
    finally:
        server.stop()
    for request_id in (dripped, slow):
        assert not (tmp_path / "inputs" / request_id).exists()
        assert not [p for p in (tmp_path / "outputs").iterdir() if request_id in p.name]
