"""Hostile and careless requests get a defined 4xx, cost nothing and break nothing: JSON depth
and size, every multipart part capped, inputs the worker would refuse refused at upload (before
any quota is spent), reference_id rules, URL normalisation, and links never built from an
untrusted Host header. All over real HTTP against a real server."""

from __future__ import annotations

import dataclasses
import http.client
import json
import socket
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

import mediagen
from chamelaion.server.models import JobStatus, LipsyncJob
from server.helpers import ApiServer, new_key, sessions_for

VIDEO = {"type": "video", "url": "https://cdn.example.com/episodes/42.mp4"}
AUDIO = {"type": "audio", "url": "https://cdn.example.com/dubs/42-japanese.wav"}
BOUNDARY = "limitsBoundary"


@pytest.fixture(scope="module")
def api_server(api_server: ApiServer) -> ApiServer:
    """The session's server, with a key of this module's own whose generate rate limit stays
    out of the way (the shared key's 60/minute is for the contract tests)."""
    key = new_key(api_server.server.data_dir, "limits", rate_limit_generate="100000/minute")
    return dataclasses.replace(api_server, key=key)


def exchange(sock: socket.socket, request: bytes) -> tuple[int, bytes, http.client.HTTPResponse]:
    """Send one raw HTTP/1.1 request on `sock` and read its whole response."""
    sock.sendall(request)
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, response.read(), response


def raw_post(api_server: ApiServer, path: str, body: bytes, content_type: str) -> bytes:
    port = api_server.server.port
    return (
        f"POST /api/v1{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"x-api-key: {api_server.key.key}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def raw_get(api_server: ApiServer, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{api_server.server.port}\r\n\r\n".encode()


def assert_answered_and_kept_alive(
    api_server: ApiServer, body: bytes, status: int, error: str
) -> None:
    """The request gets `status` with `error`, and the same connection serves the next one."""
    with socket.create_connection(("127.0.0.1", api_server.server.port), timeout=30) as sock:
        request = raw_post(api_server, "/lipsync/generate", body, "application/json")
        answer = exchange(sock, request)
        assert (answer[0], json.loads(answer[1])) == (status, {"error": error})
        assert not answer[2].will_close
        assert exchange(sock, raw_get(api_server, "/healthz"))[:2] == (200, b'{"status":"ok"}')


# --- JSON bodies ------------------------------------------------------------------------------


@pytest.mark.store_independent
def test_deeply_nested_json_is_a_400_without_a_traceback(api_server: ApiServer) -> None:
    for depth in (1000, 100_000):
        nested = b'{"inputs": ' + b"[" * depth + b"]" * depth + b"}"
        assert_answered_and_kept_alive(api_server, nested, 400, "invalid request body")
    assert "Traceback" not in api_server.server.logs()


@pytest.mark.store_independent
def test_json_over_one_mib_is_a_413(api_server: ApiServer) -> None:
    padding = "x" * (1024 * 1024)
    body = json.dumps({"inputs": [VIDEO, AUDIO], "padding": padding}).encode()
    assert_answered_and_kept_alive(api_server, body, 413, "request body too large")
    # just under the cap is read and judged on its merits
    fits = json.dumps({"inputs": [VIDEO, AUDIO], "padding": padding[:1_000_000]}).encode()
    with httpx.Client(base_url=api_server.api, headers={"x-api-key": api_server.key.key}) as c:
        response = c.post(
            "/lipsync/generate", content=fits, headers={"content-type": "application/json"}
        )
    assert response.status_code == 200, response.text


# --- multipart parts ----------------------------------------------------------------------------


def multipart(*parts: tuple[str, str | None, bytes], headers: str = "") -> bytes:
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += (
            (f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n{headers}\r\n").encode()
            + content
            + b"\r\n"
        )
    return body + f"--{BOUNDARY}--\r\n".encode()


@pytest.mark.parametrize(
    "extra",
    [
        ("thumbnail", "thumb.jpg", b"\0" * (200 * 1024)),  # a file under a name we do not use
        ("notes", None, b"n" * (200 * 1024)),  # a text field
    ],
)
@pytest.mark.store_independent
def test_every_other_part_is_capped(
    api_server: ApiServer,
    short_face_video: Path,
    short_speech: Path,
    extra: tuple[str, str | None, bytes],
) -> None:
    body = multipart(
        ("video", "v.mp4", short_face_video.read_bytes()),
        extra,
        ("audio", "a.wav", short_speech.read_bytes()),
    )
    response = api_server.post_multipart(body, BOUNDARY)
    assert (response.status_code, response.json()) == (400, {"error": "invalid request body"})


@pytest.mark.store_independent
def test_part_headers_are_capped(api_server: ApiServer, short_speech: Path) -> None:
    """(python-multipart enforces this one; kept here as part of "every part is capped".)"""
    body = multipart(
        ("audio", "a.wav", short_speech.read_bytes()), headers=f"X-Junk: {'j' * 65536}\r\n"
    )
    response = api_server.post_multipart(body, BOUNDARY)
    assert (response.status_code, response.json()) == (400, {"error": "invalid request body"})


# --- what the worker would refuse is refused at upload ----------------------------------------


@pytest.fixture(scope="module")
def refusable(media_dir: Path) -> dict[str, Path]:
    return {
        "still": mediagen.write_still_image(media_dir / "still.png"),
        "huge": mediagen.write_flat_video(media_dir / "huge.mp4", 8000, 8000),
        "hour": mediagen.write_long_silence(media_dir / "hour.flac", 3600),
    }


@pytest.mark.parametrize(
    ("video", "audio", "message"),
    [
        ("still", None, "video is a still image"),
        ("huge", None, "video resolution too large"),
        (None, "hour", "audio too long"),
    ],
)
def test_uploads_the_worker_would_refuse_are_refused_without_spending_quota(
    api_server: ApiServer,
    refusable: dict[str, Path],
    short_face_video: Path,
    short_speech: Path,
    video: str | None,
    audio: str | None,
    message: str,
) -> None:
    key = new_key(api_server.server.data_dir, "one-job", max_requests=1)
    video_path = refusable[video] if video else short_face_video
    audio_path = refusable[audio] if audio else short_speech
    with api_server.client(key) as client:
        for _ in range(2):
            response = client.post(
                "/lipsync/generate-with-media",
                files={
                    "video": (video_path.name, video_path.read_bytes()),
                    "audio": (audio_path.name, audio_path.read_bytes()),
                },
            )
            assert (response.status_code, response.json()) == (400, {"error": message})
        good = client.post(
            "/lipsync/generate-with-media",
            files={"video": short_face_video.read_bytes(), "audio": short_speech.read_bytes()},
        )
        assert good.status_code == 200, good.text  # the quota of one was not spent


# --- reference_id -------------------------------------------------------------------------------


BAD_REFERENCE_IDS = [
    "",
    "x" * 257,
    "a/b",
    "..",
    ".",
    " lead",
    "trail ",
    "nul\0",
    "tab\there",
    "bell\x07",
    "c1\x85",
    "line\u2028",
]


@pytest.mark.parametrize("reference_id", BAD_REFERENCE_IDS)
@pytest.mark.store_independent
def test_bad_reference_ids_are_refused_by_both_routes(
    api_server: ApiServer, short_face_video: Path, short_speech: Path, reference_id: str
) -> None:
    with api_server.client() as client:
        response = client.post(
            "/lipsync/generate", json={"inputs": [VIDEO, AUDIO], "reference_id": reference_id}
        )
        assert (response.status_code, response.json()) == (400, {"error": "invalid reference_id"})
        response = client.post(
            "/lipsync/generate-with-media",
            files={"video": short_face_video.read_bytes(), "audio": short_speech.read_bytes()},
            data={"reference_id": reference_id},
        )
        assert (response.status_code, response.json()) == (400, {"error": "invalid reference_id"})


@pytest.mark.parametrize(
    "reference_id", ["a", "dub-episode-42", "v1..2", "Folge 42 (ü) #1", "x" * 256]
)
@pytest.mark.store_independent
def test_good_reference_ids_are_kept_as_given(api_server: ApiServer, reference_id: str) -> None:
    with api_server.client() as client:
        response = client.post(
            "/lipsync/generate", json={"inputs": [VIDEO, AUDIO], "reference_id": reference_id}
        )
        assert response.status_code == 200, response.text
        request_id = response.json()["request_id"]
        assert client.get(f"/lipsync/requests/{request_id}").json()["reference_id"] == reference_id


def test_looking_up_a_reference_id_no_request_can_have_finds_nothing(api_server: ApiServer) -> None:
    """A NUL once reached PostgreSQL from these lookups, which answered an error (a 500)."""
    with api_server.client() as client:
        response = client.get("/lipsync/requests/nul%00inside")
        assert (response.status_code, response.json()) == (404, {"error": "not found"})
        response = client.get("/lipsync/requests", params={"reference_id": "nul\x00inside"})
        assert response.status_code == 200, response.text
        assert response.json() == {"data": [], "pagination": {"limit": 20, "offset": 0, "total": 0}}


# --- URLs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://0177.0.0.1/a.wav", "invalid request body"),  # octal loopback
        ("http://2130706433/a.wav", "invalid request body"),  # decimal loopback
        ("http://0x7f.1/a.wav", "invalid request body"),
        ("http://127.1/a.wav", "invalid request body"),
        ("http://cdn.example.com:99999/a.wav", "invalid request body"),
        ("http://cdn.example.com:0/a.wav", "invalid request body"),
        ("http://127.0.0.1/a.wav", "url not allowed"),
        ("http://[::1]/a.wav", "url not allowed"),
        ("http://[64:ff9b::a9fe:a9fe]/latest/meta-data", "url not allowed"),  # NAT64 metadata
        ("http://[2002:a9fe:a9fe::1]/a.wav", "url not allowed"),  # 6to4
        ("http://[::169.254.169.254]/a.wav", "url not allowed"),  # IPv4-compatible
        ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/a.wav", "url not allowed"),  # Teredo
    ],
)
@pytest.mark.store_independent
def test_urls_are_judged_at_the_api(api_server: ApiServer, url: str, message: str) -> None:
    with api_server.client() as client:
        response = client.post(
            "/lipsync/generate", json={"inputs": [VIDEO, {"type": "audio", "url": url}]}
        )
    assert (response.status_code, response.json()) == (400, {"error": message})


def test_the_stored_url_is_the_normalised_one(api_server: ApiServer) -> None:
    given = "HTTPS://Bücher.Example.COM:443/dubs/ä.wav?x=1"
    with api_server.client() as client:
        response = client.post(
            "/lipsync/generate", json={"inputs": [VIDEO, {"type": "audio", "url": given}]}
        )
    assert response.status_code == 200, response.text
    with sessions_for(api_server.server.data_dir)() as session:
        stored = session.scalar(
            select(LipsyncJob.audio_source).where(LipsyncJob.id == response.json()["request_id"])
        )
    assert stored == "https://xn--bcher-kva.example.com:443/dubs/%C3%A4.wav?x=1"


# --- output links and the Host header ---------------------------------------------------------


@pytest.mark.store_independent
def test_output_urls_are_never_built_from_an_untrusted_host(api_server: ApiServer) -> None:
    with api_server.client() as client:
        request_id = client.post("/lipsync/generate", json={"inputs": [VIDEO, AUDIO]}).json()[
            "request_id"
        ]
    with sessions_for(api_server.server.data_dir)() as session:
        session.execute(
            update(LipsyncJob)
            .where(LipsyncJob.id == request_id)
            .values(status=JobStatus.COMPLETED.value)
        )
        session.commit()
    with api_server.client() as client:
        trusted = client.get(f"/lipsync/requests/{request_id}").json()["output_url"]
        forged = client.get(
            f"/lipsync/requests/{request_id}", headers={"Host": "attacker.example"}
        ).json()["output_url"]
    port = api_server.server.port
    assert trusted.startswith(f"http://127.0.0.1:{port}/api/v1/files/{request_id}.mp4?")
    assert forged.startswith(f"/api/v1/files/{request_id}.mp4?expires=")
    # the relative link works against the address the client used
    download = httpx.get(f"http://127.0.0.1:{port}{forged}")
    assert download.status_code == 404  # signature good; the file was never rendered
    assert download.json() == {"error": "not found"}
