"""The lip-sync pipeline: a whole-job analysis, then segments rendered independently.

1. Analysis (`prepare`): decode every source frame once, keep only face landmarks (3.8 KB a
   frame per face, written to the job's work dir as they come: `rows.py`). Tracks are built and
   smoothed with the whole video known; the audio-to-mouth model turns the target audio into
   one mouth shape per output frame, and each re-animated face's own way of moving its mouth
   is read off the source (`mouth.speaker_mouth`). The result, a `RenderPlan`, decides every
   output frame: its source frame, its face and its mouth.
2. Render (`render_frames`): decode again, re-shape the chosen face's lower face in each frame.
   Any span of output frames renders from the plan alone, so the output is rendered in segments
   (`segments.py`), each kept once finished (a job that died resumes from them) and renderable
   by any process. The new audio is encoded once, whole, into the work dir too
   (`SegmentedJob.encode_audio`, while segments render), so the join only copies packets.

Memory holds per-frame numbers (about 150 bytes a frame) and the sound while it is analysed,
never the video or the landmarks, so it hardly grows with the input. Both passes use the cores
given (`cores`, by default all this process may use) on threads of one process: the scan as two
halves (`scan.py`), the render with the faces drawn on `cores` threads beside the decoder's and
the encoder's (PyAV, OpenCV and mediapipe release the GIL in their native code).
"""

from __future__ import annotations

import collections
import contextlib
import copy
import functools
import itertools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from chamelaion.engine import alignment, features, media
from chamelaion.engine.articulation import articulate, jaw_drop
from chamelaion.engine.bank import MouthBank
from chamelaion.engine.errors import NoFaceError, TranscriptTooLongError
from chamelaion.engine.faces import (
    LANDMARK_COUNT,
    FaceTrack,
    PoseTrack,
    apply_affine,
    load_face_mesh,
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
from chamelaion.engine.mouthmodel import MouthModel, get_model
from chamelaion.engine.options import (
    MAX_TRANSCRIPT_CHARS,
    LipsyncOptions,
    Progress,
    ProgressCallback,
)
from chamelaion.engine.render import MouthRenderer, WarpMesh, WarpRenderer, build_mesh
from chamelaion.engine.rows import CHUNK_ROWS, RowFolder
from chamelaion.engine.scan import scan_faces
from chamelaion.engine.segments import (
    SEGMENT_SECONDS,
    Segment,
    WorkDir,
    encode_audio,
    fingerprint,
    join,
    split,
    write_segment,
)
from chamelaion.engine.speaker import FaceChoice, Pointed, SourceSpeech, choose_faces
from chamelaion.engine.timeline import deliver, plan_frames

_CHEEK_POINTS = (50, 280, 101, 330)
# A face's typical shape (its mesh's rest) is the median of this many of its frames at most,
# gathered this many bytes at a time.
_TYPICAL_FRAMES = 9000
_TYPICAL_BYTES = 4 << 20
_T = TypeVar("_T")


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
    mouth_opening: NDArray[Any] = field(
        default_factory=lambda: np.zeros(0, np.float32), compare=False
    )


def lipsync(
    video: str | Path,
    audio: str | Path,
    output: str | Path,
    options: LipsyncOptions | None = None,
    progress: ProgressCallback | None = None,
    work_dir: str | Path | None = None,
    segment_seconds: float = SEGMENT_SECONDS,
    cores: int | None = None,
) -> LipsyncResult:
    """Write `output`: `video` with the speaker's mouth following `audio`, and `audio` as sound.

    `work_dir`: where the job keeps its analysis and finished segments; a run that died is
    resumed from them when `lipsync` is called again with the same inputs and work dir (by
    default a temporary directory beside `output`, removed at the end).

    `cores`: threads drawing the faces (`render_frames`); by default the cores this process may
    use (`available_cores`). A caller running several jobs side by side gives each its share.

    Raises an `EngineError` subclass with a user-facing message when the inputs cannot be used;
    nothing is left at `output` then.
    """
    with contextlib.ExitStack() as stack:
        if work_dir is None:
            beside = Path(output)
            work_dir = stack.enter_context(
                tempfile.TemporaryDirectory(prefix=f".{beside.name}.", dir=beside.parent)
            )
        job = SegmentedJob.open(
            video, audio, work_dir, options, segment_seconds, progress, cores or available_cores()
        )
        if job.work.audio() is None:
            job.encode_audio()
        for segment in job.missing():
            job.render(segment)
        return job.join(output)


def available_cores() -> int:
    """The cores this process may run on: its CPU affinity (a container's or `taskset`'s
    limit), not the machine's count."""
    return len(os.sched_getaffinity(0))


@dataclass
class RenderPlan:
    """Everything rendering needs, decided once for the whole job by the analysis: any output
    frame can be drawn from it alone, so segments render independently, in any process, in any
    order. `timeline.plan_frames`'s array (`plan`) stays the interface to the source frames."""

    video: Path
    audio: Path
    fps: Fraction
    width: int
    height: int
    plan: NDArray[Any]  # source frame of each output frame
    face_at: NDArray[Any]  # key of the face re-animated at each output frame, -1 for none
    opening: NDArray[Any]  # mouth opening drawn at each output frame, NaN where none is
    faces: dict[int, _FaceModel]
    mouths: SpeechTrack
    shots: list[int]  # first source frame of each shot after the first
    audio_rate: int
    audio_layout: str
    crf: int
    preset: str
    notes: tuple[str, ...]


def prepare(
    video: str | Path,
    audio: str | Path,
    options: LipsyncOptions | None = None,
    report: _Reporter | None = None,
    folder: Path | None = None,
) -> RenderPlan:
    """The whole-job part: check the inputs, analyse the video, fit the audio to it, and decide
    every output frame's source frame, face and mouth.

    `folder` (the job's work dir) receives what grows with the video's length: the faces'
    landmarks while scanning (`scan/`, removed at the end) and the smoothed tracks the plan
    refers to (`faces/`, read back by the frames each segment renders). Without it both go to
    temporary directories that live as long as the plan."""
    with contextlib.ExitStack() as stack:
        if folder is None:
            scan_rows, face_rows = RowFolder.temporary(), RowFolder.temporary()
        else:
            scan_rows, face_rows = RowFolder(folder / "scan"), RowFolder(folder / "faces")
            stack.callback(shutil.rmtree, scan_rows.path, ignore_errors=True)
        return _prepare(video, audio, options or LipsyncOptions(), report, scan_rows, face_rows)


def _prepare(
    video: str | Path,
    audio: str | Path,
    options: LipsyncOptions,
    report: _Reporter | None,
    scan_rows: RowFolder,
    face_rows: RowFolder,
) -> RenderPlan:
    report = report or _Reporter(None)
    video_info = media.probe(video)
    media.check_video(video_info, options)
    audio_info = media.probe(audio)
    media.check_audio(audio_info, options)
    guide = _phone_guide(options)
    fps = video_info.fps

    # The new audio's mouth track needs only the output's length, which the probe foretells:
    # it is made first, and again after the scan only if the video decoded to another frame
    # count than the probe said (the audio read again then). Made before the scan, not beside
    # it: the model holds the whole audio and its log-mel (96 KB a second) meanwhile, which
    # added to the scan's own peak (10 minutes of 720p25: 534 MB against 438 MB for 20 s; made
    # first, 416 MB), and beside a scan that already keeps both cores busy it saved no time.
    # It runs on a thread of its own so that progress (and with it a cancellation) is still
    # reported while it runs.
    samples = media.read_audio(audio)
    audio_seconds = len(samples) / media.ANALYSIS_SAMPLE_RATE
    model = get_model(options.model)
    foretold = len(plan_frames(options.sync_mode, video_info.frame_count, fps, audio_seconds))
    # Between its pieces the speech track re-sends the last progress report, so a cancel
    # during a long audio's recognition stops the recogniser itself, not only the wait for it.
    between = report.checkpoint
    mouths_made = _in_background(
        functools.partial(_mouth_track, samples, fps, foretold, model, guide, between),
        "speech-track",
    )
    del samples  # the thread's until it is done
    # The recogniser keeps one core busy: the face mesh's library is loaded on the other
    # meanwhile (about a CPU-second, which the scan would otherwise wait for before its
    # first frame).
    mesh_loaded = _in_background(load_face_mesh, "face-mesh-load")
    waiting = functools.partial(report, "analysis", 0, max(1, video_info.frame_count))
    mouths = mouths_made(waiting)
    mesh_loaded(waiting)
    analysis = analyse_video(video, options, report, video_info, scan_rows)
    plan = plan_frames(options.sync_mode, analysis.frames, fps, audio_seconds)
    if len(mouths) != len(plan):
        mouths = _mouth_track(media.read_audio(audio), fps, len(plan), model, guide, between)
    chosen = np.array([-1 if t is None else t.key for t in analysis.choice.faces], np.int64)
    animate = set(chosen.tolist()) - {-1}
    speaks = _source_speaks(analysis)
    picture = media.even_size(video_info.width, video_info.height)
    faces = {
        t.key: _FaceModel.of(t, analysis.banks.get(t.key), float(fps), speaks, picture, face_rows)
        for t in analysis.tracks
        if t.key in animate
    }
    notes = tuple(analysis.choice.notes) + _adaptation_notes(faces.values())
    notes += tuple(dict.fromkeys(guide.notes)) if guide else ()  # once, if tracked twice
    face_at = chosen[plan]
    opening = np.full(len(plan), np.nan, np.float32)
    for i, (key, source) in enumerate(zip(face_at.tolist(), plan.tolist(), strict=True)):
        if key >= 0:
            target = faces[key].target(source, mouths, i)
            if target is not None:
                opening[i] = target.opening
    rate, layout = media.output_audio_format(audio_info)
    return RenderPlan(
        Path(video).resolve(), Path(audio).resolve(), fps, video_info.width, video_info.height,
        plan, face_at, opening, faces, mouths, analysis.shots, rate, layout, options.crf,
        options.preset, notes,
    )  # fmt: skip


def render_frames(
    job: RenderPlan, start: int, stop: int, threads: int = 1
) -> Generator[NDArray[Any], None, None]:
    """Output frames [start, stop), exactly as a whole-job render draws them: I420 pictures
    (`media.yuv_picture`), as the encoder takes them; only the faces' boxes go to RGB and back.

    A face's renderer is made from the face's first drawn frame of the whole output (its skin
    colour is read there) and then follows every drawn frame before `start`, so what carries
    from frame to frame (the mouth sample kept while close enough) is what it would be.

    `threads` over 1: the faces are drawn on that many threads, a few frames ahead, and the
    frames handed out in order (`_drawn_on_threads`): the same pictures."""
    width, height = media.even_size(job.width, job.height)
    frame_bytes = width * height * 3 // 2  # the render pass stays in the encoder's YUV
    faces = {key: replace(model, renderer=None) for key, model in job.faces.items()}
    drawn = ~np.isnan(job.opening[:start])
    for key, face in faces.items():
        before = np.flatnonzero(drawn & (job.face_at[:start] == key))
        if not len(before):
            continue
        first = int(before[0])
        wanted = job.plan[first : first + 1]
        frame = next(deliver(job.video, job.fps, wanted, frame_bytes, media.yuv_picture))
        renderer = face.start_renderer(media.YuvPicture(frame), int(job.plan[first]))
        for i in before:
            renderer.follow(float(job.opening[i]))
    wanted = job.plan[start:stop]
    frames = media.prefetch(deliver(job.video, job.fps, wanted, frame_bytes, media.yuv_picture))
    if threads > 1:
        yield from _drawn_on_threads(job, faces, start, frames, threads)
        return
    for i, frame in enumerate(frames):
        out_index = start + i
        key = int(job.face_at[out_index])
        if key >= 0 and not np.isnan(job.opening[out_index]):
            frame = np.array(frame)  # decoded frames may be shared (repeats): draw on a copy
            faces[key].render(media.YuvPicture(frame), int(wanted[i]), job.mouths, out_index)
        yield frame


def _drawn_on_threads(
    job: RenderPlan,
    faces: dict[int, _FaceModel],
    start: int,
    frames: Iterator[NDArray[Any]],
    threads: int,
) -> Generator[NDArray[Any], None, None]:
    """`render_frames`' loop with the drawing on `threads` threads: here, in frame order, only
    what carries from frame to frame (`_FaceModel.drawer`); each frame drawn by a copy of its
    face's renderer as it stood at that frame, up to two frames a thread ahead.

    Drawing is the render's Python part (the encoder's and decoder's native threads do the
    rest); OpenCV's remaps and colour conversions let the GIL go, its per-triangle calls
    mostly hold it, so threads overlap only part of it. This costs a few frames of memory;
    rendering two segments at once would cost a second encoder (x264's look-ahead: ~80 MB at
    720p, ~350 MB at 4K) and decoder."""
    ahead: collections.deque[NDArray[Any] | Future[NDArray[Any]]] = collections.deque()

    def drawn(face: _FaceModel, frame: NDArray[Any], source: int, out_index: int) -> NDArray[Any]:
        face.render(media.YuvPicture(frame), source, job.mouths, out_index)
        return frame

    with ThreadPoolExecutor(threads, thread_name_prefix="draw") as pool:
        try:
            for i, frame in enumerate(frames):
                out_index = start + i
                key = int(job.face_at[out_index])
                item: NDArray[Any] | Future[NDArray[Any]] = frame
                if key >= 0 and not np.isnan(job.opening[out_index]):
                    frame = np.array(frame)  # decoded frames may be shared: draw on a copy
                    source = int(job.plan[out_index])
                    face = faces[key].drawer(media.YuvPicture(frame), source, job.mouths, out_index)
                    if face is not None:
                        item = pool.submit(drawn, face, frame, source, out_index)
                ahead.append(item)
                while len(ahead) > 2 * threads:
                    yield _ready(ahead.popleft())
            while ahead:
                yield _ready(ahead.popleft())
        finally:  # given up early (an error, a cancel): what is queued is not drawn
            for item in ahead:
                if isinstance(item, Future):
                    item.cancel()


def _ready(item: NDArray[Any] | Future[NDArray[Any]]) -> NDArray[Any]:
    return item.result() if isinstance(item, Future) else item


class SegmentedJob:
    """A job rendered in segments kept in a work directory (see `segments`): `open` analyses
    the inputs or finds an earlier attempt's analysis, `render` draws one segment (any process
    may render any segment) on `cores` threads, `encode_audio` encodes the new audio (once, any
    time before the join: while others render segments), `join` writes the output once every
    segment and the audio are there."""

    def __init__(
        self,
        work: WorkDir,
        plan: RenderPlan,
        segments: list[Segment],
        report: _Reporter,
        cores: int = 1,
    ) -> None:
        self.work = work
        self.plan = plan
        self.segments = segments
        self.cores = max(1, cores)
        self._report = report

    @classmethod
    def open(
        cls,
        video: str | Path,
        audio: str | Path,
        work_dir: str | Path,
        options: LipsyncOptions | None = None,
        segment_seconds: float = SEGMENT_SECONDS,
        progress: ProgressCallback | None = None,
        cores: int = 1,
    ) -> SegmentedJob:
        """`cores`: threads that draw each segment's faces (`render_frames`)."""
        options = options or LipsyncOptions()
        report = _Reporter(progress)
        work = WorkDir(work_dir, fingerprint(Path(video), Path(audio), options, segment_seconds))
        saved = work.load()
        if saved is not None:
            plan, segments = saved
        else:
            plan = prepare(video, audio, options, report, work.path)
            segments = split(plan.plan, plan.shots, plan.fps, segment_seconds)
            work.save(plan, segments)
        return cls(work, plan, segments, report, cores)

    @classmethod
    def attach(
        cls, work_dir: str | Path, progress: ProgressCallback | None = None, cores: int = 1
    ) -> SegmentedJob:
        """The job whose analysis another process saved in `work_dir`, to render some of its
        segments here."""
        saved = WorkDir(work_dir, None).load()
        if saved is None:
            raise FileNotFoundError(f"{work_dir} holds no analysed job")
        plan, segments = saved
        return cls(WorkDir(work_dir, None), plan, segments, _Reporter(progress), cores)

    def missing(self) -> list[Segment]:
        """The segments not yet finished, in order."""
        finished = self.work.finished()
        return [s for s in self.segments if s.index not in finished]

    def render(self, segment: Segment, by: str = "") -> None:
        """Render one segment into the work directory and record it as finished."""
        plan = self.plan
        total = len(plan.plan)
        done_before = sum(s.frames for s in self.segments if s.index in self.work.finished())

        def reported(frames: Iterator[NDArray[Any]]) -> Iterator[NDArray[Any]]:
            for count, frame in enumerate(frames, 1):
                yield frame
                self._report("render", min(total, done_before + count), total)

        write_segment(
            reported(render_frames(plan, segment.start, segment.stop, self.cores)),
            self.work.segment_path(segment),
            plan.width, plan.height, plan.fps, plan.crf, plan.preset,
        )  # fmt: skip
        self.work.mark_finished(segment, by or f"pid {os.getpid()}")

    def encode_audio(self, by: str = "") -> None:
        """Encode the target audio to the output's length into the work directory and record
        it (`segments.encode_audio`); a cancel is honoured between its chunks."""
        plan = self.plan
        encode_audio(
            plan.audio, self.work.audio_path, len(plan.plan) / float(plan.fps),
            plan.audio_rate, plan.audio_layout, self._report.checkpoint,
        )  # fmt: skip
        self.work.mark_audio(by or f"pid {os.getpid()}")

    def join(
        self, output: str | Path, on_segment: Callable[[int], None] | None = None
    ) -> LipsyncResult:
        """The output from the finished segments and the encoded audio, packets copied;
        `on_segment` as for `segments.join`."""
        missing = self.missing()
        if missing:
            raise RuntimeError(f"segments not rendered yet: {[s.index for s in missing]}")
        audio = self.work.audio()
        if audio is None:
            raise RuntimeError("the audio is not encoded yet")
        plan = self.plan
        join(
            [(self.work.segment_path(s), s.frames) for s in self.segments],
            audio, Path(output), plan.fps, on_segment,
        )  # fmt: skip
        width, height = media.even_size(plan.width, plan.height)
        frames = len(plan.plan)
        return LipsyncResult(
            Path(output), frames, plan.fps, width, height, frames / float(plan.fps),
            int(np.count_nonzero(~np.isnan(plan.opening))), plan.notes, plan.opening,
        )  # fmt: skip


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
    folder: RowFolder | None = None,
) -> VideoAnalysis:
    """The analysis pass: faces, shots, and which face to re-animate in each source frame.
    The tracks' landmarks go to row files in `folder` (a temporary one by default)."""
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

    scan = scan_faces(video, fps, info.frame_count, on_frame, folder)
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

    pointed = None
    if options.speaker is not None:
        size = (info.width, info.height)
        pointed = Pointed(options.speaker, *size, functools.partial(_pictures, video, fps, size))
    choice = choose_faces(
        scan.tracks, frames, float(fps), options.active_speaker_detection, source_speech,
        scan.shots, pointed,
    )  # fmt: skip
    return VideoAnalysis(frames, scan.tracks, scan.banks, scan.shots, choice, source_speech)


_NEAR_FRAMES = 50  # wanted frames this close are read in one pass rather than by a new seek


def _pictures(
    video: str | Path, fps: Fraction, size: tuple[int, int], wanted: Sequence[int]
) -> dict[int, NDArray[Any]]:
    """The source frames `wanted` (sorted indices), as RGB: frames close together are decoded
    in one pass, far apart ones each after a seek, so a handful of frames spread over a long
    video cost a handful of short decodes."""
    frame_bytes = size[0] * size[1] * 3
    out: dict[int, NDArray[Any]] = {}
    groups: list[list[int]] = []
    for frame in wanted:
        if groups and frame - groups[-1][-1] <= _NEAR_FRAMES:
            groups[-1].append(frame)
        else:
            groups.append([frame])
    for group in groups:
        plan = np.array(group, np.int64)
        out.update(zip(group, deliver(video, fps, plan, frame_bytes), strict=False))
    return out


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


def _mouth_track(
    samples: NDArray[Any],
    fps: Fraction,
    frames: int,
    model: MouthModel,
    guide: alignment.PhoneGuide | None,
    between: Callable[[], None],
) -> SpeechTrack:
    """What the new audio asks of the mouth over `frames` output frames; `between` is called
    between the pieces of a long audio (`MouthModel.predict`)."""
    samples = _fit_length(samples, frames / float(fps))
    return speech_track(samples, float(fps), frames, model, guide, between)


def _in_background(work: Callable[[], _T], name: str) -> Callable[[Callable[[], None]], _T]:
    """Start `work` on a thread of its own (named `name`); the returned call waits for its
    result (or raises its exception). The thread is a daemon: a job stopped while waiting does
    not wait for it. `work` is let go of once it has run, and what it held with it."""
    box: list[_T] = []
    failure: list[BaseException] = []
    pending = [work]

    def run() -> None:
        try:
            box.append(pending.pop()())
        except BaseException as exc:  # re-raised on the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()

    def result(waiting: Callable[[], None]) -> _T:
        """Wait for the result, calling `waiting` a few times a second meanwhile (it may
        raise: a job stopped while it waits)."""
        while thread.is_alive():
            waiting()
            thread.join(0.2)
        if failure:
            raise failure[0]
        return box[0]

    return result


def _fit_length(samples: NDArray[Any], seconds: float) -> NDArray[Any]:
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
    mesh: WarpMesh
    picture: tuple[int, int]  # width and height of the pictures drawn on
    renderer: MouthRenderer | None = None

    @classmethod
    def of(
        cls,
        track: FaceTrack,
        bank: MouthBank | None,
        fps: float,
        speaks: bool,
        picture: tuple[int, int],
        folder: RowFolder,
    ) -> _FaceModel:
        poses = smooth_track(track, folder=folder)
        params = np.concatenate([mouth_params(rows) for _, rows in poses.shapes.chunks()])
        speaker = speaker_mouth(params, poses.found, fps, speaks)
        rest_width = float(np.median(params[poses.found, WIDTH]))
        mesh = build_mesh(_typical_shape(poses))
        return cls(poses, speaker, rest_width, bank if bank else None, mesh, picture)

    def target(self, source_index: int, mouths: SpeechTrack, out_index: int) -> _Target | None:
        """The mouth to draw at an output frame, or None if the face is not there (or none of
        its box is inside the picture)."""
        i = source_index - self.poses.start
        if not (0 <= i < len(self.poses.shapes)) or not self.poses.found[i]:
            return None
        box = self._box(i)
        if box is None:
            return None
        gap, width = self.speaker.target(mouths.shape[out_index], bool(mouths.closed[out_index]), i)
        return _Target(i, gap / width, width, box)

    def _box(self, i: int) -> tuple[int, int, int, int] | None:
        """The part of the picture the renderer works on at track frame `i`: the fixed ring,
        and the cheeks it takes the skin colour from."""
        pose, shape = self.poses.poses[i], self.poses.shapes[i]
        cheeks = apply_affine(pose, shape[list(_CHEEK_POINTS)])
        return media.even_box(np.concatenate([self.mesh.region(pose), cheeks]), *self.picture)

    def start_renderer(self, frame: media.YuvPicture, source_index: int) -> MouthRenderer:
        """This face's renderer, made from its first drawn frame (`frame`, not drawn on yet)."""
        i = source_index - self.poses.start
        box = self._box(i)
        assert box is not None, "a drawn frame has its box inside the picture (see `target`)"
        cheeks = apply_affine(self.poses.poses[i], self.poses.shapes[i][list(_CHEEK_POINTS)])
        self.renderer = self._renderer(frame.rgb(box), cheeks - box[:2])
        return self.renderer

    def drawer(
        self, frame: media.YuvPicture, source_index: int, mouths: SpeechTrack, out_index: int
    ) -> _FaceModel | None:
        """What draws this face in `frame` on another thread: this face with a copy of its
        renderer advanced to this frame (made from `frame` if it is the first drawn), or None
        if the face is not there. Called in frame order, it keeps what carries from frame to
        frame (the mouth sample) where `render` would; the copy's `render` at the same opening
        picks that sample again (`MouthRenderer.follow`), so it draws what `render` draws."""
        target = self.target(source_index, mouths, out_index)
        if target is None:
            return None
        renderer = self.renderer or self.start_renderer(frame, source_index)
        renderer.follow(target.opening)
        return replace(self, renderer=copy.copy(renderer))

    def render(
        self, frame: media.YuvPicture, source_index: int, mouths: SpeechTrack, out_index: int
    ) -> float | None:
        """Re-animate this face in `frame`: the mouth opening rendered, or None if the face
        was not there to re-animate. The renderer draws on the RGB of the face's box only, in
        the box's own coordinates; the rest of the picture stays as decoded."""
        target = self.target(source_index, mouths, out_index)
        if target is None:
            return None
        renderer = self.renderer or self.start_renderer(frame, source_index)
        pose, shape = self.poses.poses[target.frame], self.poses.shapes[target.frame]
        rgb = frame.rgb(target.box)
        before = rgb.copy()
        local = pose.copy()
        local[:, 2] -= target.box[:2]
        opening = target.opening
        moved = articulate(shape, opening, target.width / self.rest_width - 1.0, self.rest_width)
        drop = jaw_drop(opening)
        renderer.render(
            rgb, apply_affine(local, shape), apply_affine(local, moved), local, drop, opening
        )
        frame.put_rgb(target.box, rgb, before)
        return opening

    def _renderer(self, rgb: NDArray[Any], cheeks: NDArray[Any]) -> MouthRenderer:
        h, w = rgb.shape[:2]
        points = cheeks.round().astype(int)
        samples = [rgb[np.clip(y, 0, h - 1), np.clip(x, 0, w - 1)] for x, y in points]
        skin = np.mean(samples, axis=0).astype(np.float64)
        return WarpRenderer(self.mesh, MouthLighting.from_skin(skin), self.bank)


def _typical_shape(poses: PoseTrack) -> NDArray[Any]:
    """The median shape of the frames where the face is found (of at most `_TYPICAL_FRAMES`
    of them, evenly spread, in a long track), gathered a block of landmarks at a time: never
    the whole track in memory."""
    found = np.flatnonzero(poses.found)
    if len(found) > _TYPICAL_FRAMES:
        found = found[np.linspace(0, len(found) - 1, _TYPICAL_FRAMES).round().astype(int)]
    shape = np.empty((LANDMARK_COUNT, 2), np.float32)
    block = max(1, _TYPICAL_BYTES // max(1, len(found) * 2 * 4))
    for first in range(0, LANDMARK_COUNT, block):
        columns = slice(first, first + block)
        rows = [poses.shapes.take(found[k : k + CHUNK_ROWS])[:, columns]
                for k in range(0, len(found), CHUNK_ROWS)]  # fmt: skip
        shape[columns] = np.median(np.concatenate(rows), axis=0)
    return shape


@dataclass(frozen=True)
class _Target:
    frame: int  # index into the face's track
    opening: float  # lip gap over mouth width
    width: float
    box: tuple[int, int, int, int]  # the part of the picture drawn on (`media.even_box`)


class _Reporter:
    """Calls the progress callback at most ten times a second (and on the last frame), and
    again with its last report at each `checkpoint`; from any thread, one call at a time."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._started: dict[str, float] = {}
        self._last = 0.0
        self._sent: Progress | None = None
        self._lock = threading.Lock()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self._callback is None:
            return
        with self._lock:
            now = time.monotonic()
            started = self._started.setdefault(stage, now)
            if done < total and now - self._last < 0.1:
                return
            self._last = now
            rate = done / (now - started) if now > started else 0.0
            self._sent = Progress(stage, done, total, rate)
            self._callback(self._sent)

    def checkpoint(self) -> None:
        """The last report once more: work with no frames to count (the speech track's pieces)
        still gives the callback its say, which is where a caller stops a job (the server's
        worker raises there once the job is cancelled), without moving the progress."""
        with self._lock:
            if self._callback is not None and self._sent is not None:
                self._callback(self._sent)
