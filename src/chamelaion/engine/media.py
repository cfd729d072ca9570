"""Media in and out: probing, streaming decode at a constant frame rate, streaming H.264/AAC encode.

Everything goes through PyAV (FFmpeg ships inside its wheel). Frames are RGB `uint8` arrays in
display orientation (rotation metadata applied), one per output frame at a constant rate, whatever
the input's timing: variable-frame-rate input is resampled to the nearest standard rate by
repeating or dropping frames, the way FFmpeg's `fps` filter does.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from chamelaion.engine.errors import (
    EmptyMediaError,
    HdrVideoError,
    InvalidMediaError,
    NoAudioStreamError,
    NoVideoStreamError,
    StillImageError,
    TooLongError,
    TooManyPixelsError,
)
from chamelaion.engine.options import LipsyncOptions

ANALYSIS_SAMPLE_RATE = 16000
PictureFormat = Callable[[av.VideoFrame], NDArray[Any]]  # a decoded frame as the caller wants it
_STANDARD_RATES = (
    Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30),
    Fraction(48), Fraction(50), Fraction(60000, 1001), Fraction(60),
)  # fmt: skip
# FFmpeg's transfer characteristics of HDR video: SMPTE ST 2084 and ARIB STD-B67.
_HDR_TRANSFERS = {16: "PQ", 18: "HLG"}
# AAC in MP4 is happiest at these rates; anything else is resampled to 48 kHz.
_AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


@dataclass(frozen=True)
class MediaInfo:
    """What a file holds. Video fields are zero when there is no video stream."""

    has_video: bool
    has_audio: bool
    duration: float
    width: int = 0  # display width (after rotation), before any even-size crop
    height: int = 0
    fps: Fraction = Fraction(0)  # the constant rate frames are delivered at
    rotation: int = 0  # degrees the stored picture is turned to display it
    frame_count: int = 0  # frames at `fps` over `duration`
    audio_sample_rate: int = 0
    audio_channels: int = 0
    hdr: str = ""  # the HDR transfer ("PQ", "HLG") of an HDR video, else empty


def _open(path: str | Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), "r")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise InvalidMediaError(
            f"cannot read {Path(path).name}: not a media file FFmpeg can decode"
        ) from exc


def _constant_rate(stream: av.video.stream.VideoStream) -> Fraction:
    """The frame rate to deliver: the stream's average rate, snapped to a standard one if close."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or rate <= 0:
        return Fraction(25)
    rate = Fraction(rate)
    nearest = min(_STANDARD_RATES, key=lambda r: abs(float(r - rate)))
    if abs(float(nearest - rate)) / float(rate) < 0.03:
        return nearest
    return rate.limit_denominator(1001)


def probe(path: str | Path) -> MediaInfo:
    """Describe `path`, decoding its first frame of each kind to prove the file is usable.

    Raises InvalidMediaError if FFmpeg cannot open or decode it.
    """
    with _open(path) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        duration = _container_duration(container)
        info: dict[str, object] = {"has_video": False, "has_audio": False}
        try:
            if video is not None:
                first = next(container.decode(video), None)
                if first is not None:
                    rotation = _rotation(first)
                    w, h = first.width, first.height
                    if rotation in (90, 270):
                        w, h = h, w
                    fps = _constant_rate(video)
                    info.update(
                        has_video=True, width=w, height=h, fps=fps, rotation=rotation,
                        frame_count=max(1, round(duration * fps)) if duration > 0 else 0,
                        hdr=_HDR_TRANSFERS.get(first.color_trc, ""),
                    )  # fmt: skip
            if audio is not None:
                # Read from a fresh container rather than seeking back to the start: FFmpeg
                # cannot seek in FLV, and every FLV with sound was refused as damaged.
                with _open(path) as again:
                    first_audio = next(again.decode(again.streams.audio[0]), None)
                if first_audio is not None:
                    info.update(
                        has_audio=True,
                        audio_sample_rate=first_audio.sample_rate,
                        audio_channels=len(first_audio.layout.channels),
                    )
        except (av.error.FFmpegError, StopIteration) as exc:
            raise InvalidMediaError(
                f"cannot decode {Path(path).name}: the file is damaged"
            ) from exc
        return MediaInfo(duration=duration, **info)  # type: ignore[arg-type]


def _container_duration(container: av.container.InputContainer) -> float:
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000
    best = 0.0
    for stream in container.streams:
        if stream.duration and stream.time_base:
            best = max(best, float(stream.duration * stream.time_base))
    return best


def _rotation(frame: av.VideoFrame) -> int:
    """Clockwise degrees to turn the stored picture for display (0, 90, 180 or 270)."""
    try:
        angle = round(frame.rotation)  # FFmpeg's display-matrix angle, counter-clockwise
    except (AttributeError, TypeError):
        return 0
    return (-angle) % 360 // 90 * 90


def _upright(rgb: NDArray[Any], rotation: int) -> NDArray[Any]:
    if rotation == 0:
        return rgb
    return np.ascontiguousarray(np.rot90(rgb, k=-rotation // 90))


def require_video(info: MediaInfo, name: str) -> None:
    if not info.has_video:
        raise NoVideoStreamError(f"{name} has no video stream")
    if info.duration <= 0 or info.frame_count < 2:
        raise StillImageError(f"{name} is a still image, not a video")


def require_audio(info: MediaInfo, name: str) -> None:
    if not info.has_audio:
        raise NoAudioStreamError(f"{name} has no audio stream")
    if info.duration <= 0:
        raise EmptyMediaError(f"{name} has zero duration")


def check_video(info: MediaInfo, options: LipsyncOptions) -> None:
    """Refuse a video input `lipsync` cannot or will not take, from its probe alone.

    These rules live here only: `lipsync` applies them (with `check_audio`) before any work,
    and the HTTP service applies them when an upload arrives, so a job it accepts is never
    refused later for a reason that was visible at the door (and no quota is spent on it).
    """
    require_video(info, "video input")
    if info.hdr:
        raise HdrVideoError(
            f"video input is HDR ({info.hdr}); only SDR video is supported: send an SDR "
            "(BT.709) version of it"
        )
    if info.width * info.height > options.max_pixels:
        raise TooManyPixelsError(
            f"video is {info.width}x{info.height}; the limit is {options.max_pixels} pixels"
        )
    _check_duration(info, "video", options)


def check_audio(info: MediaInfo, options: LipsyncOptions) -> None:
    """Refuse an audio input `lipsync` cannot or will not take (see `check_video`)."""
    require_audio(info, "audio input")
    _check_duration(info, "audio", options)


def _check_duration(info: MediaInfo, name: str, options: LipsyncOptions) -> None:
    if info.duration > options.max_duration_s:
        raise TooLongError(
            f"{name} lasts {info.duration:.0f} s; the limit is {options.max_duration_s:.0f} s"
        )


# ----------------------------------------------------------------------------------------------
# Decoding


def read_frames(
    path: str | Path, fps: Fraction, start: int = 0, picture: PictureFormat | None = None
) -> Iterator[NDArray[Any]]:
    """Yield display-orientation frames at the constant rate `fps`, from frame `start` on, as
    `picture` makes them (`rgb_picture` unless given; `yuv_picture` for the render pass).

    Output frame i shows the decoded frame whose timestamp is nearest to i / fps (measured from
    the first frame), so a variable-rate input comes out at a steady rate. Seeking to `start`
    lands on the keyframe before it and decodes forward, so the frames are the same as those of a
    full pass.
    """
    convert = picture or rgb_picture
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        t0 = _first_frame_time(path)
        period = 1.0 / float(fps)
        if start > 0:
            target = t0 + start * period - 2 * period
            time_base = float(stream.time_base or Fraction(1, 1_000_000))
            container.seek(max(0, int(target / time_base)), stream=stream, backward=True)
        index = start
        # Nearest-frame rule: a decoded frame fills every slot closer to it than to its
        # neighbours; one that fills none (a VFR burst, or before `start`) is never converted.
        previous: av.VideoFrame | None = None
        previous_time = -math.inf
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                t = frame.time - t0
                if previous is not None:
                    yield from _repeat(previous, index, (previous_time + t) / 2, period, convert)
                    index = max(index, math.ceil((previous_time + t) / 2 / period - 1e-9))
                previous, previous_time = frame, t
        except av.error.FFmpegError:
            pass  # a truncated tail: deliver what decoded
        if previous is not None:
            yield from _repeat(previous, index, previous_time + period / 2 + 1e-9, period, convert)


def _repeat(
    frame: av.VideoFrame, index: int, until: float, period: float, convert: PictureFormat
) -> Iterator[NDArray[Any]]:
    """The picture of `frame` once for each slot from `index` that starts before `until`."""
    count = math.ceil(until / period - 1e-9) - index
    if count <= 0:
        return
    picture = convert(frame)
    for _ in range(count):
        yield picture


def rgb_picture(frame: av.VideoFrame) -> NDArray[np.uint8]:
    """The frame as display-orientation RGB (height, width, 3), at its full size."""
    return _upright(to_rgb(frame), _rotation(frame))


def yuv_picture(frame: av.VideoFrame) -> NDArray[np.uint8]:
    """The frame as display-orientation I420 at the encoder's even size: one uint8 array of
    (height * 3 / 2, width), the Y rows, then U, then V, as `VideoWriter.write_frame` hands it
    to the encoder without a colour conversion. 4:2:0 8-bit input (the common case) is taken
    as decoded, bit for bit; anything else is converted to it by FFmpeg first. See `YuvPicture`
    for drawing on a part of it in RGB."""
    if frame.format.name != "yuv420p":
        frame = frame.reformat(format="yuv420p")
    width, height = even_size(frame.width, frame.height)
    planes = []
    for plane, (w, h) in zip(
        frame.planes, ((width, height), (width // 2, height // 2), (width // 2, height // 2)),
        strict=True,
    ):  # fmt: skip
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
        planes.append(rows[:h, :w])
    rotation = _rotation(frame)
    if rotation:
        planes = [np.rot90(p, k=-rotation // 90) for p in planes]
    rows_wide = planes[0].shape[1]
    picture: NDArray[np.uint8] = np.concatenate([p.ravel() for p in planes]).reshape(-1, rows_wide)
    return picture


def even_box(
    points: NDArray[Any], width: int, height: int, margin: int = 2
) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) with even corners covering `points` plus `margin`, clipped to a
    `width` x `height` picture (so it holds whole chroma samples of `YuvPicture`); None if
    nothing of it is inside."""
    x0, y0 = np.floor(points.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(points.max(axis=0)).astype(int) + 1 + margin
    x0, y0 = max(int(x0) // 2 * 2, 0), max(int(y0) // 2 * 2, 0)
    x1, y1 = min(-(-int(x1) // 2) * 2, width), min(-(-int(y1) // 2) * 2, height)
    return (x0, y0, x1, y1) if x1 - x0 >= 2 and y1 - y0 >= 2 else None


class YuvPicture:
    """An I420 picture of `yuv_picture`, with RGB access to a part of it.

    The renderer draws in RGB on the face's box only; the rest of the picture never leaves
    YUV, so every pixel the renderer does not change reaches the encoder exactly as decoded
    (and a full-frame colour conversion each way is not paid for a face that covers a tenth of
    the frame). Boxes come from `even_box`, so they hold whole chroma samples.
    """

    def __init__(self, planes: NDArray[Any]) -> None:
        self.planes = planes
        self.height = planes.shape[0] * 2 // 3
        self.width = planes.shape[1]
        h, w = self.height, self.width
        chroma = planes[h:].reshape(-1)
        self.y = planes[:h]
        self.u = chroma[: h * w // 4].reshape(h // 2, w // 2)
        self.v = chroma[h * w // 4 :].reshape(h // 2, w // 2)

    def rgb(self, box: tuple[int, int, int, int]) -> NDArray[np.uint8]:
        """The box in RGB, the same pixels a full-frame `to_rgb` gives there."""
        x0, y0, x1, y1 = box
        cx0, cy0, cx1, cy1 = x0 // 2, y0 // 2, x1 // 2, y1 // 2
        packed = np.concatenate([
            self.y[y0:y1, x0:x1].ravel(),
            self.u[cy0:cy1, cx0:cx1].ravel(),
            self.v[cy0:cy1, cx0:cx1].ravel(),
        ]).reshape(-1, x1 - x0)  # fmt: skip
        rgb: NDArray[np.uint8] = cv2.cvtColor(packed, cv2.COLOR_YUV2RGB_I420)
        return rgb

    def put_rgb(
        self, box: tuple[int, int, int, int], rgb: NDArray[Any], before: NDArray[Any]
    ) -> None:
        """Write back the pixels of `rgb` that differ from `before` (what `rgb(box)` gave);
        the others, and the chroma of 2x2 blocks none of whose pixels changed, stay as they are."""
        differs = rgb != before  # (a reduction over the 3 channels is slower than this)
        changed = differs[..., 0] | differs[..., 1] | differs[..., 2]
        if not changed.any():
            return
        x0, y0, x1, y1 = box
        h, w = y1 - y0, x1 - x0
        converted = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
        chroma = converted[h:].reshape(-1)
        luma = self.y[y0:y1, x0:x1]
        luma[changed] = converted[:h][changed]
        top, bottom = changed[0::2], changed[1::2]
        block = top[:, 0::2] | top[:, 1::2] | bottom[:, 0::2] | bottom[:, 1::2]
        for plane, new in ((self.u, chroma[: h * w // 4]), (self.v, chroma[h * w // 4 :])):
            region = plane[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2]
            region[block] = new.reshape(h // 2, w // 2)[block]


def to_rgb(frame: av.VideoFrame) -> NDArray[np.uint8]:
    """RGB pixels of a decoded frame.

    The common case (4:2:0, even size) converts with OpenCV, an order of magnitude faster than
    FFmpeg's generic scaler; `VideoWriter` converts back with the same BT.601 matrix, so pixels
    the engine leaves alone come out as they went in.
    """
    # Both give uint8; OpenCV's and PyAV's stubs type their results as unions of dtypes.
    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
        return cast("NDArray[np.uint8]", cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2RGB_I420))
    return cast("NDArray[np.uint8]", frame.to_ndarray(format="rgb24"))


_first_time_cache: dict[tuple[str, float], float] = {}


def _first_frame_time(path: str | Path) -> float:
    """Presentation time of the first decodable video frame (the origin of frame numbering)."""
    key = (str(path), os.path.getmtime(path))
    if key not in _first_time_cache:
        with _open(path) as container:
            stream = container.streams.video[0]
            t0 = 0.0
            for frame in container.decode(stream):
                if frame.time is not None:
                    t0 = frame.time
                    break
        _first_time_cache[key] = t0
    return _first_time_cache[key]


_MAX_AUDIO_SAMPLES = 16_000 * 4 * 3600
"""The most `read_audio` reserves at once (four hours at 16 kHz), whatever a header claims."""


def read_audio(
    path: str | Path, sample_rate: int = ANALYSIS_SAMPLE_RATE, with_video: bool = False
) -> NDArray[Any]:
    """The whole first audio stream as mono float32 at `sample_rate` (for analysis).

    `with_video`: a video's own sound, aligned so that sample 0 plays with frame 0 of
    `read_frames` (a sound track may start before the first picture: an MP4 whose video begins
    at 0.08 s would otherwise put its speech 2 frames early against its own mouth).
    """
    # Decoded into one array sized from the container's duration: gathering the chunks and
    # joining them held every sample twice (2 x 64 KB a second of sound) at the end.
    with _open(path) as container:
        expected = round(_container_duration(container) * sample_rate) + sample_rate
    buffer = np.empty(min(max(expected, sample_rate), _MAX_AUDIO_SAMPLES), np.float32)
    count = 0
    for chunk in iter_audio(path, sample_rate, "mono"):
        if count + chunk.shape[1] > len(buffer):  # longer than its container said
            buffer = np.concatenate([buffer[:count], np.empty(len(buffer), np.float32)])
        buffer[count : count + chunk.shape[1]] = chunk[0]
        count += chunk.shape[1]
    if not count:
        raise EmptyMediaError(f"{Path(path).name} has no audio samples")
    samples = buffer[:count]  # the unused tail was never written: it takes no memory
    if not with_video:
        return samples
    shift = round(audio_lead(path) * sample_rate)
    if shift >= 0:
        return samples[shift:]
    return np.concatenate([np.zeros(-shift, np.float32), samples])


def audio_lead(path: str | Path) -> float:
    """Seconds a file's sound track starts before its first picture (negative: after it)."""
    return _first_frame_time(path) - _first_audio_time(path)


def _first_audio_time(path: str | Path) -> float:
    with _open(path) as container:
        stream = container.streams.audio[0]
        for frame in container.decode(stream):
            if frame.time is not None:
                return float(frame.time)
    return 0.0


def iter_audio(path: str | Path, sample_rate: int, layout: str) -> Iterator[NDArray[np.float32]]:
    """Stream the first audio stream as float32 arrays shaped (channels, samples)."""
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=sample_rate)
    with _open(path) as container:
        if not container.streams.audio:
            raise NoAudioStreamError(f"{Path(path).name} has no audio stream")
        stream = container.streams.audio[0]
        # "fltp" frames give float32 samples; PyAV's stubs type them as any sample dtype.
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    yield cast("NDArray[np.float32]", out.to_ndarray())
        except av.error.FFmpegError:
            pass  # a truncated tail: deliver what decoded
        for out in resampler.resample(None):
            yield cast("NDArray[np.float32]", out.to_ndarray())


def output_audio_format(info: MediaInfo) -> tuple[int, str]:
    """Sample rate and layout to encode the target audio with: its own, where AAC allows."""
    rate = info.audio_sample_rate if info.audio_sample_rate in _AAC_RATES else 48000
    layout = "mono" if info.audio_channels == 1 else "stereo"
    return rate, layout


def prefetch(frames: Iterator[NDArray[Any]], depth: int = 4) -> Iterator[NDArray[Any]]:
    """Run a frame iterator (the decoder) on a thread of its own, `depth` frames ahead."""
    box: queue.Queue[object] = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def pump() -> None:
        try:
            for item in frames:
                if stop.is_set():
                    return
                box.put(item)
            box.put(done)
        except BaseException as exc:  # handed to the consumer
            box.put(exc)

    thread = threading.Thread(target=pump, name="decoder", daemon=True)
    thread.start()
    try:
        while (item := box.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while thread.is_alive():
            try:
                box.get_nowait()
            except queue.Empty:
                thread.join(0.01)


# ----------------------------------------------------------------------------------------------
# Encoding


def even_size(width: int, height: int) -> tuple[int, int]:
    """H.264 4:2:0 needs even sizes: an odd width or height loses its last column or row."""
    return width - width % 2, height - height % 2


class VideoWriter:
    """Streams RGB frames and float audio into an H.264 + AAC MP4 with faststart.

    Writes to a temporary file beside `path` and renames it into place on `close()`, so a failed
    run leaves nothing behind (`abort()` removes the temporary file). Encoding runs on a thread
    of its own: PyAV releases the GIL inside the codecs, so it overlaps with the caller's work.
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: Fraction,
        audio_rate: int | None,
        audio_layout: str,
        crf: int = 18,
        preset: str = "veryfast",
    ) -> None:
        """`audio_rate` None: a video-only file (a segment, joined with its sound later)."""
        self.path = Path(path)
        # A name of this writer's own: two writers aimed at one path never share a file.
        self._tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(6)}.partial.mp4")
        self.width, self.height = even_size(width, height)
        self.fps = fps
        self._container = av.open(str(self._tmp), "w", options={"movflags": "+faststart"})
        self._video = self._container.add_stream("libx264", rate=fps)
        self._video.width, self._video.height = self.width, self.height
        self._video.pix_fmt = "yuv420p"
        self._video.options = {"crf": str(crf), "preset": preset}
        self._video.codec_context.time_base = Fraction(1) / fps
        self._audio = None
        if audio_rate is not None:
            self._audio = self._container.add_stream("aac", rate=audio_rate)
            self._audio.layout = audio_layout
            self._audio.bit_rate = 192_000
        self._audio_rate = audio_rate or 0
        self._audio_layout = audio_layout
        self._audio_pts = 0
        self._frames_written = 0
        self._queue: queue.Queue[tuple[str, object] | None] = queue.Queue(maxsize=8)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="encoder", daemon=True)
        self._thread.start()

    def write_frame(self, picture: NDArray[Any]) -> None:
        """Append a frame: RGB (height, width, 3), or I420 as `yuv_picture` makes it (the
        writer's even size), which goes to the encoder as it is."""
        self._put(("video", picture))

    def write_audio(self, samples: NDArray[Any]) -> None:
        """Append float32 audio shaped (channels, n) at the writer's rate and layout."""
        if samples.shape[1]:
            self._put(("audio", np.ascontiguousarray(samples, dtype=np.float32)))

    def _put(self, item: tuple[str, object]) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(item)

    def _run(self) -> None:
        try:
            while (item := self._queue.get()) is not None:
                kind, payload = item
                if kind == "video":
                    self._encode_video(payload)  # type: ignore[arg-type]
                else:
                    self._encode_audio(payload)  # type: ignore[arg-type]
        except BaseException as exc:  # reported to the caller on its next call
            self._error = exc
            while self._queue.get() is not None:  # drain so the producer never blocks
                pass

    def _encode_video(self, picture: NDArray[Any]) -> None:
        if picture.ndim == 2:
            planes = picture
        else:
            rgb = np.ascontiguousarray(picture[: self.height, : self.width])
            planes = np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts = self._frames_written
        frame.time_base = Fraction(1) / self.fps
        self._frames_written += 1
        self._container.mux(self._video.encode(frame))

    def _encode_audio(self, samples: NDArray[Any]) -> None:
        if self._audio is None:
            raise ValueError("this writer has no audio stream")
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=self._audio_layout)
        frame.sample_rate = self._audio_rate
        frame.pts = self._audio_pts
        frame.time_base = Fraction(1, self._audio_rate)
        self._audio_pts += samples.shape[1]
        self._container.mux(self._audio.encode(frame))

    def close(self) -> None:
        """Flush the encoders and move the finished file into place."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            self.abort()
            raise self._error
        try:
            self._container.mux(self._video.encode())
            if self._audio is not None:
                self._container.mux(self._audio.encode())
            self._container.close()
        except BaseException:
            self.abort()
            raise
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Stop and remove the unfinished file."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        with contextlib.suppress(Exception):  # half-written; it is deleted next anyway
            self._container.close()
        self._tmp.unlink(missing_ok=True)
