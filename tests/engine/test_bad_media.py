"""Awkward but real inputs through the whole engine: each has one defined outcome, either a
correct output or a clear error that leaves nothing behind.

(Variable frame rate, odd sizes and audio longer than the video under every sync mode are in
test_pipeline.py; decoding details of rotation and variable rate in test_media.py.)
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from numpy.typing import NDArray

import mediagen
from chamelaion.engine import (
    HdrVideoError,
    LipsyncOptions,
    SyncMode,
    TooLongError,
    lipsync,
    media,
)


@pytest.fixture(scope="module")
def face_video(media_dir: Path) -> Path:
    return mediagen.write_face_video(media_dir / "bad_media_face.mp4", 1.2, 25.0, 320, 240)


def _assert_refused(tmp_path: Path, video: Path, audio: Path, error: type[Exception],
                    match: str) -> None:  # fmt: skip
    out = tmp_path / "never.mp4"
    with pytest.raises(error, match=match):
        lipsync(video, audio, out)
    assert not out.exists() and list(tmp_path.glob("*never*")) == []


def _top_third_error(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> float:
    """Mean absolute difference above the lower face (the part the engine never changes)."""
    rows = a.shape[0] // 3
    return float(np.abs(a[:rows].astype(int) - b[:rows].astype(int)).mean())


def test_rotated_phone_video_comes_out_upright(tmp_path: Path, short_speech: Path) -> None:
    """A phone's portrait video is stored landscape (the face on its side) with a display
    matrix: the output is the picture as displayed, portrait with the face upright,
    re-animated, with no rotation left to apply."""
    portrait = [(t, mediagen.face_frame(240, 320, t)) for t in np.arange(30) / 25]
    rotated = tmp_path / "portrait.mp4"
    for turn in (1, -1):  # which way the stored picture is turned depends on FFmpeg's sign
        stored = ((t, np.ascontiguousarray(np.rot90(f, k=turn))) for t, f in portrait)
        mediagen.write_video(rotated, stored, 25.0)
        mediagen.set_rotation(rotated, 90)
        if media.probe(rotated).rotation == (90 if turn == 1 else 270):
            break
    out = tmp_path / "out.mp4"
    result = lipsync(rotated, short_speech, out, LipsyncOptions(sync_mode=SyncMode.SILENCE))
    info = media.probe(out)
    assert (info.width, info.height, info.rotation) == (240, 320, 0)
    assert result.face_frames == result.frames == 30
    outputs = mediagen.read_video_frames(out)
    for (_, source), output in zip(portrait[::6], outputs[::6], strict=True):
        assert output.shape == source.shape == (320, 240, 3)
        assert _top_third_error(output, source) < 3.0


def test_ten_bit_video_is_processed_as_eight_bit(
    tmp_path: Path, face_video: Path, short_speech: Path
) -> None:
    ten = mediagen.reencode_video(face_video, tmp_path / "ten.mp4", "yuv420p10le")
    out = tmp_path / "out.mp4"
    result = lipsync(ten, short_speech, out, LipsyncOptions(sync_mode=SyncMode.SILENCE))
    assert result.face_frames == result.frames == 30
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
    sources, outputs = mediagen.read_video_frames(ten), mediagen.read_video_frames(out)
    assert all(_top_third_error(o, s) < 3.0 for o, s in zip(outputs, sources, strict=True))


@pytest.mark.parametrize(("transfer", "name"), [(16, "PQ"), (18, "HLG")])
def test_hdr_video_is_refused(
    tmp_path: Path, face_video: Path, short_speech: Path, transfer: int, name: str
) -> None:
    """HDR shown as SDR without tone mapping looks wrong: refused before any work, by the same
    check the service applies to an upload."""
    hdr = mediagen.reencode_video(face_video, tmp_path / "hdr.mp4", "yuv420p10le", transfer)
    assert media.probe(hdr).hdr == name
    _assert_refused(tmp_path, hdr, short_speech, HdrVideoError, f"video input is HDR \\({name}\\)")


def test_interlaced_video_is_processed(
    tmp_path: Path, face_video: Path, short_speech: Path
) -> None:
    """Interlaced H.264 (coded as fields) decodes to whole frames, one per frame period; the
    output is progressive at the same rate."""
    fields = mediagen.reencode_video(face_video, tmp_path / "fields.mp4", interlaced=True)
    with av.open(str(fields)) as container:
        assert next(container.decode(video=0)).interlaced_frame
    out = tmp_path / "out.mp4"
    result = lipsync(fields, short_speech, out, LipsyncOptions(sync_mode=SyncMode.SILENCE))
    assert result.face_frames == result.frames == 30
    with av.open(str(out)) as container:
        assert not next(container.decode(video=0)).interlaced_frame
    assert media.probe(out).fps == Fraction(25)


def test_two_hour_inputs_are_refused_at_once(
    tmp_path: Path, face_video: Path, short_speech: Path
) -> None:
    """Over the duration cap (30 minutes by default), video or audio: refused from the probe,
    before a frame is decoded, and nothing is written. Two hours of a one-frame-a-second
    video made by copying its packets, two hours of silence as 1 kHz FLAC."""
    minute = mediagen.write_flat_video(tmp_path / "minute.mp4", 64, 48, frames=60, fps=1)
    long_video = mediagen.loop_packets(minute, tmp_path / "two_hours.mp4", 7200)
    assert media.probe(long_video).duration == pytest.approx(7200, abs=2)
    _assert_refused(tmp_path, long_video, short_speech, TooLongError,
                    r"^video lasts 720\d s; the limit is 1800 s$")  # fmt: skip
    long_audio = mediagen.write_long_silence(tmp_path / "two_hours.flac", 7200)
    _assert_refused(tmp_path, face_video, long_audio, TooLongError,
                    r"^audio lasts 720\d s; the limit is 1800 s$")  # fmt: skip
