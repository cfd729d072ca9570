"""Local file storage: where inputs and outputs live, and signed, expiring download URLs.

An output URL carries its expiry and an HMAC-SHA256 over (request id, expiry), so the download
route needs no API key (players and browsers can open it) yet cannot be forged or extended.
A completed job's source video is kept beside its output and has links of its own, signed over
(request id + "/source", expiry): an output link, which a user may hand on, never opens the
source.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import anyio

from chamelaion.server.config import Settings

CHUNK_SIZE = 256 * 1024


class SignatureCheck(Enum):
    VALID = "valid"
    EXPIRED = "expired"
    INVALID = "invalid"


class OutputSigner:
    def __init__(self, key: bytes, ttl_seconds: int) -> None:
        self._key = key
        self._ttl = ttl_seconds

    def _signature(self, resource: str, expires: int) -> str:
        message = f"{resource}:{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def _signed(self, base_url: str, path: str, resource: str, now: float | None) -> str:
        expires = int((time.time() if now is None else now) + self._ttl)
        signature = self._signature(resource, expires)
        return f"{base_url.rstrip('/')}/api/v1/files/{path}?expires={expires}&signature={signature}"

    def url(self, base_url: str, request_id: str, now: float | None = None) -> str:
        """The output's download link."""
        return self._signed(base_url, f"{request_id}.mp4", request_id, now)

    def source_url(self, base_url: str, request_id: str, now: float | None = None) -> str:
        """The kept source video's link. Its resource has a "/", which a request id in an
        output path never has, so neither kind of signature is valid for the other."""
        return self._signed(base_url, f"{request_id}/source", _source(request_id), now)

    def check(self, request_id: str, expires: int, signature: str) -> SignatureCheck:
        """An output link's signature."""
        return self._check(request_id, expires, signature)

    def check_source(self, request_id: str, expires: int, signature: str) -> SignatureCheck:
        return self._check(_source(request_id), expires, signature)

    def _check(self, resource: str, expires: int, signature: str) -> SignatureCheck:
        expected = self._signature(resource, expires)
        # compare_digest refuses non-ASCII str, and a URL can carry anything: compare bytes.
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            return SignatureCheck.INVALID
        if expires < time.time():
            return SignatureCheck.EXPIRED
        return SignatureCheck.VALID


def _source(request_id: str) -> str:
    return f"{request_id}/source"


class Storage:
    """Paths under the data dir. Request ids are UUIDs we generate, so they are safe names."""

    def __init__(self, settings: Settings) -> None:
        self._data = settings.data_dir
        self._inputs = settings.inputs_dir
        self._outputs = settings.outputs_dir
        self._min_free = settings.min_free_bytes

    def has_room(self) -> bool:
        """Whether the data dir's disk still has the configured free space: below it, new jobs
        are refused (507) and /readyz fails, before a full disk breaks uploads and renders."""
        return shutil.disk_usage(self._data).free >= self._min_free

    def input_dir(self, request_id: str) -> Path:
        return self._inputs / request_id

    def work_dir(self, request_id: str) -> Path:
        """The job's analysis and finished segments (`engine.segments`), kept across attempts so
        a job resumes where a dead worker left it. Inside the input dir: it lives and dies with
        the inputs (freed when the job finishes, kept while it is re-queued)."""
        return self.input_dir(request_id) / "segments"

    def output_path(self, request_id: str) -> Path:
        return self._outputs / f"{request_id}.mp4"

    def source_path(self, request_id: str) -> Path:
        """The source video of a completed job, as it was uploaded or fetched."""
        return self._outputs / f"{request_id}.source"

    def mouth_path(self, request_id: str) -> Path:
        """The output's per-frame mouth track (JSON, see `server.tracks`)."""
        return self._outputs / f"{request_id}.mouth.json"

    def keep_source(self, request_id: str, video: Path) -> None:
        """Keep the input video beside the output so the two can be compared. A hard link (the
        inputs are about to be discarded: no copy, no extra space), made under a temporary name
        and renamed into place, so a reader never sees a part; a copy if linking fails."""
        final = self.source_path(request_id)
        draft = final.with_name(f".{final.name}.{os.getpid()}")
        draft.unlink(missing_ok=True)
        try:
            os.link(video, draft)
        except OSError:
            shutil.copyfile(video, draft)
        os.replace(draft, final)

    def discard_inputs(self, request_id: str) -> None:
        shutil.rmtree(self.input_dir(request_id), ignore_errors=True)

    def discard_output(self, request_id: str) -> None:
        """The output and what is kept beside it (the source video, the mouth track)."""
        for path in (
            self.output_path(request_id),
            self.source_path(request_id),
            self.mouth_path(request_id),
        ):
            path.unlink(missing_ok=True)


_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}$")


def safe_suffix(filename: str | None) -> str:
    """The client's file extension if it is a plain one (a hint for demuxers), else none."""
    match = _SUFFIX.search(filename or "")
    return match.group(0).lower() if match else ""


class RangeNotSatisfiableError(Exception):
    """The requested range lies wholly outside the file (HTTP 416)."""


_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """One `bytes=` range, or None to send the whole file.

    Per RFC 9110 a Range header that is malformed or asks for several ranges may be ignored
    (players only ever ask for one); one that lies wholly past the end is 416.
    """
    if not header:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiableError
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiableError
    end = int(last) if last else size - 1
    return ByteRange(start, min(end, size - 1))


async def file_chunks(path: Path, start: int, length: int) -> AsyncIterator[bytes]:
    """Stream `length` bytes from `start`, off the event loop, a chunk at a time."""
    async with await anyio.open_file(path, "rb") as handle:
        await handle.seek(start)
        remaining = length
        while remaining > 0:
            chunk = await handle.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
