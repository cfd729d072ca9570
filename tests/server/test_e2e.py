"""Jobs through the real engine: URL and upload inputs to a playable MP4 with the target audio."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from numpy.typing import NDArray
from sqlalchemy import select

from chamelaion.server.models import LipsyncJob
from server.helpers import (
    ApiServer,
    MediaServer,
    Server,
    completed_files,
    files_of,
    new_key,
    sessions_for,
    wait_for_status,
)

JOB_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def worker_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """One engine worker; URL inputs may point at loopback (the test media server lives there)."""
    data_dir = tmp_path_factory.mktemp("worker-server")
    key, other = new_key(data_dir, "a"), new_key(data_dir, "b")
    server = Server(data_dir, env={"CHAMELAION_ALLOW_PRIVATE_URLS": "true"}, workers=1)
    server.start()
    try:
        yield ApiServer(server, key, other)
    finally:
        server.stop()


def decode_audio(path: Path, rate: int) -> NDArray[np.float32]:
    """The file's audio as mono float32 at `rate`."""
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks = []
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    return np.concatenate(chunks)


def envelope(samples: NDArray[np.float32], rate: int, window: float = 0.02) -> NDArray[np.float32]:
    size = int(rate * window)
    usable = len(samples) // size * size
    power: NDArray[np.float32] = np.mean(samples[:usable].reshape(-1, size) ** 2, axis=1)
    return np.sqrt(power)


def assert_output_is_the_video_with_the_target_audio(output: Path, target_audio: Path) -> None:
    with av.open(str(output)) as container:
        assert container.streams.video and container.streams.audio
        frames = sum(1 for _ in container.decode(video=0))
    assert frames >= 45  # 2 s at 25 fps, cut to the shorter input
    rate = 16000
    got = envelope(decode_audio(output, rate), rate)
    want = envelope(decode_audio(target_audio, rate), rate)
    n = min(len(got), len(want))
    assert n >= 90  # at least ~1.8 s of audio to compare
    best = max(
        float(
            np.corrcoef(got[max(0, lag) : n + min(0, lag)], want[max(0, -lag) : n - max(0, lag)])[
                0, 1
            ]
        )
        for lag in range(-3, 4)
    )
    assert best > 0.9, f"output audio does not follow the target audio (r={best:.2f})"


def download(url: str, destination: Path) -> Path:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200
    destination.write_bytes(response.content)
    ranged = httpx.get(url, headers={"Range": "bytes=0-1023"})
    assert ranged.status_code == 206 and ranged.content == response.content[:1024]
    return destination


def assert_times(body: dict[str, object]) -> None:
    created, started, finished = (
        datetime.fromisoformat(str(body[name]).replace("Z", "+00:00"))
        for name in ("created_at", "started_at", "finished_at")
    )
    assert created <= started <= finished


def test_url_job_end_to_end(
    worker_server: ApiServer,
    media_server: MediaServer,
    short_face_video: Path,
    short_speech: Path,
    tmp_path: Path,
) -> None:
    with worker_server.client() as client:
        response = client.post(
            "/lipsync/generate",
            json={
                "inputs": [
                    {"type": "video", "url": media_server.url(short_face_video)},
                    {"type": "audio", "url": media_server.url(f"redirect/2/{short_speech.name}")},
                ],
                "reference_id": "url-e2e",
            },
        )
        assert response.status_code == 200, response.text
        request_id = response.json()["request_id"]
        body = wait_for_status(client, request_id, {"completed", "failed"}, JOB_TIMEOUT)
    assert body["status"] == "completed", body
    assert "error_message" not in body
    assert set(body["sync"]) == {"offset_frames", "confidence"}  # the output's measured sync
    assert_times(body)
    output = download(str(body["output_url"]), tmp_path / "out.mp4")
    assert_output_is_the_video_with_the_target_audio(output, short_speech)
    with sessions_for(worker_server.server.data_dir)() as session:
        job = session.scalars(select(LipsyncJob).where(LipsyncJob.id == request_id)).one()
        assert job.progress == 1.0 and job.attempts == 1
    assert not (worker_server.server.data_dir / "inputs" / request_id).exists()
    assert files_of(worker_server.server.data_dir, request_id) == completed_files(request_id)


def test_upload_job_end_to_end(
    worker_server: ApiServer, short_face_video: Path, short_speech: Path, tmp_path: Path
) -> None:
    with worker_server.client() as client:
        with short_face_video.open("rb") as video, short_speech.open("rb") as audio:
            response = client.post(
                "/lipsync/generate-with-media",
                files={"video": ("talk.mp4", video, "video/mp4"), "audio": ("dub.wav", audio)},
                data={"model": "lipsync-2", "reference_id": "upload-e2e"},
            )
        assert response.status_code == 200, response.text
        body = wait_for_status(client, "upload-e2e", {"completed", "failed"}, JOB_TIMEOUT)
    assert body["status"] == "completed", body
    assert body["id"] == response.json()["request_id"]
    output = download(str(body["output_url"]), tmp_path / "out.mp4")
    assert_output_is_the_video_with_the_target_audio(output, short_speech)
    assert_the_studio_can_show_it(worker_server, body["id"], output, short_face_video)


def test_a_transcript_is_used_or_its_mismatch_noted(
    worker_server: ApiServer, short_face_video: Path, short_speech: Path
) -> None:
    """short_speech says "hello mama": with that text the job completes with no note; with a
    script of another scene, or in a language the worker's espeak-ng does not read, it
    completes all the same, and its notes say the transcript was not used and why."""
    outcomes = {}
    with worker_server.client() as client:
        for name, transcript, language in (
            ("right", "Hello, mama!", "en-US"),
            ("wrong", "The thief fled through the back door of the shop.", "en"),
            ("unread", "Hello, mama!", "tlh"),  # Klingon: well-formed, no espeak-ng voice
        ):
            with short_face_video.open("rb") as video, short_speech.open("rb") as audio:
                response = client.post(
                    "/lipsync/generate-with-media",
                    files={"video": ("talk.mp4", video), "audio": ("dub.wav", audio)},
                    data={
                        "transcript": transcript,
                        "transcript_language": language,
                        "reference_id": f"transcript-{name}",
                    },
                )
            assert response.status_code == 200, response.text
        for name in ("right", "wrong", "unread"):
            outcomes[name] = wait_for_status(
                client, f"transcript-{name}", {"completed", "failed"}, JOB_TIMEOUT
            )
    assert outcomes["right"]["status"] == "completed", outcomes["right"]
    assert not any("transcript" in note for note in outcomes["right"].get("notes", []))
    assert outcomes["wrong"]["status"] == "completed", outcomes["wrong"]
    assert any(
        note.startswith("the transcript was not used") and "does not match" in note
        for note in outcomes["wrong"]["notes"]
    ), outcomes["wrong"]
    assert outcomes["unread"]["status"] == "completed", outcomes["unread"]
    assert any(
        note.endswith("espeak-ng has no voice for its language 'tlh'")
        for note in outcomes["unread"]["notes"]
    ), outcomes["unread"]


def assert_the_studio_can_show_it(
    server: ApiServer, request_id: object, output: Path, source: Path
) -> None:
    """The mouth track has one opening per output frame (the face is in all of them) and the
    output's sound on the same axis; the source link gives back the uploaded video."""
    with server.client() as client:
        track = client.get(f"/lipsync/requests/{request_id}/mouth").json()
        link = client.get(f"/lipsync/requests/{request_id}/source").json()
    with av.open(str(output)) as container:
        frames = sum(1 for _ in container.decode(video=0))
        seconds = float(container.duration or 0) / av.time_base
    assert track["fps"] == 25.0 and len(track["opening"]) == frames
    assert None not in track["opening"] and max(track["opening"]) > 0.05
    peaks = track["waveform"]["peaks"]
    assert len(peaks) == pytest.approx(seconds * track["waveform"]["rate"], abs=3)
    assert max(peaks) > 0.1
    assert httpx.get(link["url"]).content == source.read_bytes()


@pytest.mark.store_independent
def test_faceless_video_fails_with_the_engine_message(
    worker_server: ApiServer, blank_video: Path, short_speech: Path
) -> None:
    with worker_server.client() as client:
        response = client.post(
            "/lipsync/generate-with-media",
            files={
                "video": ("blank.mp4", blank_video.read_bytes(), "video/mp4"),
                "audio": ("dub.wav", short_speech.read_bytes(), "audio/wav"),
            },
        )
        assert response.status_code == 200, response.text
        body = wait_for_status(
            client, response.json()["request_id"], {"completed", "failed"}, JOB_TIMEOUT
        )
    assert body["status"] == "failed"
    assert body["error_message"] == "no face detected in video"
    assert "output_url" not in body and "finished_at" in body


@pytest.mark.parametrize(
    ("video", "audio", "message"),
    [
        ("missing.mp4", "short_speech.wav", "failed to fetch video: HTTP 404"),
        (
            "short_face.mp4",
            "redirect/6/short_speech.wav",
            "failed to fetch audio: more than 5 redirects",
        ),
        ("short_speech.wav", "short_speech.wav", "invalid video file"),
        ("short_face.mp4", "short_face.mp4", "invalid audio file"),
    ],
)
@pytest.mark.store_independent
def test_bad_url_inputs_fail_the_job_with_a_message(
    worker_server: ApiServer,
    media_server: MediaServer,
    short_face_video: Path,
    short_speech: Path,
    video: str,
    audio: str,
    message: str,
) -> None:
    assert short_face_video.name == "short_face.mp4" and short_speech.name == "short_speech.wav"
    with worker_server.client() as client:
        response = client.post(
            "/lipsync/generate",
            json={
                "inputs": [
                    {"type": "video", "url": media_server.url(video)},
                    {"type": "audio", "url": media_server.url(audio)},
                ]
            },
        )
        body = wait_for_status(
            client, response.json()["request_id"], {"completed", "failed"}, JOB_TIMEOUT
        )
    assert (body["status"], body["error_message"]) == ("failed", message)


@pytest.mark.store_independent
def test_urls_to_private_addresses_are_refused_by_default(
    tmp_path: Path, media_server: MediaServer, short_face_video: Path, short_speech: Path
) -> None:
    """A URL naming a private address is refused by the API at once; one whose host name
    resolves to one, by the worker when it connects."""
    key = new_key(tmp_path, "ssrf")
    server = Server(tmp_path, workers=1).start()
    by_address = [
        {"type": "video", "url": media_server.url(short_face_video)},
        {"type": "audio", "url": media_server.url(short_speech)},
    ]
    by_name = [
        {**item, "url": item["url"].replace("//127.0.0.1:", "//localhost:")} for item in by_address
    ]
    try:
        with httpx.Client(base_url=server.api, headers={"x-api-key": key.key}) as client:
            refused = client.post("/lipsync/generate", json={"inputs": by_address})
            assert (refused.status_code, refused.json()) == (400, {"error": "url not allowed"})
            response = client.post("/lipsync/generate", json={"inputs": by_name})
            body = wait_for_status(
                client, response.json()["request_id"], {"completed", "failed"}, 60
            )
    finally:
        server.stop()
    assert body["status"] == "failed"
    assert (
        body["error_message"] == "failed to fetch video: address of host localhost is not allowed"
    )
