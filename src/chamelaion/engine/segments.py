"""Segments: a job's output rendered in pieces, each on its own, kept, joined without re-encoding.

A job's output frames are split at shot cuts, and every `SEGMENT_SECONDS` inside long shots,
into segments. Each segment's video is encoded on its own (the same encoder settings for all, so
each starts on a keyframe and all share one H.264 configuration) into a video-only MP4 in the
job's work directory; the new audio is encoded once, whole, to the output's length, into an
audio-only MP4 beside them (`encode_audio`: any time after the plan exists, while segments
render). `join` then only copies packets: the segments' one after another, timestamps shifted by
the frames before each, and the audio's as they are. Rendering a segment is a pure function of
the job's shared render plan, so segments need no overlap: frame i of a segment is the frame a
whole-job render would draw there.

`WorkDir` keeps what is done across a worker's death: the render plan (the whole-job analysis),
each finished segment, the encoded audio, and a manifest naming them, rewritten atomically under
a lock (several processes may render segments of one job at once). A job started again with the
same inputs and settings finds them and renders only what is missing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import math
import os
import pickle
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

from chamelaion.engine import media
from chamelaion.engine.errors import InvalidMediaError

SEGMENT_SECONDS = 30.0
"""Longest segment: a worker that dies loses at most this much rendering, and one job spreads
over up to duration / SEGMENT_SECONDS workers."""
MIN_SEGMENT_SECONDS = 1.0
"""A shot cut closer than this to the previous boundary does not start a segment: every segment
costs a keyframe and a seek."""

MANIFEST = "manifest.json"
PLAN = "plan.pickle"
AUDIO = "audio.m4a"
AUDIO_BIT_RATE = 192_000
_AUDIO_CHUNK_SECONDS = 10.0
"""The audio is encoded this much at a time, with a checkpoint between (an hour of it takes about
a minute of CPU)."""


@dataclass(frozen=True)
class Segment:
    """Output frames [start, stop) of a job."""

    index: int
    start: int
    stop: int

    @property
    def frames(self) -> int:
        return self.stop - self.start

    @property
    def name(self) -> str:
        return f"segment-{self.index:04d}.mp4"


def split(
    plan: NDArray[Any], shots: Sequence[int], fps: Fraction, seconds: float = SEGMENT_SECONDS
) -> list[Segment]:
    """Segments of the output frames of `plan` (the source frame of each output frame; see
    `timeline.plan_frames`): a boundary where the output enters a new shot (`shots`: the first
    source frame of each shot after the first), then long pieces cut evenly to `seconds`."""
    longest = max(1, round(seconds * float(fps)))
    shortest = max(1, round(MIN_SEGMENT_SECONDS * float(fps)))
    cut_sources = np.zeros(int(plan.max()) + 2 if len(plan) else 1, bool)
    cut_sources[[s for s in shots if s < len(cut_sources)]] = True
    entering = np.flatnonzero(cut_sources[plan[1:]] & (plan[1:] != plan[:-1])) + 1
    boundaries = [0]
    for frame in entering:
        if frame - boundaries[-1] >= shortest and len(plan) - frame >= shortest:
            boundaries.append(int(frame))
    boundaries.append(len(plan))
    segments: list[Segment] = []
    for start, stop in itertools.pairwise(boundaries):
        pieces = math.ceil((stop - start) / longest)
        edges = np.linspace(start, stop, pieces + 1).round().astype(int)
        for a, b in itertools.pairwise(edges.tolist()):
            segments.append(Segment(len(segments), a, b))
    return segments


def fingerprint(*parts: object) -> str:
    """What a work directory was made for: a resumed job must have the same inputs and settings,
    or its segments would not fit together. Files count by content (a URL input fetched again
    for the next attempt is a new file with the same bytes); a gigabyte hashes in about a
    second, against minutes of rendering saved."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            try:
                with open(part, "rb") as handle:
                    while chunk := handle.read(1 << 20):
                        digest.update(chunk)
            except OSError as exc:  # as the probe would say (gone, unreadable, a directory)
                raise InvalidMediaError(f"cannot read {part.name}") from exc
        else:
            digest.update(repr(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()


class WorkDir:
    """One job's segments on disk and the manifest naming the finished ones.

    The manifest is JSON: the fingerprint, the segments (start, stop), per finished segment its
    file, who rendered it and when, and the encoded audio's file, who encoded it and when (None
    until then). It is only ever replaced whole (write beside, rename),
    under an exclusive lock, so a reader sees an old or a new manifest, never a torn one, and two
    processes finishing segments at once both get recorded.
    """

    def __init__(self, path: str | Path, fingerprint: str | None) -> None:
        """`fingerprint` None: join the job whose work dir this is, whatever it was made for
        (a worker helping with another worker's job)."""
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._fingerprint = fingerprint
        if fingerprint is None:
            return
        with self._locked():
            manifest = self._read()
            if manifest is not None and manifest.get("fingerprint") != fingerprint:
                self._clear()  # another job's, or this job's with other inputs: start afresh

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.path / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _read(self) -> dict[str, Any] | None:
        try:
            manifest: dict[str, Any] = json.loads((self.path / MANIFEST).read_text())
        except (FileNotFoundError, ValueError):
            return None
        return manifest

    def _write(self, manifest: dict[str, Any]) -> None:
        draft = self.path / f".{MANIFEST}.{os.getpid()}"
        with open(draft, "w") as handle:
            json.dump(manifest, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(draft, self.path / MANIFEST)

    def _clear(self) -> None:
        for entry in self.path.iterdir():
            if entry.name == ".lock":
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    def load(self) -> tuple[Any, list[Segment]] | None:
        """The render plan and segments saved by an earlier attempt, or None."""
        manifest = self._read()
        if manifest is None or self._fingerprint not in (None, manifest.get("fingerprint")):
            return None
        try:
            # Written by this engine into the job's own directory (`save`), never user input.
            with open(self.path / PLAN, "rb") as handle:
                plan = pickle.load(handle)
        except (FileNotFoundError, pickle.UnpicklingError, EOFError):
            return None
        segments = [Segment(i, a, b) for i, (a, b) in enumerate(manifest["segments"])]
        return plan, segments

    def save(self, plan: Any, segments: Sequence[Segment]) -> None:
        """Keep the render plan and the segments; the manifest last, so it never names a plan
        that is not there."""
        draft = self.path / f".{PLAN}.{os.getpid()}"
        with open(draft, "wb") as handle:  # streamed: no second copy of the plan in memory
            pickle.dump(plan, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(draft, self.path / PLAN)
        with self._locked():
            self._write(
                {
                    "fingerprint": self._fingerprint or "",
                    "segments": [[s.start, s.stop] for s in segments],
                    "finished": {},
                    "audio": None,
                }
            )

    def finished(self) -> dict[int, dict[str, Any]]:
        """Finished segments by index, as the manifest records them (file present)."""
        manifest = self._read() or {}
        return {
            int(index): entry
            for index, entry in manifest.get("finished", {}).items()
            if (self.path / entry["file"]).exists()
        }

    def segment_path(self, segment: Segment) -> Path:
        return self.path / segment.name

    def mark_finished(self, segment: Segment, by: str) -> None:
        """Record a segment whose file is in place (renamed there whole by its writer)."""
        with self._updating() as manifest:
            manifest["finished"][str(segment.index)] = {
                "file": segment.name,
                "frames": segment.frames,
                "by": by,
                "at": time.time(),
            }

    @property
    def audio_path(self) -> Path:
        return self.path / AUDIO

    def audio(self) -> Path | None:
        """The encoded audio, if the manifest records it (file present)."""
        entry = (self._read() or {}).get("audio")
        path = None if entry is None else self.path / str(entry["file"])
        return path if path is not None and path.exists() else None

    def mark_audio(self, by: str) -> None:
        """Record the encoded audio, in place at `audio_path` (renamed there whole)."""
        with self._updating() as manifest:
            manifest["audio"] = {"file": AUDIO, "by": by, "at": time.time()}

    @contextlib.contextmanager
    def _updating(self) -> Iterator[dict[str, Any]]:
        """The manifest, to change in place, written back whole under the lock."""
        with self._locked():
            manifest = self._read()
            if manifest is None:
                raise RuntimeError(f"{self.path} has no manifest")
            yield manifest
            self._write(manifest)


def write_segment(
    frames: Iterator[NDArray[Any]],
    path: Path,
    width: int,
    height: int,
    fps: Fraction,
    crf: int,
    preset: str,
) -> int:
    """Encode `frames` as a video-only MP4 at `path` (in place only once whole): the count."""
    writer = media.VideoWriter(path, width, height, fps, None, "", crf, preset)
    count = 0
    try:
        for frame in frames:
            writer.write_frame(frame)
            count += 1
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return count


def encode_audio(
    audio: Path,
    path: Path,
    seconds: float,
    rate: int,
    layout: str,
    between: Callable[[], None] | None = None,
) -> None:
    """Encode `audio` as AAC into an audio-only MP4 at `path` (in place only once whole): cut
    or padded with silence to `seconds`, the output's length, at `rate` and `layout`.

    Done once per job, beside the segments' rendering rather than in the join, so that the join
    (after the last segment, on one core) only copies packets: the audio encode was about 80 %
    of the join's CPU. The encoder is fed what the join used to feed it, the same samples in
    other chunks (it takes them a frame of 1024 at a time whatever the chunks), so its packets
    are those a join encoding the audio wrote. `between` is called after each
    `_AUDIO_CHUNK_SECONDS` (a caller that stops a job raises from it)."""
    draft = path.with_name(f".{path.name}.{os.getpid()}.partial.m4a")
    try:
        sound = AudioFeed(audio, rate, layout)
        with av.open(str(draft), "w", format="mp4") as out:
            stream = out.add_stream("aac", rate=rate)
            stream.layout = layout
            stream.bit_rate = AUDIO_BIT_RATE
            pts = 0
            for step in range(1, math.ceil(seconds / _AUDIO_CHUNK_SECONDS) + 1):
                until = min(seconds, step * _AUDIO_CHUNK_SECONDS)
                pts = _encode_audio(out, stream, sound, until, pts)
                if between is not None:
                    between()
            out.mux(stream.encode())
        os.replace(draft, path)
    finally:
        draft.unlink(missing_ok=True)


def join(
    segments: Sequence[tuple[Path, int]],
    audio: Path,
    output: Path,
    fps: Fraction,
    on_segment: Callable[[int], None] | None = None,
) -> None:
    """Write `output`: the segments' video packets in order, copied (never re-encoded) with
    their timestamps shifted by the frames before each, and the packets of `audio` (as
    `encode_audio` wrote it: already the video's length) copied as they are. `segments`: each
    file and its frame count. In place only once whole.

    `on_segment` is called with the number of segments copied so far after each one: an hour's
    join takes seconds, and a caller that stops a job there raises from it, which leaves no
    output."""
    output = Path(output)
    draft = output.with_name(f".{output.name}.{os.getpid()}.joining.mp4")
    try:
        _join(segments, audio, draft, fps, on_segment)
        os.replace(draft, output)
    finally:
        draft.unlink(missing_ok=True)


def _join(
    segments: Sequence[tuple[Path, int]],
    audio: Path,
    draft: Path,
    fps: Fraction,
    on_segment: Callable[[int], None] | None,
) -> None:
    with (
        av.open(str(audio)) as sound,
        av.open(str(draft), "w", options={"movflags": "+faststart"}) as out,
    ):
        audio_in = sound.streams.audio[0]
        audio_out = out.add_stream_from_template(audio_in)
        audio_base = audio_in.time_base or Fraction(1, audio_in.sample_rate)
        audio_packets = (p for p in sound.demux(audio_in) if p.dts is not None)
        waiting = next(audio_packets, None)

        def audio_until(end: Fraction | float) -> None:
            """Copy the audio packets that start before `end` seconds."""
            nonlocal waiting
            while waiting is not None and (waiting.dts or 0) * audio_base < end:
                waiting.stream = audio_out
                out.mux(waiting)
                waiting = next(audio_packets, None)

        video_out = None
        extradata = None
        offset = 0  # frames before this segment
        for done, (path, frames) in enumerate(segments, 1):
            with av.open(str(path)) as source:
                stream = source.streams.video[0]
                if video_out is None:
                    video_out = out.add_stream_from_template(stream)
                    extradata = stream.codec_context.extradata
                elif stream.codec_context.extradata != extradata:
                    raise ValueError(f"{path.name} was encoded differently from the first segment")
                base = stream.time_base or Fraction(1, 1_000_000)
                shift = round(Fraction(offset) / fps / base)
                for packet in source.demux(stream):
                    if packet.dts is None:
                        continue  # the demuxer's end-of-stream marker
                    packet.pts = None if packet.pts is None else packet.pts + shift
                    packet.dts += shift
                    packet.stream = video_out
                    # The sound up to the end of this packet's picture, so the two interleave.
                    audio_until(((packet.pts or 0) + (packet.duration or 0)) * base)
                    out.mux(packet)
            offset += frames
            if on_segment is not None:
                on_segment(done)
        audio_until(math.inf)


def _encode_audio(out: Any, stream: Any, sound: AudioFeed, seconds: float, pts: int) -> int:
    samples = sound.until(seconds)
    if not samples.shape[1]:
        return pts
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples, np.float32), format="fltp", layout=sound.layout
    )
    frame.sample_rate = sound.rate
    frame.pts = pts
    frame.time_base = Fraction(1, sound.rate)
    out.mux(stream.encode(frame))
    return pts + samples.shape[1]


class AudioFeed:
    """The target audio in the output's format, handed out up to a time, silence past its end."""

    def __init__(self, path: str | Path, rate: int, layout: str) -> None:
        self._chunks = media.iter_audio(path, rate, layout)
        self.rate = rate
        self.layout = layout
        self._channels = 1 if layout == "mono" else 2
        self._buffer = np.zeros((self._channels, 0), np.float32)
        self._sent = 0

    def until(self, seconds: float) -> NDArray[Any]:
        wanted = max(0, round(seconds * self.rate) - self._sent)
        while self._buffer.shape[1] < wanted:
            chunk = next(self._chunks, None)
            if chunk is None:
                pad = np.zeros((self._channels, wanted - self._buffer.shape[1]), np.float32)
                self._buffer = np.concatenate([self._buffer, pad], axis=1)
                break
            self._buffer = np.concatenate([self._buffer, chunk], axis=1)
        out, self._buffer = self._buffer[:, :wanted], self._buffer[:, wanted:]
        self._sent += out.shape[1]
        return out
