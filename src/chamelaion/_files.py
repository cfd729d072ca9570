"""Upload inputs for ``generate_with_media``.

A file may be given as

- a path (``str`` or ``os.PathLike``): opened afresh for each attempt and closed afterwards;
- ``bytes``;
- an open binary file (anything with ``read``, e.g. ``open(p, "rb")`` or ``io.BytesIO``): sent
  from its beginning; it stays open (it is yours to close);
- a tuple ``(filename, file)`` or ``(filename, file, content_type)`` where ``file`` is any of the
  above.

Nothing is read whole into memory: httpx's multipart encoder reads files in 64 KiB chunks while
sending. A retry sends the files again from the start, so a file object that cannot seek (a pipe,
a socket) makes that request non-retryable; such a stream is sent with chunked encoding because
its length cannot be known up front.
"""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Protocol

import httpx

__all__ = ["FileContent", "FileTypes", "Readable"]


class Readable(Protocol):
    """An open binary file as the SDK needs it: anything with ``read`` (``IO[bytes]``, a
    ``BytesIO``, a pipe's reader, an object of one's own); ``seek`` is used when it is there."""

    def read(self, size: int = -1, /) -> bytes: ...


FileContent = Readable | bytes | os.PathLike[str] | str
FileTypes = (
    FileContent | tuple[str | None, FileContent] | tuple[str | None, FileContent, str | None]
)

# What httpx's `files=` takes, per field: (filename, content, content type or None).
HttpxFile = tuple[str, IO[bytes] | bytes, str | None]


def _split(field: str, value: object) -> tuple[str | None, object, str | None]:
    if isinstance(value, tuple):
        if len(value) == 2:
            filename, content = value
            content_type = None
        elif len(value) == 3:
            filename, content, content_type = value
        else:
            raise TypeError(
                f"{field}: a file tuple must be (filename, file) or (filename, file, content_type)"
            )
        if filename is not None and not isinstance(filename, str):
            raise TypeError(f"{field}: the filename in a file tuple must be a str or None")
        if content_type is not None and not isinstance(content_type, str):
            raise TypeError(f"{field}: the content type in a file tuple must be a str or None")
        return filename, content, content_type
    return None, value, None


def _is_filelike(content: object) -> bool:
    return callable(getattr(content, "read", None))


def _seekable(content: object) -> bool:
    seekable = getattr(content, "seekable", None)
    if callable(seekable):
        try:
            return bool(seekable())
        except (OSError, ValueError):
            return False
    return callable(getattr(content, "seek", None))


def check_file(field: str, value: object) -> None:
    """Raise a clear ``TypeError``/``FileNotFoundError`` now rather than mid-request."""
    _, content, _ = _split(field, value)
    if isinstance(content, (bytes, bytearray, memoryview)):
        return
    if isinstance(content, (str, os.PathLike)):
        path = Path(content)
        if not path.is_file():
            raise FileNotFoundError(f"{field}: no such file: {path}")
        return
    if _is_filelike(content):
        mode = getattr(content, "mode", None)
        if isinstance(content, io.TextIOBase) or (isinstance(mode, str) and "b" not in mode):
            raise TypeError(f"{field}: files must be opened in binary mode ('rb'), not text mode")
        return
    raise TypeError(
        f"{field}: expected a path, bytes, an open binary file or a (filename, file, "
        f"content_type) tuple, got {type(content).__name__}"
    )


def is_rewindable(value: object) -> bool:
    """Whether the file can be sent again from the start (for a retry)."""
    _, content, _ = _split("file", value)
    if _is_filelike(content):
        return _seekable(content)
    return True


class _ForwardOnly:
    """Hides ``fileno``/``seek``/``tell`` of a stream that cannot seek.

    httpx would otherwise take ``os.fstat(fileno).st_size`` (0 for a pipe) as its length.
    Without them httpx sends the stream with chunked transfer encoding.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw

    def read(self, size: int = -1) -> bytes:
        return self._raw.read(size)


def _default_filename(field: str, content: object) -> str:
    name = getattr(content, "name", None)
    if isinstance(name, str) and name and not name.startswith("<"):
        return Path(name).name
    return field


@contextmanager
def open_files(files: Mapping[str, FileTypes]) -> Iterator[list[tuple[str, HttpxFile]]]:
    """The files as httpx wants them, for one attempt; closes the files it opened itself."""
    with ExitStack() as stack:
        out: list[tuple[str, HttpxFile]] = []
        for field, value in files.items():
            filename, content, content_type = _split(field, value)
            data: IO[bytes] | bytes
            if isinstance(content, (bytes, bytearray, memoryview)):
                data = bytes(content)
                filename = filename or field
            elif isinstance(content, (str, os.PathLike)):
                path = Path(content)
                data = stack.enter_context(path.open("rb"))
                filename = filename or path.name
            elif _is_filelike(content):
                filename = filename or _default_filename(field, content)
                fileobj: IO[bytes] = content  # type: ignore[assignment]
                data = fileobj if _seekable(content) else _ForwardOnly(fileobj)  # type: ignore[assignment]
            else:  # check_file() rejects these before any request is made
                raise TypeError(f"{field}: unsupported file type {type(content).__name__}")
            out.append((field, (filename, data, content_type)))
        yield out


class ThreadedAsyncStream(httpx.AsyncByteStream):
    """Runs a blocking byte iterator (httpx's multipart encoder reading files) in a worker
    thread, one chunk at a time, so an async upload does not block the event loop on disk reads.
    """

    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        import anyio.to_thread  # httpx depends on anyio; imported only when uploading

        iterator = iter(self._stream)
        while True:
            chunk = await anyio.to_thread.run_sync(next, iterator, None)
            if chunk is None:
                return
            yield chunk
