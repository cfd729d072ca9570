"""The speaker pointed at (`LipsyncOptions.speaker`): that face is re-animated and no other,
through its shot and, where the same person is recognised, across a hard cut."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

import mediagen
from chamelaion.engine import LipsyncOptions, SpeakerPoint, SpeakerPointError, lipsync
from chamelaion.engine.faces import OUTER_LOWER_LIP, OUTER_UPPER_LIP, box_of
from chamelaion.engine.pipeline import VideoAnalysis, analyse_video

FPS = 25.0
W, H = 640, 360
SHOT = 30  # frames in each shot of the two-shot scenes


@pytest.fixture(scope="module")
def left_speaks(media_dir: Path) -> Path:
    return mediagen.write_left_speaks(media_dir, W, H, FPS)


@pytest.fixture(scope="module")
def target_speech(media_dir: Path) -> Path:
    return mediagen.write_wav(
        media_dir / "point_target.wav",
        mediagen.phrases_with_gaps(["a brand new line", "for the dub"], gap=0.4),
    )


def _side(analysis: VideoAnalysis, frame: int) -> str | None:
    face = analysis.choice.faces[frame]
    points = None if face is None else face.at(frame)
    if points is None:
        return None
    box = box_of(points)
    return "left" if (box.x0 + box.x1) / 2 < W / 2 else "right"


def _mouth_box_change(
    source: NDArray[np.uint8], output: NDArray[np.uint8], points: NDArray[np.float32]
) -> float:
    """Mean absolute change in the box of a face's lips (from its landmarks), widened by half."""
    lips = box_of(points[list(OUTER_UPPER_LIP + OUTER_LOWER_LIP)])
    dx, dy = (lips.x1 - lips.x0) / 4, (lips.y1 - lips.y0) / 4 + 4
    rows = slice(max(0, round(lips.y0 - dy)), round(lips.y1 + dy))
    columns = slice(max(0, round(lips.x0 - dx)), round(lips.x1 + dx))
    return float(np.abs(output[rows, columns].astype(float) - source[rows, columns]).mean())


def _mouth_changes(source: Path, output: Path) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    before, after = mediagen.read_video_frames(source), mediagen.read_video_frames(output)
    return (
        mediagen.mouth_change(before, after, "left"),
        mediagen.mouth_change(before, after, "right"),
    )


def test_pointing_at_the_silent_face_re_animates_it(
    tmp_path: Path, left_speaks: Path, target_speech: Path
) -> None:
    # The left face speaks (active speaker detection picks it); the point names the right one.
    options = LipsyncOptions(speaker=SpeakerPoint(frame=12, x=0.73, y=0.5))
    analysis = analyse_video(left_speaks, options)
    assert {_side(analysis, f) for f in range(analysis.frames)} == {"right"}
    assert analysis.choice.notes == []
    out = tmp_path / "out.mp4"
    result = lipsync(left_speaks, target_speech, out, options)
    assert result.face_frames == result.frames
    left, right = _mouth_changes(left_speaks, out)
    assert np.median(left) < mediagen.UNTOUCHED  # the speaker is left alone
    assert np.percentile(right, 75) > 3 * np.median(left) + 2  # the pointed face re-animated


def test_the_point_overrides_disabled_detection(left_speaks: Path) -> None:
    # Without the point the largest face (the right one) would be used.
    options = LipsyncOptions(
        active_speaker_detection=False, speaker=SpeakerPoint(frame=0, x=0.27, y=0.55)
    )
    analysis = analyse_video(left_speaks, options)
    assert {_side(analysis, f) for f in range(analysis.frames)} == {"left"}


def test_a_point_on_no_face_fails_clearly(
    tmp_path: Path, short_face_video: Path, short_speech: Path
) -> None:
    out = tmp_path / "out.mp4"
    options = LipsyncOptions(speaker=SpeakerPoint(frame=3, x=0.0, y=0.0))
    with pytest.raises(SpeakerPointError) as error:
        lipsync(short_face_video, short_speech, out, options)
    assert str(error.value) == (
        "no face at the speaker point (x 0, y 0) in frame 3: 1 face in that frame, none there"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("point", "message"),
    [
        (SpeakerPoint(50, 0.5, 0.5), "speaker frame 50 is beyond the video's last frame (49)"),
        (SpeakerPoint(0, 1.5, 0.5), "speaker x must be a fraction of the picture from 0 to 1"),
        (SpeakerPoint(0, 0.5, float("nan")), "speaker y must be a fraction of the picture"),
        (SpeakerPoint(-1, 0.5, 0.5), "speaker frame must be 0 or more, not -1"),
    ],
)
def test_a_point_outside_the_video_fails_clearly(
    tmp_path: Path, short_face_video: Path, short_speech: Path, point: SpeakerPoint, message: str
) -> None:
    # short_face_video: 2 s at 25 fps, frames 0-49.
    with pytest.raises(SpeakerPointError, match=message.replace("(", r"\(").replace(")", r"\)")):
        lipsync(short_face_video, short_speech, tmp_path / "out.mp4", LipsyncOptions(speaker=point))


@pytest.fixture(scope="module")
def same_two_cut(media_dir: Path) -> Path:
    """Shot 1: the astronaut left, its mirror image right; shot 2, reframed: the mirror image
    left (smaller), the astronaut right (larger)."""
    seconds = SHOT / FPS
    one = mediagen.write_pair(media_dir / "pair1.mp4", seconds, FPS, W, H, mirrored="right")
    two = mediagen.write_pair(
        media_dir / "pair2.mp4", seconds, FPS, W, H, mirrored="left", scales=(0.8, 1.1)
    )
    return mediagen.write_two_shots(media_dir / "pair_cut.mp4", one, two, FPS)


def test_the_pointed_person_is_recognised_across_a_cut(
    tmp_path: Path, same_two_cut: Path, target_speech: Path
) -> None:
    options = LipsyncOptions(speaker=SpeakerPoint(frame=5, x=0.75, y=0.5))  # the mirror image
    analysis = analyse_video(same_two_cut, options)
    assert analysis.shots == [SHOT]
    sides = [_side(analysis, f) for f in range(analysis.frames)]
    assert sides == ["right"] * SHOT + ["left"] * SHOT
    assert analysis.choice.notes == [
        f"frames {SHOT}-{2 * SHOT - 1}: the pointed speaker, recognised by their likeness"
    ]
    out = tmp_path / "out.mp4"
    result = lipsync(same_two_cut, target_speech, out, options)
    source, output = mediagen.read_video_frames(same_two_cut), mediagen.read_video_frames(out)
    pointed: list[tuple[int, float]] = []  # (frame, mean change around the mouth)
    other: list[tuple[int, float]] = []
    for f in range(analysis.frames):
        for track in analysis.tracks:
            points = track.at(f)
            if points is not None:
                change = _mouth_box_change(source[f], output[f], points)
                (pointed if track is analysis.choice.faces[f] else other).append((f, change))
    assert len(other) == 2 * SHOT  # the astronaut, in both shots
    assert np.median([c for _, c in other]) < mediagen.UNTOUCHED
    opened = [c for f, c in pointed if result.mouth_opening[f] > 0.3]
    assert len(opened) >= 6
    assert np.median(opened) > 3 * np.median([c for _, c in other]) + 2


def test_someone_else_is_never_taken_for_the_pointed_person(media_dir: Path) -> None:
    # Shot 2 shows only the astronaut, alone: the mirror image pointed at in shot 1 is not there.
    one = mediagen.write_pair(media_dir / "pair_a.mp4", SHOT / FPS, FPS, W, H, mirrored="right")
    two = mediagen.write_one_side(media_dir / "alone.mp4", SHOT / FPS, FPS, W, H, "left")
    video = mediagen.write_two_shots(media_dir / "other_alone.mp4", one, two, FPS)
    analysis = analyse_video(video, LipsyncOptions(speaker=SpeakerPoint(0, 0.75, 0.5)))
    sides = [_side(analysis, f) for f in range(analysis.frames)]
    assert sides == ["right"] * SHOT + [None] * SHOT
    assert analysis.choice.notes == [
        f"frames {SHOT}-{2 * SHOT - 1}: the pointed speaker was not recognised among the faces "
        "there: no face re-animated"
    ]
