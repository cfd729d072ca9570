"""POST /lipsync/generate-with-media: streaming to disk, the cap, and probing before accepting."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from server.helpers import ApiServer, job_row

CAP = 1024 * 1024  # the api_server fixture's CHAMELAION_MAX_UPLOAD_BYTES
BOUNDARY = "chamelaionTestBoundary"
SPEAKER = 'invalid speaker: give {"frame": a source frame index from 0, "x": 0 to 1, "y": 0 to 1}'
LANGUAGE = 'invalid transcript_language: give a BCP-47 language tag (e.g. "en", "fr-FR", "pt-BR")'


def upload(
    api_server: ApiServer,
    files: dict[str, tuple[str, bytes, str]] | list[tuple[str, tuple[str, bytes, str]]],
    data: dict[str, str] | None = None,
) -> httpx.Response:
    with api_server.client() as client:
        return client.post("/lipsync/generate-with-media", files=files, data=data or {})


def media(short_face_video: Path, short_speech: Path) -> dict[str, tuple[str, bytes, str]]:
    return {
        "video": ("talk.mp4", short_face_video.read_bytes(), "video/mp4"),
        "audio": ("dub.wav", short_speech.read_bytes(), "audio/wav"),
    }


def leftover_inputs(api_server: ApiServer) -> set[str]:
    return {path.name for path in (api_server.server.data_dir / "inputs").iterdir()}


def test_upload_is_accepted_and_stored(
    api_server: ApiServer, short_face_video: Path, short_speech: Path
) -> None:
    data = {
        "model": "lipsync-2",
        "reference_id": "upload-demo-01",
        "disable_active_speaker_detection": "true",
        "sync_mode": "bounce",
        "transcript": "🙂" * 20_000,  # at the cap, 80 000 bytes of UTF-8
        "transcript_language": "fr-FR",
        "speaker": '{"frame": 49, "x": 0.5, "y": 0.25}',  # the last of its 50 frames
    }
    response = upload(api_server, media(short_face_video, short_speech), data)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "success"
    request_id = response.json()["request_id"]
    stored = sorted((api_server.server.data_dir / "inputs" / request_id).iterdir())
    assert [path.name for path in stored] == ["audio.wav", "video.mp4"]
    assert stored[1].read_bytes() == short_face_video.read_bytes()
    with api_server.client() as client:
        body = client.get("/lipsync/requests/upload-demo-01").json()
    assert body["id"] == request_id and body["status"] == "queued"
    assert body["speaker"] == {"frame": 49, "x": 0.5, "y": 0.25}
    job = job_row(api_server.server.data_dir, request_id)
    assert (job.transcript, job.transcript_language) == ("🙂" * 20_000, "fr-FR")
    assert (job.speaker_frame, job.speaker_x, job.speaker_y) == (49, 0.5, 0.25)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f, d: f.pop("video"), "expected exactly one video input"),
        (lambda f, d: f.pop("audio"), "expected exactly one audio input"),
        (lambda f, d: d.update(model="lipsync-1"), "unsupported model"),
        (
            lambda f, d: d.update(transcript="é" * 20_001),
            "transcript too long: at most 20000 characters",
        ),
        (
            lambda f, d: d.update(transcript="🙂" * 20_001),  # past the text field's byte cap
            "transcript too long: at most 20000 characters",
        ),
        (lambda f, d: d.update(transcript="hello", transcript_language="Klingon"), LANGUAGE),
        (lambda f, d: d.update(disable_active_speaker_detection="maybe"), "invalid request body"),
        (lambda f, d: d.update(sync_mode="sideways"), "invalid request body"),
        (lambda f, d: d.update(speaker='{"frame": 0, "x": 2, "y": 0.5}'), SPEAKER),
        (lambda f, d: d.update(speaker="0,0.5,0.5"), SPEAKER),  # JSON text, not a triple
        (lambda f, d: d.update(speaker='{"frame": 0, "x": NaN, "y": 0.5}'), SPEAKER),
        (
            lambda f, d: d.update(speaker='{"frame": 50, "x": 0.5, "y": 0.5}'),  # 50 frames
            "speaker frame is beyond the video's last frame",
        ),
        (lambda f, d: d.update(reference_id="x" * 300), "invalid reference_id"),
        (lambda f, d: d.update(reference_id="a/b"), "invalid reference_id"),
        (
            lambda f, d: f.update(video=("v.mp4", b"not a video at all", "video/mp4")),
            "invalid video file",
        ),
        (lambda f, d: f.update(video=f["audio"]), "invalid video file"),  # audio only: no picture
        (
            lambda f, d: f.update(audio=("a.wav", b"RIFF....WAVEjunk", "audio/wav")),
            "invalid audio file",
        ),
        (lambda f, d: f.update(audio=f["video"]), "invalid audio file"),  # the video has no sound
        (lambda f, d: f.update(audio=("a.wav", b"", "audio/wav")), "invalid audio file"),
    ],
)
@pytest.mark.store_independent
def test_upload_errors_leave_nothing_behind(
    api_server: ApiServer,
    short_face_video: Path,
    short_speech: Path,
    mutate: Callable[[dict[str, tuple[str, bytes, str]], dict[str, str]], None],
    message: str,
) -> None:
    files, data = media(short_face_video, short_speech), dict[str, str]()
    mutate(files, data)
    before = leftover_inputs(api_server)
    response = upload(api_server, files, data)
    assert (response.status_code, response.json()) == (400, {"error": message})
    assert leftover_inputs(api_server) == before


@pytest.mark.store_independent
def test_two_videos_is_an_error(
    api_server: ApiServer, short_face_video: Path, short_speech: Path
) -> None:
    files = list(media(short_face_video, short_speech).items())
    files.append(("video", ("again.mp4", short_face_video.read_bytes(), "video/mp4")))
    response = upload(api_server, files)
    assert response.json() == {"error": "expected exactly one video input"}


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
@pytest.mark.store_independent
def test_upload_needs_multipart(api_server: ApiServer, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    with api_server.client() as client:
        response = client.post("/lipsync/generate-with-media", content=b"{}", headers=headers)
    assert (response.status_code, response.json()) == (
        415,
        {"error": "content-type must be multipart/form-data"},
    )


@pytest.mark.store_independent
def test_truncated_multipart_is_rejected(api_server: ApiServer) -> None:
    body = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="video"; filename="v.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\nhalf a file"
    ).encode()
    response = api_server.post_multipart(body, BOUNDARY)
    assert (response.status_code, response.json()) == (400, {"error": "invalid request body"})


def _oversized_body(total: int) -> Iterator[bytes]:
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="video"; filename="big.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    chunk = b"\0" * (256 * 1024)
    for _ in range(total // len(chunk)):
        yield chunk
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


@pytest.mark.store_independent
def test_upload_over_the_cap_is_413_with_memory_flat(api_server: ApiServer) -> None:
    server = psutil.Process(api_server.server.process.pid)  # type: ignore[union-attr]
    size = 40 * CAP  # streamed (chunked), so the server cannot know the size in advance
    with api_server.client() as client:
        client.get("/lipsync/requests")  # warm up
        before = server.memory_info().rss
        before_inputs = leftover_inputs(api_server)
        response = client.post(
            "/lipsync/generate-with-media",
            content=_oversized_body(size),
            headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
        after = server.memory_info().rss
    assert (response.status_code, response.json()) == (413, {"error": "file too large"})
    assert after - before < 8 * 1024 * 1024, f"server grew by {(after - before) >> 20} MiB"
    assert leftover_inputs(api_server) == before_inputs


@pytest.mark.store_independent
def test_hopeless_content_length_is_refused_without_reading(api_server: ApiServer) -> None:
    port = api_server.server.port
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            (
                "POST /api/v1/lipsync/generate-with-media HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\nx-api-key: {api_server.key.key}\r\n"
                f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                f"Content-Length: {10**12}\r\n\r\n"
            ).encode()
        )
        reply = ""
        while not reply.endswith("}"):  # headers and body may arrive in separate segments
            segment = sock.recv(65536).decode()
            if not segment:
                break
            reply += segment
    assert reply.startswith("HTTP/1.1 413"), reply
    assert reply.endswith('{"error":"file too large"}')
    assert time.monotonic() - started < 5
