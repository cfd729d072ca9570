"""The face scan of the analysis pass: every frame's faces, as tracks, on both cores.

The video is scanned as two halves at once, each with a decoder and a face mesh of its own
(mediapipe releases the GIL, so the halves really run in parallel), and the tracks that run
across the seam are joined afterwards by the overlap of their faces on either side of it, unless
a cut falls exactly there. Short videos are scanned in one piece.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from chamelaion.engine import media
from chamelaion.engine.bank import MouthBank
from chamelaion.engine.faces import FaceTrack, LandmarkDetector, TrackBuilder, box_of
from chamelaion.engine.rows import RowFolder, concatenate
from chamelaion.engine.shots import CutDetector

MAX_FACES = 4  # faces tracked per frame
MIN_FRAMES_TO_SPLIT = 120
_KEYS_PER_PART = 1_000_000  # track keys of the second half start here
_JOIN_IOU = 0.3


@dataclass
class FaceScan:
    frames: int
    tracks: list[FaceTrack]
    banks: dict[int, MouthBank]  # by track key
    shots: list[int] = field(default_factory=list)  # first frame of each shot after the first


def scan_faces(
    video: str | Path,
    fps: Fraction,
    expected_frames: int,
    on_frame: Callable[[], None],
    folder: RowFolder | None = None,
) -> FaceScan:
    """Scan `video` at `fps`; `on_frame` is called once per frame scanned (from any thread).
    The tracks' points are written to row files in `folder` (a temporary one by default)."""
    folder = folder or RowFolder.temporary()
    if expected_frames < MIN_FRAMES_TO_SPLIT:
        return _scan_part(video, fps, 0, None, 0, on_frame, folder)
    middle = expected_frames // 2
    halves: list[FaceScan | BaseException | None] = [None, None]
    failed = threading.Event()  # one half failed (or `on_frame` raised there): stop the other

    def run(index: int, start: int, stop: int | None) -> None:
        try:
            halves[index] = _scan_part(
                video, fps, start, stop, index * _KEYS_PER_PART, on_frame, folder, failed
            )
        except BaseException as exc:  # re-raised on the calling thread
            halves[index] = exc
            failed.set()

    threads = [
        threading.Thread(target=run, args=(0, 0, middle), name="scan-first-half"),
        threading.Thread(target=run, args=(1, middle, None), name="scan-second-half"),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for half in halves:  # the first failure, not the other half's giving up
        if isinstance(half, BaseException) and not isinstance(half, _GivenUpError):
            raise half
    first, second = halves
    assert isinstance(first, FaceScan) and isinstance(second, FaceScan)
    if first.frames < middle:  # the file ended early: nothing past it
        return first
    return _join(first, second, middle, folder)


class _GivenUpError(Exception):
    """A half stops because the other failed."""


def _scan_part(
    video: str | Path,
    fps: Fraction,
    start: int,
    stop: int | None,
    first_key: int,
    on_frame: Callable[[], None],
    folder: RowFolder,
    failed: threading.Event | None = None,
) -> FaceScan:
    """Scan frames [start, stop); a part that starts later first shows the frame before its
    start to the cut detector, so a cut right at the seam is still seen. Gives up between
    frames once `failed` is set."""
    builder = TrackBuilder(first_key=first_key, folder=folder)
    banks: dict[int, MouthBank] = {}
    cuts = CutDetector()
    shots: list[int] = []
    frames = media.read_frames(video, fps, start=max(start - 1, 0))
    if start > 0:
        before = next(frames, None)
        if before is None:
            return FaceScan(0, [], {})
        cuts.is_cut(before)
    frames = itertools.islice(frames, None if stop is None else stop - start)
    count = 0
    with LandmarkDetector(max_faces=MAX_FACES) as detect:
        for index, rgb in enumerate(media.prefetch(frames), start=start):
            if failed is not None and failed.is_set():
                raise _GivenUpError
            if cuts.is_cut(rgb):
                builder.cut()
                detect.new_shot()
                shots.append(index)
            faces = detect(rgb)
            for key, face in zip(builder.add(index, faces), faces, strict=True):
                banks.setdefault(key, MouthBank()).offer(rgb, face)
            count += 1
            on_frame()
    return FaceScan(count, builder.finish(), banks, shots)


def _join(first: FaceScan, second: FaceScan, seam: int, folder: RowFolder) -> FaceScan:
    """One scan from two halves: tracks on both sides of the seam joined when their faces
    overlap across it (and no cut falls there); mouth banks merged with them."""
    tracks = list(first.tracks)
    banks = {**first.banks, **second.banks}
    ending = [t for t in first.tracks if t.end == seam and t.at(seam - 1) is not None]
    starting = [t for t in second.tracks if t.start == seam and t.at(seam) is not None]
    joined: set[int] = set()
    if seam not in second.shots:
        pairs = sorted(
            ((box_of(a.at(seam - 1)).iou(box_of(b.at(seam))), i, j)  # type: ignore[arg-type]
             for i, a in enumerate(ending) for j, b in enumerate(starting)),
            reverse=True,
        )  # fmt: skip
        used_a: set[int] = set()
        for iou, i, j in pairs:
            if iou < _JOIN_IOU or i in used_a or j in joined:
                continue
            used_a.add(i)
            joined.add(j)
            a, b = ending[i], starting[j]
            points = concatenate([a.points, b.points], folder, f"track-{a.key}")
            whole = FaceTrack(a.start, points, np.concatenate([a.found, b.found]), a.key)
            a.points.path.unlink()  # copied whole: the halves' files are not needed any more
            b.points.path.unlink()
            tracks = [whole if t is a else t for t in tracks]
            second_bank = banks.pop(b.key, None)
            if second_bank is not None:
                banks.setdefault(a.key, MouthBank()).merge(second_bank)
    tracks += [t for j, t in enumerate(starting) if j not in joined]
    tracks += [t for t in second.tracks if all(t is not s for s in starting)]
    return FaceScan(
        first.frames + second.frames,
        sorted(tracks, key=lambda t: t.start),
        banks,
        first.shots + second.shots,
    )
