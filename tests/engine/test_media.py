"""Media stage: probing, constant-rate decoding of any input, encoding, broken files."""

from __future__ import annotations

import itertools
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import mediagen
from chamelaion.engine import media
from chamelaion.engine.errors import InvalidMediaError


def test_probe_describes_video_and_audio(media_dir: Path) -> None:
    speech = mediagen.speak("hello")
    path = mediagen.write_face_video(media_dir / "probe.mp4", 1.0, 30.0, 320, 240, audio=speech)
    info = media.probe(path)
    assert info.has_video and info.has_audio
    assert (info.width, info.height, info.fps) == (320, 240, Fraction(30))
    assert info.audio_sample_rate == speech.sample_rate
    assert info.audio_channels == 1
    assert 0.9 < info.duration < 1.2


def test_probe_of_audio_only(short_speech: Path) -> None:
    info = media.probe(short_speech)
    assert info.has_audio and not info.has_video
    # The file's own length, read with the standard library: synthesising the phrase again is
    # no oracle, espeak-ng's timing drifts by 10-20 ms with what the process synthesised before.
    with wave.open(str(short_speech)) as wav:
        seconds = wav.getnframes() / wav.getframerate()
    assert info.duration == pytest.approx(seconds, abs=0.01)


def test_probe_of_flv_with_sound(media_dir: Path) -> None:
    """FFmpeg cannot seek in FLV; probing once seeked back to read the sound, so every FLV with
    sound (CREMA-D's clips, old Flash recordings) was refused as damaged."""
    speech = mediagen.speak("hello")
    path = media_dir / "sound.flv"
    with av.open(str(path), "w", format="flv") as out:
        video = out.add_stream("flv1", rate=25)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        sound = out.add_stream("mp3", rate=speech.sample_rate)
        for i in range(25):
            out.mux(video.encode(av.VideoFrame.from_ndarray(mediagen.face_frame(160, 120, i / 25))))
        out.mux(video.encode())
        for start in range(0, len(speech.samples), 1152):
            chunk = speech.samples[start : start + 1152].astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = speech.sample_rate, start
            out.mux(sound.encode(frame))
        out.mux(sound.encode())
    info = media.probe(path)
    assert info.has_video and info.has_audio
    assert (info.width, info.height, info.fps) == (160, 120, Fraction(25))
    assert info.audio_sample_rate == speech.sample_rate
    assert len(media.read_audio(path, with_video=True)) > 0.5 * media.ANALYSIS_SAMPLE_RATE


@pytest.mark.parametrize("fps", [24.0, 25.0, 30.0])
def test_constant_rate_input_decodes_every_frame(media_dir: Path, fps: float) -> None:
    path = mediagen.write_face_video(media_dir / f"cfr{fps}.mp4", 1.0, fps, 160, 120)
    info = media.probe(path)
    frames = list(media.read_frames(path, info.fps))
    assert info.fps == Fraction(fps)
    assert len(frames) == round(fps)
    assert frames[0].shape == (120, 160, 3)


def test_variable_rate_input_is_resampled_to_a_steady_rate(media_dir: Path) -> None:
    # Bursts of three frames, then a gap: 30 frames per second on average, never steady.
    path = mediagen.write_face_video(media_dir / "vfr.mp4", 2.0, 30.0, 160, 120, vfr=True)
    info = media.probe(path)
    assert info.fps == Fraction(30)
    frames = list(media.read_frames(path, info.fps))
    # The last frame's own duration is unknown, so the count may end a slot short.
    assert len(frames) in (59, 60)
    # In each burst one frame falls between slots and is dropped; after it, one fills two.
    repeats = sum(np.array_equal(a, b) for a, b in itertools.pairwise(frames))
    assert 15 <= repeats <= 25


def test_odd_sizes_decode_whole_and_encode_even(media_dir: Path, tmp_path: Path) -> None:
    path = mediagen.write_face_video(media_dir / "odd.mp4", 0.4, 25.0, 321, 241)
    info = media.probe(path)
    assert (info.width, info.height) == (321, 241)
    frames = list(media.read_frames(path, info.fps))
    assert frames[0].shape == (241, 321, 3)
    assert media.even_size(321, 241) == (320, 240)
    out = tmp_path / "even.mp4"
    writer = media.VideoWriter(out, 321, 241, info.fps, 48000, "mono")
    for frame in frames:
        writer.write_frame(frame)
    writer.write_audio(np.zeros((1, 4800), np.float32))
    writer.close()
    written = media.probe(out)
    assert (written.width, written.height) == (320, 240)
    assert not list(tmp_path.glob(".*partial*"))


def test_seeking_gives_the_same_frames_as_a_full_pass(media_dir: Path) -> None:
    path = mediagen.write_face_video(media_dir / "seek.mp4", 3.0, 25.0, 160, 120)
    fps = media.probe(path).fps
    full = list(media.read_frames(path, fps))
    tail = list(media.read_frames(path, fps, start=40))
    assert len(tail) == len(full) - 40
    assert all(np.array_equal(a, b) for a, b in zip(tail, full[40:], strict=True))


def test_rotation_metadata_is_applied(media_dir: Path) -> None:
    path = mediagen.write_face_video(media_dir / "rotated.mp4", 0.4, 25.0, 160, 120)
    upright = next(media.read_frames(path, Fraction(25)))
    mediagen.set_rotation(path, 90)
    info = media.probe(path)
    assert info.rotation in (90, 270)
    assert (info.width, info.height) == (120, 160)
    turned = next(media.read_frames(path, info.fps))
    assert turned.shape == (160, 120, 3)
    expected = np.rot90(upright, k=-1 if info.rotation == 90 else 1)
    assert np.abs(turned.astype(int) - expected.astype(int)).mean() < 2


def test_read_audio_is_mono_16k(short_speech: Path) -> None:
    samples = media.read_audio(short_speech)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert len(samples) / 16000 == pytest.approx(media.probe(short_speech).duration, abs=0.02)
    assert np.abs(samples).max() > 0.1


def test_not_a_media_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(InvalidMediaError, match=r"junk\.mp4"):
        media.probe(junk)


def test_truncated_file_is_refused_or_decodes_what_is_there(
    media_dir: Path, tmp_path: Path
) -> None:
    path = mediagen.write_face_video(media_dir / "whole.mp4", 1.0, 25.0, 160, 120)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    # faststart is off in the generator, so the index (moov) is at the end: cutting it loses
    # the index and the file cannot be opened at all.
    with pytest.raises(InvalidMediaError):
        media.probe(cut)
