"""Landmarks on disk: row files read back as the arrays they stand for, and the chunked
smoothing giving exactly what smoothing whole tracks in memory gave."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter1d

from chamelaion.engine import faces
from chamelaion.engine.faces import (
    LANDMARK_COUNT,
    RIGID_POINTS,
    FaceTrack,
    apply_affine,
    canonical_frame,
    fit_similarity,
    invert_affine,
    smooth_track,
)
from chamelaion.engine.rows import CHUNK_ROWS, RowFolder


def test_a_row_file_reads_back_like_its_array(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    array = rng.normal(size=(1300, 5, 2)).astype(np.float32)
    writer = RowFolder(tmp_path).writer("x", (5, 2))
    writer.append(array[:7])
    writer.append(array[7])  # one row
    writer.append(array[8:])
    rows = writer.close()
    assert len(rows) == 1300
    assert np.array_equal(rows[:], array)
    assert np.array_equal(rows[3], array[3]) and np.array_equal(rows[-1], array[-1])
    assert np.array_equal(rows[10:700:3], array[10:700:3])
    assert np.array_equal(rows[:, 4], array[:, 4]) and np.array_equal(rows[12, 1:3], array[12, 1:3])
    picked = np.array([900, 2, 3, 4, 1299, 2])
    assert np.array_equal(rows[picked], array[picked])
    mask = rng.random(1300) < 0.3
    assert np.array_equal(rows.take(mask), array[mask])
    assert sum(len(chunk) for _, chunk in rows.chunks()) == 1300
    rows[5][:] = 0  # a read is a copy: the file is unchanged
    assert np.array_equal(rows[5], array[5])
    with pytest.raises(IndexError):
        rows[1300]
    with pytest.raises(IndexError):
        rows.take(np.array([0, 1300]))
    with pytest.raises(ValueError, match="rows of shape"):
        RowFolder(tmp_path).writer("y", (5, 2)).append(np.zeros((3, 4, 2)))
    again = pickle.loads(pickle.dumps(rows))  # as a render plan carries it: by its path
    assert np.array_equal(again[100:200], array[100:200])


def test_a_temporary_folder_goes_with_its_last_row_file() -> None:
    writer = RowFolder.temporary().writer("t", (2,))
    writer.append(np.zeros((3, 2)))
    rows = writer.close()
    folder = rows.path.parent
    assert folder.exists()
    del writer, rows
    assert not folder.exists()


def _whole_track_smoothing(
    points: NDArray[np.float32],
) -> tuple[NDArray[np.float64], NDArray[np.float32]]:
    """The smoothing as it was done on whole tracks held in memory (the reference)."""
    found = ~np.isnan(points[:, 0, 0])
    points = points.copy()
    for gap in faces._runs(~found):
        before, after = gap.start - 1, gap.stop
        if gap.stop - gap.start > 2 or before < 0 or after >= len(points):
            continue
        for k, i in enumerate(range(gap.start, gap.stop), start=1):
            w = k / (gap.stop - gap.start + 1)
            points[i] = (1 - w) * points[before] + w * points[after]
    found = ~np.isnan(points[:, 0, 0])
    poses = np.full((len(points), 2, 3), np.nan)
    shapes = np.full(points.shape, np.nan, np.float32)
    reference = None
    for i in np.flatnonzero(found):
        if reference is None:
            reference = apply_affine(canonical_frame(points[i]), points[i])[list(RIGID_POINTS)]
        poses[i] = fit_similarity(reference, points[i][list(RIGID_POINTS)])
        shapes[i] = apply_affine(invert_affine(poses[i]), points[i])
    for run in faces._runs(found):
        poses[run] = faces._smooth_pose(poses[run], 1.5)
        shapes[run] = gaussian_filter1d(shapes[run], 1.0, axis=0, mode="nearest", output=np.float32)
    return poses, shapes


def test_chunked_smoothing_is_exactly_the_whole_track_smoothing(tmp_path: Path) -> None:
    """A track several chunks long, with one- and two-frame gaps (bridged), a long gap (two
    runs smoothed apart) and gaps right at chunk edges: every pose and shape is identical."""
    rng = np.random.default_rng(7)
    n = 3 * CHUNK_ROWS + 77
    base = rng.normal(size=(LANDMARK_COUNT, 2)).astype(np.float32) * 40 + 300
    drift = np.cumsum(rng.normal(size=(n, 1, 2)), axis=0)
    points = (base + drift + rng.normal(size=(n, LANDMARK_COUNT, 2))).astype(np.float32)
    lost = [5, CHUNK_ROWS - 1, CHUNK_ROWS, CHUNK_ROWS + 1, 900, 901, 2 * CHUNK_ROWS - 2]
    lost += list(range(1200, 1240))  # a long gap: two runs
    lost += [n - 1]  # the end: not bridged
    points[lost] = np.nan
    writer = RowFolder(tmp_path).writer("track", (LANDMARK_COUNT, 2))
    writer.append(points)
    track = FaceTrack(10, writer.close(), ~np.isnan(points[:, 0, 0]))

    smoothed = smooth_track(track, folder=RowFolder(tmp_path))
    poses, shapes = _whole_track_smoothing(points)
    assert np.array_equal(smoothed.found, ~np.isnan(shapes[:, 0, 0]))
    assert np.array_equal(smoothed.poses, poses, equal_nan=True)
    assert np.array_equal(smoothed.shapes[:], shapes, equal_nan=True)
    assert smoothed.found[[5, 900, 901]].all() and not smoothed.found[[1200, n - 1]].any()
