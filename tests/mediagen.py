"""Test media made on the spot: speech from espeak-ng, talking-head videos from a shipped photo.

Nothing here is third-party footage. Speech comes from libespeak-ng through its C API, which also
reports when each phoneme starts, so tests know exactly where a /m/ or an /u:/ lies. Faces come
from scikit-image's public-domain `astronaut` photo, moved slightly each frame like a real head.
The benchmarks import this module too.
"""

from __future__ import annotations

import ctypes
import math
import struct
import wave
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import TypedDict, cast

import av
import cv2
import numpy as np
from numpy.typing import NDArray
from skimage import data as skdata
from typing_extensions import Unpack

# ----------------------------------------------------------------------------------------------
# Speech


@dataclass(frozen=True)
class Phoneme:
    symbol: str  # espeak-ng mnemonic, e.g. "m", "a", "u:", "_" (pause)
    start: float  # seconds
    end: float


@dataclass
class Speech:
    samples: NDArray[np.float32]  # float32 mono in [-1, 1]
    sample_rate: int
    phonemes: list[Phoneme] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    def __add__(self, other: Speech) -> Speech:
        assert other.sample_rate == self.sample_rate
        shift = self.duration
        moved = [Phoneme(p.symbol, p.start + shift, p.end + shift) for p in other.phonemes]
        return Speech(
            np.concatenate([self.samples, other.samples]),
            self.sample_rate,
            self.phonemes + moved,
        )


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 1
_EVENT_PHONEME = 7
_POS_CHARACTER = 1
_CHARS_UTF8 = 1


class _Espeak:
    """libespeak-ng in synchronous mode, collecting samples and phoneme events."""

    def __init__(self) -> None:
        self.lib = ctypes.CDLL("libespeak-ng.so.1")
        self.sample_rate = int(
            self.lib.espeak_Initialize(
                _AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_PHONEME_EVENTS
            )
        )
        if self.sample_rate <= 0:
            raise RuntimeError("espeak-ng failed to initialise")
        self._chunks: list[NDArray[np.int16]] = []
        self._events: list[tuple[str, int]] = []
        self._callback = _CALLBACK(self._on_synth)  # kept alive as long as self
        self.lib.espeak_SetSynthCallback(self._callback)

    def _on_synth(self, wav: ctypes._Pointer, count: int, events: ctypes._Pointer) -> int:  # type: ignore[type-arg]
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        i = 0
        while events[i].type != 0:
            event = events[i]
            if event.type == _EVENT_PHONEME:
                self._events.append((event.id.string.decode("utf-8", "replace"), event.sample))
            i += 1
        return 0

    def synth(self, text: str, voice: str, words_per_minute: int, pitch: int) -> Speech:
        self._chunks, self._events = [], []
        self.lib.espeak_SetVoiceByName(voice.encode())
        self.lib.espeak_SetParameter(1, words_per_minute, 0)  # espeakRATE
        self.lib.espeak_SetParameter(3, pitch, 0)  # espeakPITCH
        encoded = text.encode("utf-8") + b"\0"
        status = self.lib.espeak_Synth(
            encoded, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        self.lib.espeak_Synchronize()
        if status != 0 or not self._chunks:
            raise RuntimeError(f"espeak-ng could not speak {text!r}")
        samples = np.concatenate(self._chunks).astype(np.float32) / 32768.0
        phonemes = []
        for (symbol, start), (_, end) in zip(
            self._events, [*self._events[1:], ("", len(samples))], strict=True
        ):
            if end > start:
                phonemes.append(Phoneme(symbol, start / self.sample_rate, end / self.sample_rate))
        return Speech(samples, self.sample_rate, phonemes)


@cache
def _espeak() -> _Espeak:
    return _Espeak()


def speak(text: str, voice: str = "en", words_per_minute: int = 150, pitch: int = 50) -> Speech:
    """Synthesise `text`; the result knows when each phoneme starts and ends."""
    return _espeak().synth(text, voice, words_per_minute, pitch)


def silence(seconds: float, sample_rate: int = 22050) -> Speech:
    return Speech(np.zeros(round(seconds * sample_rate), np.float32), sample_rate, [])


class Voice(TypedDict, total=False):
    """`speak`'s optional arguments, as `phrases_with_gaps` passes them on."""

    voice: str
    words_per_minute: int
    pitch: int


def phrases_with_gaps(phrases: Sequence[str], gap: float = 1.0, **voice: Unpack[Voice]) -> Speech:
    """Phrases separated (and preceded, and followed) by `gap` seconds of silence."""
    out = silence(gap)
    for phrase in phrases:
        out = out + speak(phrase, **voice) + silence(gap)
    return out


def write_wav(path: Path, speech: Speech) -> Path:
    pcm = np.clip(speech.samples * 32767.0, -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(speech.sample_rate)
        wav.writeframes(pcm.tobytes())
    return path


# ----------------------------------------------------------------------------------------------
# Faces


@cache
def astronaut() -> NDArray[np.uint8]:
    """The public-domain portrait shipped with scikit-image (RGB, 512x512)."""
    return np.ascontiguousarray(skdata.astronaut())


def head_pose(t: float, amount: float = 1.0) -> tuple[float, float, float, float]:
    """Slight, smooth head motion at time t: shift (fraction of frame height), angle, scale."""
    dx = 0.010 * math.sin(2 * math.pi * 0.23 * t) * amount
    dy = 0.007 * math.sin(2 * math.pi * 0.31 * t + 1.0) * amount
    angle = 1.5 * math.sin(2 * math.pi * 0.17 * t + 0.5) * amount
    scale = 1.0 + 0.01 * math.sin(2 * math.pi * 0.13 * t) * amount
    return dx, dy, angle, scale


class FacePlacement(TypedDict, total=False):
    """`face_frame`'s optional placement, as the video writers pass it on."""

    face_height: float
    center_x: float
    mirror: bool
    motion: float


def face_frame(
    width: int,
    height: int,
    t: float,
    face_height: float = 0.75,
    center_x: float = 0.5,
    mirror: bool = False,
    motion: float = 1.0,
    portrait: NDArray[np.uint8] | None = None,
) -> NDArray[np.uint8]:
    """One RGB frame: the astronaut's head and shoulders, `face_height` of the frame tall."""
    src = astronaut() if portrait is None else portrait
    if mirror:
        src = src[:, ::-1]
    # The head-and-shoulders part of the photo; the face lies near its centre.
    crop_box = (60, 20, 380, 340) if not mirror else (512 - 380, 20, 512 - 60, 340)
    x0, y0, x1, y1 = crop_box
    dx, dy, angle, scale = head_pose(t, motion)
    s = face_height * height / (y1 - y0) * scale
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    matrix = cv2.getRotationMatrix2D((cx, cy), angle, s)
    matrix[0, 2] += center_x * width - cx + dx * height
    matrix[1, 2] += height / 2 - cy + dy * height
    moved = cv2.warpAffine(
        np.ascontiguousarray(src),
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT101,
    )
    return cast("NDArray[np.uint8]", moved)  # cv2 types any image it returns as any dtype


def frame_times(seconds: float, fps: float, vfr: bool) -> Iterator[float]:
    """Presentation times; with `vfr`, frames come in bursts of three within 0.6 periods,
    then a gap of 2.4 periods: the average rate is `fps`, the spacing anything but steady."""
    n = max(1, round(seconds * fps))
    if not vfr:
        yield from (i / fps for i in range(n))
        return
    t = 0.0
    for i in range(n):
        yield t
        t += (0.3, 0.3, 2.4)[i % 3] / fps


def write_video(
    path: Path,
    frames: Iterator[tuple[float, NDArray[np.uint8]]],
    fps: float,
    audio: Speech | None = None,
    crf: int = 16,
) -> Path:
    """Encode (time, RGB frame) pairs as H.264 (and `audio` as AAC) in MP4."""
    with av.open(str(path), "w") as container:
        rate = Fraction(fps).limit_denominator(1001)
        video = container.add_stream("libx264", rate=rate)
        video.time_base = Fraction(1, 90000)
        video.codec_context.time_base = Fraction(1, 90000)
        video.pix_fmt = "yuv420p"
        video.options = {"crf": str(crf), "preset": "ultrafast"}
        audio_stream = None
        if audio is not None:
            audio_stream = container.add_stream("aac", rate=audio.sample_rate)
            audio_stream.layout = "mono"
        first = True
        for t, rgb in frames:
            if first:
                video.width, video.height = rgb.shape[1], rgb.shape[0]
                if video.width % 2 or video.height % 2:
                    video.pix_fmt = "yuv444p"  # 4:2:0 cannot hold odd sizes; 4:4:4 can
                first = False
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = round(t * 90000)
            frame.time_base = video.time_base
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if audio_stream is not None and audio is not None:
            pcm = (np.clip(audio.samples, -1, 1) * 32767).astype(np.int16)
            step = 1024
            for start in range(0, len(pcm), step):
                chunk = pcm[start : start + step]
                aframe = av.AudioFrame.from_ndarray(chunk[None, :], format="s16", layout="mono")
                aframe.sample_rate = audio.sample_rate
                aframe.pts = start
                aframe.time_base = Fraction(1, audio.sample_rate)
                container.mux(audio_stream.encode(aframe))
            container.mux(audio_stream.encode())
    return path


def write_face_video(
    path: Path,
    seconds: float,
    fps: float = 25.0,
    width: int = 640,
    height: int = 480,
    audio: Speech | None = None,
    vfr: bool = False,
    **face: Unpack[FacePlacement],
) -> Path:
    """A talking-head-shaped video of the astronaut (whose mouth never moves) with `audio`."""
    frames = ((t, face_frame(width, height, t, **face)) for t in frame_times(seconds, fps, vfr))
    return write_video(path, frames, fps, audio)


def write_blank_video(path: Path, seconds: float, fps: float = 25.0, size: int = 320) -> Path:
    """A video with no face in it: a slowly changing gradient."""
    ramp = np.linspace(0, 255, size, dtype=np.float32)

    def frames() -> Iterator[tuple[float, NDArray[np.uint8]]]:
        for t in frame_times(seconds, fps, False):
            shade = (ramp[None, :] * 0.5 + 60 * math.sin(t)) % 256
            gray = np.repeat(shade, size, axis=0).astype(np.uint8)
            yield t, np.stack([gray, gray[::-1], gray.T], axis=-1)

    return write_video(path, frames(), fps)


def write_still_image(path: Path, width: int = 320, height: int = 240) -> Path:
    """A PNG picture (by its suffix): what someone might send as a "video"."""
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = width, height, "rgb24"
        frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 128, np.uint8), "rgb24")
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def write_flat_video(path: Path, width: int, height: int, frames: int = 2, fps: int = 25) -> Path:
    """A flat grey H.264 video of any size, small on disk (190 KB at 8000x8000) and quick to
    make (its planes are filled in place; no RGB frame is ever built)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "51"}
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane in frame.planes:
            plane.update(b"\x80" * plane.buffer_size)
        for index in range(frames):
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def write_long_silence(path: Path, seconds: float, sample_rate: int = 1000) -> Path:
    """`seconds` of digital silence as FLAC: an hour is a quarter of a megabyte."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("flac", rate=sample_rate, layout="mono")
        block = np.zeros((1, 4096), np.int16)
        for start in range(0, round(seconds * sample_rate), block.shape[1]):
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
            frame.sample_rate, frame.pts = sample_rate, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


# ----------------------------------------------------------------------------------------------
# Scenes with several faces


def read_video_frames(path: Path) -> list[NDArray[np.uint8]]:
    with av.open(str(path)) as container:
        # rgb24 is uint8 (av types to_ndarray's result as any of its formats' dtypes)
        return [
            cast("NDArray[np.uint8]", f.to_ndarray(format="rgb24"))
            for f in container.decode(video=0)
        ]


def write_one_side(
    path: Path, seconds: float, fps: float, width: int, height: int, side: str,
    scale: float = 1.0, speech: Speech | None = None,
) -> Path:  # fmt: skip
    """One face on the `side` ("left" or "right", mirrored) of the frame; if `speech` is given,
    lip-synced to it by the engine itself, so that face really speaks."""
    face: FacePlacement = {"center_x": 0.27 if side == "left" else 0.73,
                           "face_height": 1.0 * scale, "mirror": side == "right"}  # fmt: skip
    still = path.with_suffix(".still.mp4")
    frames = ((t, face_frame(width, height, t, **face)) for t in frame_times(seconds, fps, False))
    write_video(still, frames, fps)
    if speech is None:
        still.replace(path)
        return path
    from chamelaion.engine import LipsyncOptions, SyncMode, lipsync

    wav = write_wav(path.with_suffix(".wav"), speech)
    options = LipsyncOptions(sync_mode=SyncMode.SILENCE, active_speaker_detection=False)
    lipsync(still, wav, path, options)
    return path


def write_side_by_side(
    path: Path, left: Path, right: Path, fps: float, audio: Speech | None,
    right_from: int = 0,
) -> Path:  # fmt: skip
    """Left half from `left`, right half from `right` (from frame `right_from` on; before it,
    the right half shows an empty wall), with `audio` as the sound track."""
    a, b = read_video_frames(left), read_video_frames(right)
    n = min(len(a), len(b))
    half = a[0].shape[1] // 2
    wall = np.full_like(b[0][:, half:], 200)

    def frames() -> Iterator[tuple[float, NDArray[np.uint8]]]:
        for i in range(n):
            right_half = b[i][:, half:] if i >= right_from else wall
            yield i / fps, np.concatenate([a[i][:, :half], right_half], axis=1)

    return write_video(path, frames(), fps, audio)


def write_pair(
    path: Path, seconds: float, fps: float, width: int, height: int, mirrored: str,
    scales: tuple[float, float] = (1.0, 1.0),
) -> Path:  # fmt: skip
    """Two still faces side by side, scaled by `scales` (left, right): the astronaut and the
    astronaut mirrored (two people to the engine: its landmarks' shape is not mirror-symmetric),
    the mirrored one on the `mirrored` side ("left" or "right")."""
    half = width // 2

    def frames() -> Iterator[tuple[float, NDArray[np.uint8]]]:
        for t in frame_times(seconds, fps, False):
            sides = []
            for side, scale in zip(("left", "right"), scales, strict=True):
                face = face_frame(half, height, t, face_height=scale, mirror=side == mirrored)
                sides.append(face)
            yield t, np.concatenate(sides, axis=1)

    return write_video(path, frames(), fps)


def write_two_shots(path: Path, first: Path, second: Path, fps: float) -> Path:
    """`first` then `second`, joined by a hard cut."""
    frames = read_video_frames(first) + read_video_frames(second)
    return write_video(path, ((i / fps, f) for i, f in enumerate(frames)), fps)


def write_left_speaks(folder: Path, width: int = 640, height: int = 360, fps: float = 25.0) -> Path:
    """Two faces: the left one speaks the sound track, the right one, a little larger (so it is
    the largest face), stays still."""
    speech = phrases_with_gaps(["my mama made a map", "bob will be back by noon"], gap=0.3)
    seconds = speech.duration
    left = write_one_side(folder / "l_talk.mp4", seconds, fps, width, height, "left", speech=speech)
    right = write_one_side(folder / "r_still.mp4", seconds, fps, width, height, "right", scale=1.15)
    return write_side_by_side(folder / "left_speaks.mp4", left, right, fps, speech)


# Mean absolute change (0..255) re-encoding alone causes in a face's lower half, at most.
UNTOUCHED = 2.5


@dataclass(frozen=True)
class HalfChanges:
    """Per frame, the 99.9th percentile of the absolute change between a source and its output
    in three regions of a side-by-side picture of two square faces."""

    noise: NDArray[np.float64]  # the re-animated face's eyes and forehead: re-encoding noise only
    silent: NDArray[np.float64]  # the whole half of the face that is not re-animated
    mouth: NDArray[np.float64]  # the re-animated face's lower part

    def other_face_untouched(self) -> bool:
        """The silent half changes no more than re-encoding changes real pictures."""
        return bool(np.median(self.silent) <= 1.5 * np.median(self.noise) + 2)

    def speaker_reanimated(self) -> bool:
        return bool(np.percentile(self.mouth, 75) > 2 * np.median(self.silent))


def half_changes(
    source: list[NDArray[np.uint8]], output: list[NDArray[np.uint8]], speaker: str, side: int
) -> HalfChanges:
    """`HalfChanges` of two `side`-pixel square faces side by side, `speaker` ("left" or
    "right") the one re-animated."""
    other = slice(0, side) if speaker == "right" else slice(side, 2 * side)
    own = slice(side, 2 * side) if speaker == "right" else slice(0, side)

    def change(rows: slice, columns: slice) -> NDArray[np.float64]:
        return np.array(
            [np.percentile(np.abs(o[rows, columns].astype(float) - s[rows, columns]), 99.9)
             for s, o in zip(source, output, strict=False)]
        )  # fmt: skip

    top, bottom = slice(0, side * 3 // 8), slice(side * 5 // 8, side)
    return HalfChanges(change(top, own), change(slice(0, side), other), change(bottom, own))


def mouth_change(
    source: list[NDArray[np.uint8]], output: list[NDArray[np.uint8]], side: str
) -> NDArray[np.float64]:
    """Per frame: mean absolute change around the mouth of the face on `side` of a scene made
    by `write_one_side`/`write_side_by_side`."""
    height, width = source[0].shape[:2]
    x0 = int(width * (0.27 if side == "left" else 0.73)) - width * 45 // 640
    box = (slice(int(height * 0.45), int(height * 0.75)), slice(x0, x0 + width * 90 // 640))
    return np.array(
        [np.abs(o[box].astype(float) - s[box].astype(float)).mean()
         for s, o in zip(source, output, strict=False)]
    )  # fmt: skip


def set_rotation(path: Path, degrees: int) -> None:
    """Write a display matrix into the MP4 track header, as phones do for portrait video."""
    data = bytearray(path.read_bytes())
    at = data.index(b"tkhd")
    version = data[at + 4]
    matrix_at = at + 4 + 4 + (32 if version == 1 else 20) + 8 + 8
    one, minus_one = 0x00010000, 0xFFFF0000
    cos, sin = {90: (0, 1), 180: (-1, 0), 270: (0, -1)}[degrees]
    fixed = {1: one, -1: minus_one, 0: 0}
    values = [fixed[cos], fixed[sin], 0, fixed[-sin], fixed[cos], 0, 0, 0, 0x40000000]
    data[matrix_at : matrix_at + 36] = struct.pack(">9I", *values)
    path.write_bytes(bytes(data))


def reencode_video(
    source: Path,
    target: Path,
    pix_fmt: str = "yuv420p",
    transfer: int | None = None,
    interlaced: bool = False,
) -> Path:
    """`source`'s pictures (no sound) as H.264 in `pix_fmt` (e.g. 10-bit "yuv420p10le"),
    flagged with FFmpeg's transfer characteristic `transfer` (16 PQ, 18 HLG; with BT.2020
    primaries and matrix) and/or coded as interlaced fields (top field first)."""
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        template = inp.streams.video[0]
        stream = out.add_stream("libx264", rate=template.average_rate)
        stream.width, stream.height, stream.pix_fmt = template.width, template.height, pix_fmt
        options: dict[str, object] = {"preset": "ultrafast", "crf": "18"}
        if interlaced:
            options["x264-params"] = "interlaced=1:tff=1"
        stream.options = options
        if transfer is not None:
            context = stream.codec_context
            context.color_trc, context.color_primaries, context.colorspace = transfer, 9, 9
        for frame in inp.decode(template):
            picture = frame.reformat(format=pix_fmt)
            picture.pts, picture.time_base = frame.pts, frame.time_base
            out.mux(stream.encode(picture))
        out.mux(stream.encode())
    return target


def loop_packets(source: Path, target: Path, seconds: float) -> Path:
    """`source` repeated until it lasts `seconds`: its packets copied with shifted timestamps,
    nothing decoded or encoded, so hours of media take seconds to make. Each stream is
    joined end to end on its own (an AAC track's priming samples would otherwise overlap)."""
    if target.exists():
        return target
    with av.open(str(source)) as container:
        length = container.duration / 1_000_000 if container.duration else 0.0
    partial = target.with_name(f".{target.name}.partial{target.suffix}")
    with av.open(str(partial), "w") as out:
        with av.open(str(source)) as first:
            streams = {
                s.index: out.add_stream_from_template(s)
                for s in first.streams
                if s.type in ("video", "audio")
            }
        shift = dict.fromkeys(streams, 0)
        end = dict.fromkeys(streams, 0)
        start: dict[int, int] = {}
        for _ in range(math.ceil(seconds / length)):
            with av.open(str(source)) as container:
                for packet in container.demux():
                    index = packet.stream.index
                    if index not in streams or packet.dts is None:
                        continue
                    start.setdefault(index, packet.dts)
                    packet.dts += shift[index]
                    if packet.pts is not None:
                        packet.pts += shift[index]
                    end[index] = max(end[index], packet.dts + (packet.duration or 1))
                    packet.stream = streams[index]
                    out.mux(packet)
            shift = {index: end[index] - start.get(index, 0) for index in streams}
    partial.rename(target)
    return target
