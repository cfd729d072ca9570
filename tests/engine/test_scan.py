"""The face scan runs as two halves in parallel; tracks must come out as if scanned whole."""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import mediagen
from chamelaion.engine import scan
from chamelaion.engine.faces import box_of


def _scan(video: Path, split: bool, monkeypatch: pytest.MonkeyPatch) -> scan.FaceScan:
    monkeypatch.setattr(scan, "MIN_FRAMES_TO_SPLIT", 2 if split else 10**9)
    frames = len(mediagen.read_video_frames(video))
    return scan.scan_faces(video, Fraction(25), frames, lambda: None)


def test_a_track_across_the_seam_is_joined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    video = mediagen.write_face_video(tmp_path / "one.mp4", 6.0, 25.0, 320, 240)
    split, whole = _scan(video, True, monkeypatch), _scan(video, False, monkeypatch)
    assert split.frames == whole.frames == 150
    assert len(split.tracks) == len(whole.tracks) == 1
    (track,) = split.tracks
    assert (track.start, track.end) == (0, 150) and track.found.all()
    assert len(split.banks) == 1 and track.key in split.banks
    # The second half's mesh starts afresh, so its landmarks may differ a little, no more.
    span = np.linalg.norm(whole.tracks[0].points[:, 263] - whole.tracks[0].points[:, 33], axis=1)
    error = np.linalg.norm(track.points[:] - whole.tracks[0].points[:], axis=2).mean(axis=1) / span
    assert error.max() < 0.02


def test_a_cut_on_the_seam_keeps_the_shots_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = mediagen.write_one_side(tmp_path / "a.mp4", 3.0, 25.0, 640, 360, "left")
    two = mediagen.write_one_side(tmp_path / "b.mp4", 3.0, 25.0, 640, 360, "right")
    video = mediagen.write_two_shots(tmp_path / "cut.mp4", one, two, 25.0)
    result = _scan(video, True, monkeypatch)
    assert result.shots == [75]
    assert sorted((t.start, t.end) for t in result.tracks) == [(0, 75), (75, 150)]
    first, second = sorted(result.tracks, key=lambda t: t.start)
    assert box_of(first.points[0]).x1 < 320 < box_of(second.points[0]).x0


def test_two_faces_across_the_seam(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    left = mediagen.write_one_side(tmp_path / "l.mp4", 6.0, 25.0, 640, 360, "left")
    right = mediagen.write_one_side(tmp_path / "r.mp4", 6.0, 25.0, 640, 360, "right", scale=1.15)
    video = mediagen.write_side_by_side(tmp_path / "two.mp4", left, right, 25.0, None)
    result = _scan(video, True, monkeypatch)
    assert sorted((t.start, t.end) for t in result.tracks) == [(0, 150), (0, 150)]
    assert sorted(result.banks) == sorted(t.key for t in result.tracks)
    sides = sorted(box_of(t.points[140]).x0 < 320 for t in result.tracks)
    assert sides == [False, True]  # one track per face, each still its own face after the seam


def test_a_failure_in_one_half_stops_the_other(tmp_path: Path) -> None:
    """A cancel raised once, in whichever half reports it, stops both halves within a frame:
    the scan does not go on to the end of the other half."""
    video = mediagen.write_face_video(tmp_path / "long.mp4", 12.0, 25.0, 320, 240)

    class CancelledError(Exception):
        pass

    calls = 0
    lock = threading.Lock()

    def on_frame() -> None:
        nonlocal calls
        with lock:
            calls += 1
            if calls == 40:
                raise CancelledError

    with pytest.raises(CancelledError):
        scan.scan_faces(video, Fraction(25), 300, on_frame)
    assert calls < 40 + 10  # the other half's frames in flight, not its remaining ~130
    scanning = [t.name for t in threading.enumerate() if t.name.startswith(("scan-", "decoder"))]
    assert scanning == []
