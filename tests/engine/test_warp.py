"""The warp map's seams: where two triangles touch (closed lips), no pixel falls through to the
identity, which would show whatever the source has there (an open mouth, say)."""

from __future__ import annotations

import numpy as np

from chamelaion.engine.warp import warp_map


def test_a_pixel_row_between_two_triangles_a_hair_apart_belongs_to_one_of_them() -> None:
    # Two triangles, the upper one's bottom edge at y = 9.8, the lower one's top edge at
    # y = 10.2: the row of pixel centres at y = 10 is inside neither, only within half a pixel
    # of both (lips closed over a sub-pixel gap).
    dst = np.array(
        [[2.0, 2.0], [30.0, 2.0], [2.0, 9.8], [30.0, 9.8],
         [2.0, 10.2], [30.0, 10.2], [2.0, 18.0], [30.0, 18.0]]
    )  # fmt: skip
    triangles = np.array([[0, 1, 3], [0, 3, 2], [4, 5, 7], [4, 7, 6]], np.int64)
    # Each lip samples its own place in the source: the upper one 5 px right, the lower 4 left.
    src = dst + np.where(np.arange(8) < 4, 5.0, -4.0)[:, None] * [1.0, 0.0]
    map_x, map_y = warp_map(src, dst, triangles, 32, 20)
    columns = np.arange(3, 30)
    row = 10
    shift = map_x[row, columns] - columns
    # Every pixel of the seam row takes one lip's map, none stays where it is.
    assert np.all(np.isclose(shift, 5.0) | np.isclose(shift, -4.0)), shift
    assert np.allclose(map_y[row, columns], row)
    # Inside each lip, that lip's map; outside both, the identity.
    assert np.allclose(map_x[5, columns] - columns, 5.0)
    assert np.allclose(map_x[15, columns] - columns, -4.0)
    assert np.allclose(map_x[0, :], np.arange(32))
