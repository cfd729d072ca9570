"""Streaming multipart/form-data reader for the upload endpoint.

Starlette's form parser buffers each file in a spooled temp file and only then lets us look at
its size, so a 10 GB upload would land on disk before being refused. This reader writes each
file part straight to its final place under the data dir, counts bytes as they arrive, and
stops writing the moment a file passes the cap: memory stays at one network chunk. Every other
part is capped too (text fields and file parts under other names here, each part's headers by
python-multipart), so no part of a request is read without a limit. Each file's SHA-256 is
taken as it streams by, for the idempotency fingerprint, at no extra pass over the file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from chamelaion.engine.options import MAX_TRANSCRIPT_CHARS
from chamelaion.server import errors
from chamelaion.server.errors import ApiError
from chamelaion.server.storage import safe_suffix

FILE_FIELDS = ("video", "audio")
# A text field may hold a whole transcript (4 bytes a character at most in UTF-8); this is
# also the cap of a file part under a name we do not use.
MAX_TEXT_FIELD = max(64 * 1024, 4 * MAX_TRANSCRIPT_CHARS)
MAX_PARTS = 32
# After refusing an oversized upload we keep reading (and dropping) what the client is still
# sending, so it gets our 413 instead of a connection reset, but only this far past the cap.
DRAIN_LIMIT = 64 * 1024 * 1024


@dataclass
class UploadForm:
    fields: dict[str, str] = field(default_factory=dict)
    # form name → every file sent under it (more than one is an error the caller reports)
    files: dict[str, list[Path]] = field(default_factory=dict)
    # path of each file → the SHA-256 of its content
    digests: dict[Path, str] = field(default_factory=dict)


class _Receiver:
    """python-multipart callbacks: route each part to a file on disk or a small text buffer."""

    def __init__(self, directory: Path, max_file_bytes: int) -> None:
        self.directory = directory
        self.max_file_bytes = max_file_bytes
        self.form = UploadForm()
        self.error: ApiError | None = None
        self._parts = 0
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._file: BinaryIO | None = None
        self._file_path: Path | None = None
        self._file_hash = hashlib.sha256()
        self._file_bytes = 0
        self._text: bytearray | None = None
        self._ignored_bytes: int | None = None  # a file part under a name we do not use
        self.complete = False

    def fail(self, error: ApiError) -> None:
        if self.error is None:
            self.error = error
        self.close_file()

    def close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def on_part_begin(self) -> None:
        self._headers = {}
        self._parts += 1
        if self._parts > MAX_PARTS:
            self.fail(ApiError(400, errors.INVALID_BODY))

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]  # python-multipart caps a part's headers

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def on_headers_finished(self) -> None:
        self._text = None
        self._ignored_bytes = None
        if self.error is not None:
            return
        _, options = parse_options_header(self._headers.get(b"content-disposition"))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if self._name in FILE_FIELDS and filename is not None:
            paths = self.form.files.setdefault(self._name, [])
            suffix = safe_suffix(filename.decode("utf-8", "replace"))
            path = self.directory / f"{self._name}{len(paths) or ''}{suffix}"
            paths.append(path)
            self._file = path.open("wb")
            self._file_path = path
            self._file_hash = hashlib.sha256()
            self._file_bytes = 0
        elif filename is None:
            self._text = bytearray()
        else:
            self._ignored_bytes = 0  # read and dropped, up to the text field cap

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.error is not None:
            return
        if self._file is not None:
            self._file_bytes += end - start
            if self._file_bytes > self.max_file_bytes:
                self.fail(ApiError(413, errors.FILE_TOO_LARGE))
                return
            self._file.write(data[start:end])
            self._file_hash.update(data[start:end])
        elif self._text is not None:
            self._text += data[start:end]
            if len(self._text) > MAX_TEXT_FIELD:
                too_long = errors.TRANSCRIPT_TOO_LONG if self._name == "transcript" else None
                self.fail(ApiError(400, too_long or errors.INVALID_BODY))
        elif self._ignored_bytes is not None:
            self._ignored_bytes += end - start
            if self._ignored_bytes > MAX_TEXT_FIELD:
                self.fail(ApiError(400, errors.INVALID_BODY))

    def on_part_end(self) -> None:
        if self._file is not None and self._file_path is not None and self.error is None:
            self.form.digests[self._file_path] = self._file_hash.hexdigest()
        self.close_file()
        if self._text is not None and self.error is None:
            try:
                value = self._text.decode("utf-8")
            except UnicodeDecodeError:
                self.fail(ApiError(400, errors.INVALID_BODY))
                return
            if self._name in self.form.fields:
                self.fail(ApiError(400, errors.INVALID_BODY))  # ambiguous: which one to use?
                return
            self.form.fields[self._name] = value
        self._text = None

    def on_end(self) -> None:
        self.complete = True


async def receive_upload(request: Request, directory: Path, max_file_bytes: int) -> UploadForm:
    """Read the multipart body into `directory`; raise the contract's error on bad input.

    The caller owns `directory` and removes it when this raises.
    """
    content_type, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data":
        raise ApiError(415, errors.NOT_MULTIPART)
    if not boundary:
        raise ApiError(400, errors.INVALID_BODY)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > len(FILE_FIELDS) * max_file_bytes + DRAIN_LIMIT:
        raise ApiError(413, errors.FILE_TOO_LARGE)  # hopeless: do not read any of it

    directory.mkdir(parents=True, exist_ok=True)
    receiver = _Receiver(directory, max_file_bytes)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": receiver.on_part_begin,
            "on_part_data": receiver.on_part_data,
            "on_part_end": receiver.on_part_end,
            "on_header_field": receiver.on_header_field,
            "on_header_value": receiver.on_header_value,
            "on_header_end": receiver.on_header_end,
            "on_headers_finished": receiver.on_headers_finished,
            "on_end": receiver.on_end,
        },
    )
    drained = 0
    try:
        async for chunk in request.stream():
            if receiver.error is None:
                parser.write(chunk)
            else:
                drained += len(chunk)
                if drained > DRAIN_LIMIT:
                    break
        if receiver.error is None:
            parser.finalize()
    except (MultipartParseError, ClientDisconnect) as exc:
        raise ApiError(400, errors.INVALID_BODY) from exc
    finally:
        receiver.close_file()
    if receiver.error is not None:
        raise receiver.error
    if not receiver.complete:  # the body stopped before the closing boundary
        raise ApiError(400, errors.INVALID_BODY)
    return receiver.form
