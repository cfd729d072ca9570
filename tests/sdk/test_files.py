"""Upload inputs of generate_with_media: every file kind, streaming, re-sending on retry."""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import os
import threading
import tracemalloc
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from chamelaion import AsyncChamelaion, Chamelaion, InternalServerError
from sdk.helpers import Script, Sleeps, async_client, error, generated, sync_client

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
AUDIO = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(reversed(range(256))) * 30


def parts(request: httpx.Request) -> dict[str, tuple[str | None, str | None, bytes]]:
    """The multipart body as {field: (filename, content_type, content)}."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.content)
    assert message.is_multipart()
    out: dict[str, tuple[str | None, str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        content_type = part.get("content-type", None)
        payload = part.get_payload(decode=True)
        assert isinstance(name, str) and isinstance(payload, bytes), name
        out[name] = (filename, content_type, payload)
    return out


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    video = tmp_path / "face.mp4"
    audio = tmp_path / "dub.wav"
    video.write_bytes(VIDEO)
    audio.write_bytes(AUDIO)
    return video, audio


def _kinds(
    video: Path, audio: Path, opened: ExitStack
) -> dict[str, tuple[Any, Any, str, str | None, str, str | None]]:
    """kind -> (video arg, audio arg, video filename, video ctype, audio filename, audio ctype)"""
    return {
        "str path": (str(video), str(audio), "face.mp4", "video/mp4", "dub.wav", "audio/x-wav"),
        "Path": (video, audio, "face.mp4", "video/mp4", "dub.wav", "audio/x-wav"),
        "bytes": (VIDEO, AUDIO, "video", "application/octet-stream", "audio", None),
        "open file": (
            opened.enter_context(video.open("rb")),
            opened.enter_context(audio.open("rb")),
            "face.mp4",
            "video/mp4",
            "dub.wav",
            "audio/x-wav",
        ),
        "BytesIO": (io.BytesIO(VIDEO), io.BytesIO(AUDIO), "video", None, "audio", None),
        "tuple3": (
            ("clip.mov", VIDEO, "video/quicktime"),
            ("speech.flac", audio, "audio/flac"),
            "clip.mov",
            "video/quicktime",
            "speech.flac",
            "audio/flac",
        ),
        "tuple2": (
            ("a.mp4", io.BytesIO(VIDEO)),
            ("b.wav", str(audio)),
            "a.mp4",
            "video/mp4",
            "b.wav",
            "audio/x-wav",
        ),
    }


KINDS = ["str path", "Path", "bytes", "open file", "BytesIO", "tuple3", "tuple2"]


@pytest.mark.parametrize("kind", KINDS)
def test_each_file_kind_is_uploaded(kind: str, files: tuple[Path, Path], opened: ExitStack) -> None:
    video, audio, vname, vtype, aname, atype = _kinds(*files, opened)[kind]
    script = Script(generated())
    job = sync_client(script).lipsync.generate_with_media(
        video=video, audio=audio, model="lipsync-2", reference_id="upload-demo-01"
    )
    assert job.request_id == "6f82a2d8-a6d4-4e8a-a0fa-e8b09823a2d8"
    (req,) = script.requests
    assert req.url.path == "/api/v1/lipsync/generate-with-media"
    assert req.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert req.headers["x-api-key"] == "test-key-123"
    got = parts(req)
    assert got["video"][0] == vname and got["video"][2] == VIDEO
    assert got["audio"][0] == aname and got["audio"][2] == AUDIO
    if vtype:
        assert got["video"][1] == vtype
    if atype:
        assert got["audio"][1] in {atype, "audio/wav"}
    assert got["model"][2] == b"lipsync-2"
    assert got["reference_id"][2] == b"upload-demo-01"
    assert set(got) == {"video", "audio", "model", "reference_id"}


@pytest.mark.parametrize("kind", KINDS)
async def test_each_file_kind_is_uploaded_async(
    kind: str, files: tuple[Path, Path], opened: ExitStack
) -> None:
    video, audio, vname, _, aname, _ = _kinds(*files, opened)[kind]
    script = Script(generated())
    await async_client(script).lipsync.generate_with_media(video=video, audio=audio)
    got = parts(script.requests[0])
    assert (got["video"][0], got["video"][2]) == (vname, VIDEO)
    assert (got["audio"][0], got["audio"][2]) == (aname, AUDIO)


def test_form_fields(files: tuple[Path, Path]) -> None:
    script = Script(generated(), generated())
    client = sync_client(script)
    client.lipsync.generate_with_media(
        video=files[0],
        audio=files[1],
        disable_active_speaker_detection=True,
        sync_mode="remap",
        speaker={"frame": 3, "x": 0.5, "y": 0.125},
    )
    client.lipsync.generate_with_media(
        video=files[0], audio=files[1], disable_active_speaker_detection=False
    )
    first, second = parts(script.requests[0]), parts(script.requests[1])
    assert first["disable_active_speaker_detection"][2] == b"true"
    assert first["sync_mode"][2] == b"remap"
    assert json.loads(first["speaker"][2]) == {"frame": 3, "x": 0.5, "y": 0.125}  # JSON text
    assert "model" not in first and "reference_id" not in first
    assert second["disable_active_speaker_detection"][2] == b"false"


def test_open_file_is_sent_from_its_start_and_left_open(files: tuple[Path, Path]) -> None:
    script = Script(generated())
    with files[0].open("rb") as video:
        video.read(100)
        sync_client(script).lipsync.generate_with_media(video=video, audio=AUDIO)
        assert not video.closed
    assert parts(script.requests[0])["video"][2] == VIDEO


@pytest.mark.parametrize("kind", KINDS)
def test_uploads_are_resent_from_the_start_on_retry(
    kind: str, files: tuple[Path, Path], sleeps: Sleeps, opened: ExitStack
) -> None:
    video, audio, *_ = _kinds(*files, opened)[kind]
    script = Script(error(503, "busy"), httpx.ConnectError("refused"), generated())
    sync_client(script, max_retries=2).lipsync.generate_with_media(video=video, audio=audio)
    assert script.count == 3
    for req in (script.requests[0], script.requests[2]):
        got = parts(req)
        assert got["video"][2] == VIDEO
        assert got["audio"][2] == AUDIO


async def test_async_uploads_are_resent_on_retry(files: tuple[Path, Path], sleeps: Sleeps) -> None:
    with files[0].open("rb") as video:
        script = Script(error(500, "internal error"), generated())
        await async_client(script).lipsync.generate_with_media(video=video, audio=files[1])
    assert [parts(r)["video"][2] for r in script.requests] == [VIDEO, VIDEO]


def test_path_files_are_closed_after_each_attempt(files: tuple[Path, Path], sleeps: Sleeps) -> None:
    def open_fds_on(path: Path) -> int:
        count = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                    count += 1
            except OSError:
                pass
        return count

    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(open_fds_on(files[0]))
        return generated() if len(seen) == 2 else error(502, "bad gateway")

    sync_client(handler).lipsync.generate_with_media(video=files[0], audio=files[1])
    assert seen == [1, 1]  # open while sending
    assert open_fds_on(files[0]) == 0  # closed afterwards


class ForwardOnly:
    """A stream that can be read once, like a pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)


def test_non_seekable_stream_is_sent_chunked_and_not_retried(sleeps: Sleeps) -> None:
    script = Script(error(503, "busy"), generated())
    with pytest.raises(InternalServerError):
        sync_client(script, max_retries=3).lipsync.generate_with_media(
            video=("v.mp4", ForwardOnly(VIDEO), "video/mp4"), audio=AUDIO
        )
    assert script.count == 1
    req = script.requests[0]
    assert req.headers.get("transfer-encoding") == "chunked"
    assert parts(req)["video"][2] == VIDEO


def test_pipe_is_uploaded_whole() -> None:
    read_fd, write_fd = os.pipe()

    def writer() -> None:
        with os.fdopen(write_fd, "wb") as w:
            w.write(VIDEO)

    thread = threading.Thread(target=writer)
    thread.start()
    script = Script(generated())
    with os.fdopen(read_fd, "rb") as pipe:
        sync_client(script).lipsync.generate_with_media(video=pipe, audio=AUDIO)
    thread.join()
    assert parts(script.requests[0])["video"][2] == VIDEO  # not cut to fstat()'s size 0


def test_bad_inputs_fail_before_any_request(tmp_path: Path) -> None:
    script = Script()
    client = sync_client(script)
    with pytest.raises(FileNotFoundError, match="video"):
        client.lipsync.generate_with_media(video=tmp_path / "missing.mp4", audio=AUDIO)
    with pytest.raises(FileNotFoundError):
        client.lipsync.generate_with_media(video=VIDEO, audio=str(tmp_path))  # a directory
    text = tmp_path / "t.txt"
    text.write_text("hi")
    with text.open() as f, pytest.raises(TypeError, match="binary"):
        client.lipsync.generate_with_media(video=VIDEO, audio=f)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="audio"):
        client.lipsync.generate_with_media(video=VIDEO, audio=12)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.lipsync.generate_with_media(video=("a", VIDEO, "b", "c"), audio=AUDIO)  # type: ignore[arg-type]
    assert script.count == 0


# -- streaming: nothing is read whole ------------------------------------------------------------


class TrackingReader(io.RawIOBase):
    """A readable, seekable file that records every read() size and the thread reading."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._pos = 0
        self.read_sizes: list[int] = []
        self.threads: set[int] = set()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = [offset, self._pos + offset, self._size + offset][whence]
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        self.read_sizes.append(-1 if size is None else size)
        self.threads.add(threading.get_ident())
        if size is None or size < 0:
            size = self._size - self._pos
        n = max(0, min(size, self._size - self._pos))
        self._pos += n
        return b"\x5a" * n


class CountingTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Consumes the request body chunk by chunk (keeping only a count) and answers 200."""

    def __init__(self) -> None:
        self.received = 0
        self.max_chunk = 0

    def _count(self, chunk: bytes) -> None:
        self.received += len(chunk)
        self.max_chunk = max(self.max_chunk, len(chunk))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        for chunk in request.stream:
            self._count(chunk)
        return generated()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        async for chunk in request.stream:
            self._count(chunk)
        return generated()


SIZE = 48 * 1024 * 1024


def test_file_object_is_read_in_chunks() -> None:
    reader = TrackingReader(SIZE)
    transport = CountingTransport()
    client = Chamelaion(api_key="k", http_client=httpx.Client(transport=transport))
    client.lipsync.generate_with_media(video=("big.mp4", reader, "video/mp4"), audio=AUDIO)
    assert transport.received > SIZE
    assert transport.max_chunk <= 64 * 1024
    assert -1 not in reader.read_sizes
    assert max(reader.read_sizes) <= 64 * 1024
    assert len(reader.read_sizes) >= SIZE // (64 * 1024)


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.mp4"
    with path.open("wb") as f:
        for _ in range(SIZE // (1024 * 1024)):
            f.write(os.urandom(1024 * 1024))
    return path


def test_path_upload_memory_stays_flat(big_file: Path) -> None:
    transport = CountingTransport()
    client = Chamelaion(api_key="k", http_client=httpx.Client(transport=transport))
    tracemalloc.start()
    try:
        client.lipsync.generate_with_media(video=big_file, audio=AUDIO)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert transport.received > SIZE
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes while uploading {SIZE}"


async def test_async_path_upload_memory_stays_flat(big_file: Path) -> None:
    transport = CountingTransport()
    client = AsyncChamelaion(api_key="k", http_client=httpx.AsyncClient(transport=transport))
    tracemalloc.start()
    try:
        await client.lipsync.generate_with_media(video=big_file, audio=AUDIO)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert transport.received > SIZE
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes while uploading {SIZE}"


async def test_async_reads_files_off_the_event_loop() -> None:
    reader = TrackingReader(1024 * 1024)
    transport = CountingTransport()
    client = AsyncChamelaion(api_key="k", http_client=httpx.AsyncClient(transport=transport))
    await client.lipsync.generate_with_media(video=("v.mp4", reader, "video/mp4"), audio=AUDIO)
    assert transport.received > 1024 * 1024
    assert threading.get_ident() not in reader.threads
    assert max(reader.read_sizes) <= 64 * 1024
