"""The whole engine on generated media: sync modes, the audio track, progress, every error."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.signal import correlate

import mediagen
from chamelaion.engine import (
    EmptyMediaError,
    InputTooLargeError,
    InvalidMediaError,
    LipsyncOptions,
    NoAudioStreamError,
    NoFaceError,
    NoVideoStreamError,
    Progress,
    StillImageError,
    SyncMode,
    lipsync,
    media,
)
from chamelaion.engine.timeline import plan_frames

VIDEO_SECONDS = 2.0
AUDIO_SECONDS = 3.0


@pytest.fixture(scope="module")
def two_second_video(media_dir: Path) -> Path:
    # Exaggerated head motion so every source frame is recognisably different.
    return mediagen.write_face_video(
        media_dir / "two_seconds.mp4", VIDEO_SECONDS, 25.0, 320, 240, motion=6.0
    )


@pytest.fixture(scope="module")
def three_second_speech(media_dir: Path) -> Path:
    speech = mediagen.phrases_with_gaps(["one two three four"], gap=0.5)
    pad = AUDIO_SECONDS - speech.duration
    speech = speech + mediagen.silence(pad, speech.sample_rate)
    return mediagen.write_wav(media_dir / "three_seconds.wav", speech)


def _decode(path: Path) -> tuple[list[NDArray[np.uint8]], NDArray[np.float32], int]:
    with av.open(str(path)) as container:
        frames = [
            cast("NDArray[np.uint8]", f.to_ndarray(format="rgb24"))
            for f in container.decode(video=0)
        ]
    with av.open(str(path)) as container:
        chunks = [f.to_ndarray() for f in container.decode(audio=0)]
        rate = container.streams.audio[0].sample_rate
    return frames, np.concatenate(chunks, axis=1)[0], rate


def _nearest_source(frame: NDArray[np.uint8], sources: list[NDArray[np.uint8]]) -> int:
    """Which source frame an output frame shows, judged on the top half (the lower face is
    re-rendered, the rest is not)."""
    top = frame[: frame.shape[0] // 3].astype(np.float32)
    errors = [np.mean((top - s[: s.shape[0] // 3].astype(np.float32)) ** 2) for s in sources]
    return int(np.argmin(errors))


@pytest.mark.parametrize(
    ("mode", "expected_seconds"),
    [
        (SyncMode.CUT_OFF, VIDEO_SECONDS),
        (SyncMode.LOOP, AUDIO_SECONDS),
        (SyncMode.BOUNCE, AUDIO_SECONDS),
        (SyncMode.SILENCE, VIDEO_SECONDS),
        (SyncMode.REMAP, AUDIO_SECONDS),
    ],
)
def test_sync_modes(
    tmp_path: Path,
    two_second_video: Path,
    three_second_speech: Path,
    mode: SyncMode,
    expected_seconds: float,
) -> None:
    out = tmp_path / f"{mode.value}.mp4"
    result = lipsync(two_second_video, three_second_speech, out, LipsyncOptions(sync_mode=mode))
    info = media.probe(out)
    assert info.fps == Fraction(25)
    assert (info.width, info.height) == (320, 240)
    frames, sound, rate = _decode(out)
    assert len(frames) == result.frames == round(expected_seconds * 25)
    assert len(sound) / rate == pytest.approx(expected_seconds, abs=0.05)
    assert result.face_frames == len(frames)
    opening = result.mouth_opening  # what was rendered, frame by frame: the dub opens the mouth
    assert len(opening) == len(frames) and not np.isnan(opening).any()
    assert opening.min() >= 0 and opening.max() > 0.05

    sources = list(media.read_frames(two_second_video, Fraction(25)))
    plan = plan_frames(mode, len(sources), Fraction(25), AUDIO_SECONDS)
    shown = [_nearest_source(f, sources) for f in frames[::5]]
    assert shown == [int(i) for i in plan[::5]]


def test_plan_shapes() -> None:
    fps = Fraction(25)
    assert list(plan_frames(SyncMode.BOUNCE, 4, fps, 0.4)) == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]
    assert list(plan_frames(SyncMode.LOOP, 4, fps, 0.4)) == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    assert list(plan_frames(SyncMode.REMAP, 4, fps, 0.28)) == [0, 1, 1, 2, 2, 3, 3]
    assert list(plan_frames(SyncMode.CUT_OFF, 4, fps, 0.1)) == [0, 1, 2]
    assert list(plan_frames(SyncMode.SILENCE, 4, fps, 1.0)) == [0, 1, 2, 3]


def test_output_audio_is_the_target_audio(
    tmp_path: Path, two_second_video: Path, short_speech: Path
) -> None:
    out = tmp_path / "audio.mp4"
    lipsync(two_second_video, short_speech, out, LipsyncOptions(sync_mode=SyncMode.LOOP))
    _, sound, rate = _decode(out)
    target = media.read_audio(short_speech, rate)
    n = min(len(target), len(sound))
    a, b = sound[:n] - sound[:n].mean(), target[:n] - target[:n].mean()
    xcorr = correlate(a, b, mode="full", method="fft") / (np.linalg.norm(a) * np.linalg.norm(b))
    lag = int(np.argmax(xcorr)) - (n - 1)
    # Same signal at the same time: AAC is lossy, so not a copy, but nearly so, and not shifted.
    assert abs(lag) <= 0.002 * rate
    assert xcorr.max() > 0.95


def test_silence_mode_pads_audio_and_closes_the_mouth(
    tmp_path: Path, two_second_video: Path
) -> None:
    speech = mediagen.speak("mama")  # about half a second, shorter than the video
    wav = mediagen.write_wav(tmp_path / "short.wav", speech)
    out = tmp_path / "silence.mp4"
    lipsync(two_second_video, wav, out, LipsyncOptions(sync_mode=SyncMode.SILENCE))
    frames, sound, rate = _decode(out)
    assert len(frames) == 50
    assert np.abs(sound[int(1.2 * rate) :]).max() < 1e-3  # padded with silence


def test_progress_is_reported_for_both_passes(
    tmp_path: Path, two_second_video: Path, short_speech: Path
) -> None:
    reports: list[Progress] = []
    lipsync(two_second_video, short_speech, tmp_path / "p.mp4", progress=reports.append)
    stages = [r.stage for r in reports]
    assert stages[0] == "analysis" and stages[-1] == "render"
    assert reports[-1].frames_done == reports[-1].frames_total
    assert reports[-1].fraction == pytest.approx(1.0)
    fractions = [r.fraction for r in reports]
    assert fractions == sorted(fractions)


@pytest.mark.parametrize(
    ("fps", "size", "vfr"), [(24.0, (321, 241), False), (30.0, (320, 240), True)]
)
def test_frame_rates_sizes_and_variable_rate(
    tmp_path: Path, short_speech: Path, fps: float, size: tuple[int, int], vfr: bool
) -> None:
    video = mediagen.write_face_video(tmp_path / "in.mp4", 2.0, fps, *size, vfr=vfr)
    out = tmp_path / "out.mp4"
    result = lipsync(video, short_speech, out)
    info = media.probe(out)
    assert info.fps == Fraction(fps)
    assert (info.width, info.height) == media.even_size(*size)
    assert result.face_frames == result.frames > 0


# -- errors: a clear message, the right type, and nothing left behind -------------------------


def _assert_fails(tmp_path: Path, video: Path, audio: Path,
                  error: type[Exception] | tuple[type[Exception], ...], match: str,
                  options: LipsyncOptions | None = None) -> None:  # fmt: skip
    out = tmp_path / "never.mp4"
    with pytest.raises(error, match=match):
        lipsync(video, audio, out, options)
    assert list(tmp_path.glob("*never*")) == []


def test_faceless_video(tmp_path: Path, blank_video: Path, short_speech: Path) -> None:
    _assert_fails(tmp_path, blank_video, short_speech, NoFaceError, "^no face detected in video$")


def test_video_input_without_video(tmp_path: Path, short_speech: Path) -> None:
    _assert_fails(
        tmp_path, short_speech, short_speech, NoVideoStreamError, "video input has no video stream"
    )


def test_audio_input_without_audio(tmp_path: Path, short_face_video: Path) -> None:
    _assert_fails(
        tmp_path,
        short_face_video,
        short_face_video,
        NoAudioStreamError,
        "audio input has no audio stream",
    )


def test_undecodable_inputs(tmp_path: Path, short_face_video: Path, short_speech: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 64)
    _assert_fails(tmp_path, junk, short_speech, InvalidMediaError, "junk.bin")
    _assert_fails(tmp_path, short_face_video, junk, InvalidMediaError, "junk.bin")


def test_truncated_video(tmp_path: Path, short_face_video: Path, short_speech: Path) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(short_face_video.read_bytes()[:2000])
    _assert_fails(tmp_path, cut, short_speech, InvalidMediaError, "cut.mp4")


def test_zero_duration_audio(tmp_path: Path, short_face_video: Path) -> None:
    empty = mediagen.write_wav(tmp_path / "empty.wav", mediagen.silence(0.0))
    _assert_fails(
        tmp_path,
        short_face_video,
        empty,
        (EmptyMediaError, InvalidMediaError),
        "empty.wav|zero duration|no audio",
    )


@pytest.mark.parametrize("frames", [0, 1])
def test_a_still_image_is_refused(tmp_path: Path, short_speech: Path, frames: int) -> None:
    """A picture file, or a video of one frame: nothing to animate over time."""
    if frames:
        still = mediagen.write_flat_video(tmp_path / "one-frame.mp4", 320, 240, frames=frames)
    else:
        still = mediagen.write_still_image(tmp_path / "picture.png")
    _assert_fails(tmp_path, still, short_speech, StillImageError, "video input is a still image")


def test_size_caps(tmp_path: Path, short_face_video: Path, short_speech: Path) -> None:
    _assert_fails(tmp_path, short_face_video, short_speech, InputTooLargeError, "320x240",
                  LipsyncOptions(max_pixels=320 * 200))  # fmt: skip
    _assert_fails(tmp_path, short_face_video, short_speech, InputTooLargeError, "lasts",
                  LipsyncOptions(max_duration_s=1.0))  # fmt: skip


def test_frames_without_a_face_pass_through(tmp_path: Path, short_speech: Path) -> None:
    """The face leaves the picture for a second: those frames come out as they went in."""
    wall = np.full((240, 320, 3), 90, np.uint8)

    def frames() -> Iterator[tuple[float, NDArray[np.uint8]]]:
        for i in range(75):
            t = i / 25
            yield t, wall if 25 <= i < 50 else mediagen.face_frame(320, 240, t)

    video = mediagen.write_video(tmp_path / "gap.mp4", frames(), 25.0)
    out = tmp_path / "out.mp4"
    result = lipsync(video, short_speech, out, LipsyncOptions(sync_mode=SyncMode.SILENCE))
    assert result.frames == 75
    assert result.face_frames == 50
    # The rendered mouth track has a gap exactly where the face was gone.
    missing = np.isnan(result.mouth_opening)
    assert len(missing) == 75 and np.flatnonzero(missing).tolist() == list(range(25, 50))
    source, output = mediagen.read_video_frames(video), mediagen.read_video_frames(out)
    for i in range(25, 50):
        assert np.abs(output[i].astype(int) - source[i].astype(int)).mean() < 1.0
