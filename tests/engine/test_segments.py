"""Segments: split at cuts and every N seconds, rendered on their own exactly as a whole-job
render draws them, joined without a visible seam, and resumed after a death."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.signal import correlate

import mediagen
from chamelaion.engine import (
    InvalidMediaError,
    LipsyncOptions,
    Progress,
    SyncMode,
    lipsync,
    media,
)
from chamelaion.engine.articulation import articulate
from chamelaion.engine.bank import MouthBank
from chamelaion.engine.faces import apply_affine
from chamelaion.engine.pipeline import RenderPlan, SegmentedJob, _Reporter, render_frames
from chamelaion.engine.segments import MANIFEST, Segment, WorkDir, split

FPS = Fraction(25)
SEGMENT_SECONDS = 1.0


@pytest.fixture(scope="module")
def moving_face(media_dir: Path) -> Path:
    # Exaggerated head motion so every source frame is recognisably different.
    return mediagen.write_face_video(
        media_dir / "segments_face.mp4", 3.0, 25.0, 320, 240, motion=6.0
    )


@pytest.fixture(scope="module")
def speech(media_dir: Path) -> Path:
    """3.6 s of speech with pauses: with LOOP the output runs past the video's end."""
    said = mediagen.phrases_with_gaps(["mama papa booboo", "baby happy"], gap=0.4)
    said = said + mediagen.silence(max(0.0, 3.6 - said.duration), said.sample_rate)
    return mediagen.write_wav(media_dir / "segments_speech.wav", said)


@pytest.fixture(scope="module")
def prepared(
    tmp_path_factory: pytest.TempPathFactory, moving_face: Path, speech: Path
) -> SegmentedJob:
    work = tmp_path_factory.mktemp("segments-work")
    options = LipsyncOptions(sync_mode=SyncMode.LOOP)
    return SegmentedJob.open(moving_face, speech, work, options, SEGMENT_SECONDS)


def test_split_at_shot_entries_and_evenly_inside_long_shots() -> None:
    plan = np.arange(200)
    segments = split(plan, [60, 70, 190], FPS, seconds=2.0)
    # 60: a cut; 70 is 10 frames (< 1 s) after it and 190 10 frames before the end: no segment.
    # 60..200 is 140 frames: two even pieces of at most 50 (2 s) would not do, three do.
    assert [(s.start, s.stop) for s in segments] == [
        (0, 30), (30, 60), (60, 107), (107, 153), (153, 200)
    ]  # fmt: skip
    assert [s.index for s in segments] == [0, 1, 2, 3, 4]
    # A loop enters shot 0 again at output frame 100 (source 0 is not a cut): no boundary there;
    # entering source frame 60 is, each time.
    looped = np.arange(200) % 100
    starts = [s.start for s in split(looped, [60], FPS, seconds=10.0)]
    assert starts == [0, 60, 160]


def test_a_segment_renders_exactly_what_the_whole_job_renders(prepared: SegmentedJob) -> None:
    plan = prepared.plan
    frames = len(plan.plan)
    assert len(prepared.segments) >= 4  # 3.6 s in 1 s segments
    whole = list(render_frames(plan, 0, frames))
    pieces = [f for s in prepared.segments for f in render_frames(plan, s.start, s.stop)]
    assert len(pieces) == len(whole) == frames
    different = [i for i, (a, b) in enumerate(zip(whole, pieces, strict=True))
                 if not np.array_equal(a, b)]  # fmt: skip
    assert different == []
    # ...and the faces were drawn (a render that drew nothing would pass the comparison above).
    assert np.count_nonzero(~np.isnan(plan.opening)) == frames


def _shown(path: Path) -> tuple[NDArray[np.float64], set[int], list[NDArray[np.uint8]]]:
    """Each decoded frame's presentation time, which are keyframes, and the pictures (FFmpeg's
    own demuxer and decoder, as ffprobe would read them)."""
    times, keys, pictures = [], set(), []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        for i, frame in enumerate(container.decode(stream)):
            assert frame.pts is not None
            times.append(float(frame.pts * stream.time_base))
            if frame.key_frame:
                keys.add(i)
            pictures.append(media.yuv_picture(frame))  # as `render_frames` gives them
    return np.array(times), keys, pictures


def test_joins_are_invisible(
    tmp_path: Path, prepared: SegmentedJob, moving_face: Path, speech: Path
) -> None:
    for segment in prepared.missing():
        prepared.render(segment)
    out = tmp_path / "joined.mp4"
    with pytest.raises(RuntimeError, match="audio is not encoded yet"):
        prepared.join(out)
    assert not out.exists()
    prepared.encode_audio()
    result = prepared.join(out)
    plan = prepared.plan
    frames = len(plan.plan)
    assert result.frames == frames == round(3.6 * 25)

    # Timestamps: one per output frame, strictly increasing at a constant step, no gap or
    # repeat at any join; a keyframe where each segment starts.
    times, keyframes, decoded = _shown(out)
    assert len(times) == frames
    assert np.allclose(np.diff(times), 1 / 25, atol=1e-4), np.diff(times)
    assert {s.start for s in prepared.segments} <= keyframes

    # Pictures: around every join each output frame is the one the plan puts there (not its
    # neighbour: nothing duplicated or dropped), and the drawn mouth is what a whole render drew.
    expected = list(render_frames(plan, 0, frames))
    # Coding noise only (crf 18), no worse at a join than anywhere else.
    error = np.array([np.mean((d.astype(np.float32) - e) ** 2)
                      for d, e in zip(decoded, expected, strict=True)])  # fmt: skip
    assert error.max() < 40.0
    usual = float(np.percentile(error, 90))
    for segment in prepared.segments[1:]:
        for i in range(segment.start - 3, segment.start + 3):
            near = range(max(0, i - 2), min(frames, i + 3))
            errors = {j: float(np.mean((decoded[i].astype(np.float32) - expected[j]) ** 2))
                      for j in near}  # fmt: skip
            assert min(errors, key=errors.__getitem__) == i, (segment, i, errors)
            assert errors[i] <= 1.25 * usual
    # The mouth track the output reports is continuous: it is the whole-job plan's.
    assert np.array_equal(result.mouth_opening, plan.opening, equal_nan=True)

    # Sound: the target audio, as long as the video, not shifted anywhere.
    with av.open(str(out)) as container:
        rate = container.streams.audio[0].sample_rate
        sound = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)[0]
    assert len(sound) / rate == pytest.approx(frames / 25, abs=0.03)
    target = media.read_audio(speech, rate)
    n = min(len(target), len(sound))
    a, b = sound[:n] - sound[:n].mean(), target[:n] - target[:n].mean()
    xcorr = correlate(a, b, mode="full", method="fft") / (np.linalg.norm(a) * np.linalg.norm(b))
    assert abs(int(np.argmax(xcorr)) - (n - 1)) <= 0.002 * rate
    assert xcorr.max() > 0.95
    assert media.probe(out).duration == pytest.approx(frames / 25, abs=0.05)

    # The join encoded nothing: the sound is the kept audio's packets, copied (bytes and
    # timestamps), and the pictures the segments' (timestamps shifted by the frames before).
    audio = prepared.work.audio()
    assert audio is not None
    assert _packets(out, "audio") == _packets(audio, "audio")
    shifted = []
    for segment in prepared.segments:
        path = prepared.work.segment_path(segment)
        with av.open(str(path)) as source:
            base = source.streams.video[0].time_base
        assert base is not None
        shift = round(Fraction(segment.start, 25) / base)
        shifted += [(data, pts + shift, dts + shift) for data, pts, dts in _packets(path, "video")]
    assert _packets(out, "video") == shifted


def _packets(path: Path, kind: str) -> list[tuple[bytes, int, int]]:
    """Each packet of the file's first `kind` stream: its bytes, pts and dts."""
    with av.open(str(path)) as container:
        stream = next(s for s in container.streams if s.type == kind)
        return [(bytes(p), p.pts or 0, p.dts or 0) for p in container.demux(stream)
                if p.dts is not None]  # fmt: skip


def test_a_job_resumes_from_its_finished_segments(
    tmp_path: Path, moving_face: Path, speech: Path
) -> None:
    options = LipsyncOptions(sync_mode=SyncMode.LOOP)
    work = tmp_path / "work"
    first = SegmentedJob.open(moving_face, speech, work, options, SEGMENT_SECONDS)
    first.encode_audio(by="first")
    done = first.segments[:2]
    for segment in done:
        first.render(segment, by="first")
    kept = {s.index: first.work.segment_path(s).stat() for s in done}
    audio = first.work.audio_path.stat()

    # A second attempt (the first died): no analysis again, only the missing segments rendered.
    stages: set[str] = set()

    def seen(report: Progress) -> None:
        stages.add(report.stage)

    second = SegmentedJob.open(moving_face, speech, work, options, SEGMENT_SECONDS, seen)
    assert [s.index for s in second.missing()] == [s.index for s in first.segments[2:]]
    assert second.work.audio() == work / "audio.m4a"  # encoded once: the join copies it
    for segment in second.missing():
        second.render(segment, by="second")
    result = second.join(tmp_path / "out.mp4")
    assert stages == {"render"}
    assert result.frames == len(second.plan.plan)
    for index, before in kept.items():
        after = second.work.segment_path(Segment(index, 0, 0)).stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    after = second.work.audio_path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (audio.st_ino, audio.st_mtime_ns)
    manifest = json.loads((work / MANIFEST).read_text())
    by = {int(i): entry["by"] for i, entry in manifest["finished"].items()}
    assert by == {s.index: ("first" if s in done else "second") for s in second.segments}
    assert manifest["audio"]["by"] == "first"

    # Other inputs in the same work dir: nothing of the old job is reused.
    other = SegmentedJob.open(moving_face, speech, work, LipsyncOptions(), SEGMENT_SECONDS)
    assert other.missing() == other.segments
    assert other.work.audio() is None
    assert len(other.plan.plan) == 75  # CUT_OFF: the video's 3 s, not the looped 3.6 s


def test_an_input_gone_before_the_analysis_is_a_clear_error(tmp_path: Path, speech: Path) -> None:
    """A worker whose job was deleted as it started finds no input: the engine's own error
    (as the probe gives it), and nothing left behind."""
    out = tmp_path / "out.mp4"
    with pytest.raises(InvalidMediaError, match=r"cannot read gone\.mp4"):
        lipsync(tmp_path / "gone.mp4", speech, out)
    assert list(tmp_path.iterdir()) == []


def _copy(job: SegmentedJob, work: Path, cores: int, progress: object = None) -> SegmentedJob:
    """The same analysed job in another work dir (nothing rendered yet) on `cores` threads."""
    copy = SegmentedJob(WorkDir(work, "copy"), job.plan, job.segments, _Reporter(progress), cores)  # type: ignore[arg-type]
    copy.work.save(job.plan, job.segments)
    return copy


def _engine_threads() -> list[str]:
    return [t.name for t in threading.enumerate()
            if t.name.startswith(("draw", "decoder", "encoder"))]  # fmt: skip


def _with_mouth_bank(plan: RenderPlan) -> RenderPlan:
    """`plan` with open-mouth samples in its face's mouth bank, so what carries from frame to
    frame (the sample kept while the opening stays near it) matters: made by the bank itself
    from the face's first frame with its lips pulled apart to five openings, enlarged four
    times (the synthetic face never opens its mouth, and is too small to be sampled)."""
    key, face = next(iter(plan.faces.items()))
    i = int(np.flatnonzero(face.poses.found)[0])
    pose, shape = face.poses.poses[i], face.poses.shapes[i]
    rgb = next(media.read_frames(plan.video, plan.fps, start=face.poses.start + i))
    large = cv2.resize(rgb, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    bank = MouthBank()
    for opening in (0.07, 0.13, 0.19, 0.25, 0.31):
        bank.offer(large, 4 * apply_affine(pose, articulate(shape, opening, 0.0, face.rest_width)))
    assert len(bank) == 5
    return replace(plan, faces={key: replace(face, bank=bank)})


def test_faces_drawn_on_threads_are_exactly_those_drawn_on_one(prepared: SegmentedJob) -> None:
    plan = _with_mouth_bank(prepared.plan)
    frames = len(plan.plan)
    whole = list(render_frames(plan, 0, frames))
    plain = list(render_frames(prepared.plan, 0, frames))
    assert sum(not np.array_equal(a, b) for a, b in zip(whole, plain, strict=True)) > frames / 2
    assert list_equal(whole, list(render_frames(plan, 0, frames, threads=2)))
    # A segment starting part-way (its renderers following the frames before it) too.
    for segment in prepared.segments[1:]:
        on_threads = list(render_frames(plan, segment.start, segment.stop, threads=3))
        assert list_equal(whole[segment.start : segment.stop], on_threads), segment
    assert _engine_threads() == []


def list_equal(a: list[NDArray[np.uint8]], b: list[NDArray[np.uint8]]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_a_cancel_while_drawing_on_threads_stops_them_all(
    tmp_path: Path, prepared: SegmentedJob
) -> None:
    class CancelledError(Exception):
        pass

    cancels: list[Progress] = []

    def progress(report: Progress) -> None:  # as the server's worker checks for a cancel
        # The first report of the render (always sent: the reporter holds back only reports
        # within 0.1 s of the last one, and a fast machine draws a whole 1 s segment in less,
        # so a later frame count may never be reported), while the threads draw frames ahead.
        if report.stage == "render":
            cancels.append(report)
            raise CancelledError

    job = _copy(prepared, tmp_path / "work", cores=2, progress=progress)
    with pytest.raises(CancelledError):
        job.render(job.segments[0])
    assert [r.frames_done for r in cancels] == [1]  # no frame reported after the cancel
    assert _engine_threads() == []
    assert job.work.finished() == {}
    assert [p.name for p in (tmp_path / "work").iterdir() if p.suffix == ".mp4"] == []


def test_an_error_while_drawing_on_threads_is_the_renders_error(
    tmp_path: Path, moving_face: Path, speech: Path
) -> None:
    options = LipsyncOptions(sync_mode=SyncMode.LOOP)
    job = SegmentedJob.open(moving_face, speech, tmp_path / "work", options, 10.0, cores=2)
    # The face's smoothed landmarks lose their second half on disk (a full disk, say).
    (track,) = (tmp_path / "work" / "faces").glob("*.rows")
    track.write_bytes(track.read_bytes()[: track.stat().st_size // 2])
    with pytest.raises(OSError, match="is shorter than its"):
        job.render(job.segments[0])
    assert _engine_threads() == []
    assert job.work.finished() == {}
    assert [p.name for p in (tmp_path / "work").iterdir() if p.suffix == ".mp4"] == []
