"""The lip-sync pipeline: two passes over the video, in one readable function.

1. Analysis: decode every source frame once, keep only face landmarks (a few KB a frame).
   Tracks are built and smoothed with the whole video known; the audio-to-mouth model turns the
   target audio into one mouth shape per output frame, and each re-animated face's own way of
   moving its mouth is read off the source (`mouth.speaker_mouth`).
2. Render: decode again, re-shape the chosen face's lower face in each frame, and stream the
   frames and the target audio to the encoder.

Memory holds landmarks and per-frame numbers, never the video, so it stays flat as the input
grows. Decoding and encoding run on their own threads (PyAV releases the GIL in the codecs),
so the two cores share the work.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from chamelaion.engine import alignment, features, media
from chamelaion.engine.articulation import articulate, jaw_drop
from chamelaion.engine.bank import MouthBank
from chamelaion.engine.errors import NoFaceError, TranscriptTooLongError
from chamelaion.engine.faces import (
    FaceTrack,
    PoseTrack,
    apply_affine,
    smooth_track,
)
from chamelaion.engine.geometry import WIDTH, mouth_params
from chamelaion.engine.interior import MouthLighting
from chamelaion.engine.mouth import (
    MIN_SPEECH_SHARE,
    SpeakerMouth,
    SpeechTrack,
    speaker_mouth,
    speech_track,
)
from chamelaion.engine.mouthmodel import get_model
from chamelaion.engine.options import (
    MAX_TRANSCRIPT_CHARS,
    LipsyncOptions,
    Progress,
    ProgressCallback,
)
from chamelaion.engine.render import MouthRenderer, WarpRenderer, build_mesh
from chamelaion.engine.scan import scan_faces
from chamelaion.engine.speaker import FaceChoice, SourceSpeech, choose_faces
from chamelaion.engine.timeline import deliver, plan_frames

_CHEEK_POINTS = (50, 280, 101, 330)


@dataclass(frozen=True)
class LipsyncResult:
    output: Path
    frames: int
    fps: Fraction
    width: int
    height: int
    duration: float
    face_frames: int  # output frames in which a face was re-animated
    notes: tuple[str, ...] = ()  # how faces were chosen, where a user should know
    # Per output frame, the mouth opening rendered (lip gap over mouth width; NaN where no face
    # was re-animated): what the Studio plots against the sound.
    mouth_opening: np.ndarray = field(
        default_factory=lambda: np.zeros(0, np.float32), compare=False
    )


def lipsync(
    video: str | Path,
    audio: str | Path,
    output: str | Path,
    options: LipsyncOptions | None = None,
    progress: ProgressCallback | None = None,
) -> LipsyncResult:
    """Write `output`: `video` with the speaker's mouth following `audio`, and `audio` as sound.

    Raises an `EngineError` subclass with a user-facing message when the inputs cannot be used;
    nothing is left at `output` then.
    """
    options = options or LipsyncOptions()
    report = _Reporter(progress)
    video_info = media.probe(video)
    media.check_video(video_info, options)
    audio_info = media.probe(audio)
    media.check_audio(audio_info, options)
    guide = _phone_guide(options)
    fps = video_info.fps

    # Pass 1: analysis.
    analysis = analyse_video(video, options, report, video_info)
    source_frames = analysis.frames
    samples = media.read_audio(audio)
    plan = plan_frames(
        options.sync_mode, source_frames, fps, len(samples) / media.ANALYSIS_SAMPLE_RATE
    )
    samples = _fit_length(samples, len(plan) / float(fps))
    mouths = speech_track(samples, float(fps), len(plan), get_model(options.model), guide)
    chosen = [None if t is None else t.key for t in analysis.choice.faces]
    animate = set(chosen)
    speaks = _source_speaks(analysis)
    faces = {
        t.key: _FaceModel.of(t, analysis.banks.get(t.key), float(fps), speaks)
        for t in analysis.tracks
        if t.key in animate
    }
    notes = tuple(analysis.choice.notes) + _adaptation_notes(faces.values())
    notes += tuple(guide.notes if guide else ())
    del analysis  # the raw landmarks: from here on only the smoothed ones of chosen faces count

    # Pass 2: render.
    rate, layout = media.output_audio_format(audio_info)
    writer = media.VideoWriter(
        output, video_info.width, video_info.height, fps, rate, layout, options.crf, options.preset
    )
    opening = np.full(len(plan), np.nan, np.float32)
    try:
        sound = _AudioFeed(audio, rate, layout)
        frame_bytes = video_info.width * video_info.height * 3
        for i, frame in enumerate(media.prefetch(deliver(video, fps, plan, frame_bytes))):
            key = chosen[plan[i]]
            if key is not None:
                frame = np.array(frame)  # decoded frames may be shared (repeats): draw on a copy
                rendered = faces[key].render(frame, int(plan[i]), mouths, i)
                if rendered is not None:
                    opening[i] = rendered
            writer.write_frame(frame)
            writer.write_audio(sound.until((i + 1) / float(fps)))
            report("render", i + 1, len(plan))
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return LipsyncResult(
        Path(output),
        len(plan),
        fps,
        writer.width,
        writer.height,
        len(plan) / float(fps),
        int(np.count_nonzero(~np.isnan(opening))),
        notes,
        opening,
    )


@dataclass
class VideoAnalysis:
    """What the analysis pass learns of a source video."""

    frames: int
    tracks: list[FaceTrack]
    banks: dict[int, MouthBank]
    shots: list[int]  # first frame of each shot after the first
    choice: FaceChoice  # the face to re-animate in each frame
    # The source's own sound per frame (None without a sound track), read on first call only.
    source_speech: Callable[[], SourceSpeech | None]


def analyse_video(
    video: str | Path,
    options: LipsyncOptions | None = None,
    report: _Reporter | None = None,
    info: media.MediaInfo | None = None,
) -> VideoAnalysis:
    """The analysis pass: faces, shots, and which face to re-animate in each source frame."""
    options = options or LipsyncOptions()
    info = info or media.probe(video)
    media.require_video(info, "video input")
    fps = info.fps
    report = report or _Reporter(None)
    counted = itertools.count(1)
    lock = threading.Lock()

    def on_frame() -> None:  # called from both halves' threads
        with lock:
            done = next(counted)
            report("analysis", done, max(info.frame_count, done))

    scan = scan_faces(video, fps, info.frame_count, on_frame)
    if not scan.tracks:
        raise NoFaceError()
    frames = scan.frames

    @functools.cache
    def source_speech() -> SourceSpeech | None:
        if not info.has_audio:
            return None
        samples = media.read_audio(video, with_video=True)
        own = features.analyze(samples)
        return SourceSpeech(*features.per_video_frame(own, float(fps), frames), samples)

    choice = choose_faces(
        scan.tracks, frames, float(fps), options.active_speaker_detection, source_speech, scan.shots
    )
    return VideoAnalysis(frames, scan.tracks, scan.banks, scan.shots, choice, source_speech)


def _phone_guide(options: LipsyncOptions) -> alignment.PhoneGuide | None:
    """The transcript's phones, if there is a transcript, made before any work: an over-long
    text fails at once (what else cannot be used becomes a note when it is used)."""
    if options.transcript is None or not options.transcript.strip():
        return None
    if len(options.transcript) > MAX_TRANSCRIPT_CHARS:
        raise TranscriptTooLongError(
            f"transcript too long: {len(options.transcript)} characters, at most "
            f"{MAX_TRANSCRIPT_CHARS}"
        )
    return alignment.prepare(options.transcript, options.transcript_language)


def _source_speaks(analysis: VideoAnalysis) -> bool:
    """Whether the source's own sound has enough speech, over the video's frames, to learn its
    speaker's mouth from. Speaker detection may have read that sound already: read once."""
    sound = analysis.source_speech()
    return sound is not None and float(sound.speech.mean()) >= MIN_SPEECH_SHARE


def _adaptation_notes(faces: Iterable[_FaceModel]) -> tuple[str, ...]:
    if any(not face.speaker.adapted for face in faces):
        return (
            "the source has no usable speech of the speaker: the mouth moves within the typical "
            "range of real talking heads, scaled to this mouth",
        )
    return ()


def _fit_length(samples: np.ndarray, seconds: float) -> np.ndarray:
    """Cut or zero-pad analysis audio to the output's duration."""
    n = round(seconds * media.ANALYSIS_SAMPLE_RATE)
    if len(samples) >= n:
        return samples[:n]
    return np.pad(samples, (0, n - len(samples)))


@dataclass
class _FaceModel:
    """What rendering needs of one face track: smoothed pose and shape, mesh, resting width."""

    poses: PoseTrack
    speaker: SpeakerMouth
    rest_width: float
    bank: MouthBank | None
    renderer: MouthRenderer | None = None

    @classmethod
    def of(cls, track: FaceTrack, bank: MouthBank | None, fps: float, speaks: bool) -> _FaceModel:
        poses = smooth_track(track)
        params = mouth_params(poses.shapes)
        speaker = speaker_mouth(params, poses.found, fps, speaks)
        rest_width = float(np.median(params[poses.found, WIDTH]))
        return cls(poses, speaker, rest_width, bank if bank else None)

    def render(
        self, frame: np.ndarray, source_index: int, mouths: SpeechTrack, out_index: int
    ) -> float | None:
        """Re-animate this face in `frame`: the mouth opening rendered, or None if the face
        was not there to re-animate."""
        i = source_index - self.poses.start
        if not (0 <= i < len(self.poses.shapes)) or not self.poses.found[i]:
            return None
        pose, shape = self.poses.poses[i], self.poses.shapes[i]
        if self.renderer is None:
            self.renderer = self._renderer(frame, shape, pose)
        gap, width = self.speaker.target(mouths.shape[out_index], bool(mouths.closed[out_index]), i)
        opening = gap / width
        target = articulate(shape, opening, width / self.rest_width - 1.0, self.rest_width)
        drop = jaw_drop(opening)
        self.renderer.render(
            frame, apply_affine(pose, shape), apply_affine(pose, target), pose, drop, opening
        )
        return opening

    def _renderer(self, frame: np.ndarray, shape: np.ndarray, pose: np.ndarray) -> MouthRenderer:
        rest = np.median(self.poses.shapes[self.poses.found], axis=0)
        cheeks = apply_affine(pose, shape[list(_CHEEK_POINTS)]).round().astype(int)
        h, w = frame.shape[:2]
        samples = [frame[np.clip(y, 0, h - 1), np.clip(x, 0, w - 1)] for x, y in cheeks]
        skin = np.mean(samples, axis=0).astype(np.float64)
        return WarpRenderer(build_mesh(rest), MouthLighting.from_skin(skin), self.bank)


class _AudioFeed:
    """The target audio in the output's format, handed out up to a time, silence past its end."""

    def __init__(self, path: str | Path, rate: int, layout: str) -> None:
        self._chunks = media.iter_audio(path, rate, layout)
        self._rate = rate
        self._channels = 1 if layout == "mono" else 2
        self._buffer = np.zeros((self._channels, 0), np.float32)
        self._sent = 0

    def until(self, seconds: float) -> np.ndarray:
        wanted = round(seconds * self._rate) - self._sent
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


class _Reporter:
    """Calls the progress callback at most ten times a second (and on the last frame)."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._started: dict[str, float] = {}
        self._last = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self._callback is None:
            return
        now = time.monotonic()
        started = self._started.setdefault(stage, now)
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        rate = done / (now - started) if now > started else 0.0
        self._callback(Progress(stage, done, total, rate))
