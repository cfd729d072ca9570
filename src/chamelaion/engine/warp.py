"""Piecewise-affine warping: the map that moves each triangle of a mesh onto its new place.

Used for the lower face (render) and for mouth-bank samples (bank). The map can be computed on
a grid of every `step`-th pixel and upsampled, which is exact within triangles and cheaper.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)


def warp_map(
    src: NDArray[Any],
    dst: NDArray[Any],
    triangles: NDArray[Any],
    width: int,
    height: int,
    step: int = 1,
    offset: tuple[int, int] = (0, 0),
) -> tuple[NDArray[Any], NDArray[Any]]:
    """For each pixel of a `width` x `height` box at `offset` of the output image, where to
    sample the source image.

    `dst` are the mesh vertices in the output image's pixels, `src` the same vertices in the
    source image's pixels, `triangles` (T, 3) vertex indices. Pixels no triangle covers map to
    themselves. Returns (map_x, map_y) for `cv2.remap`. A `step` over 1 is only right for a
    continuous map: upsampling across a tear (lips closing over a gap) would sample the gap.
    """
    grid_w, grid_h = -(-width // step), -(-height // step)
    ids = np.zeros((grid_h, grid_w), np.int32)
    # Grid point j sits at pixel (j + 0.5) * step - 0.5, where cv2.resize expects it.
    corners = np.round(((dst - offset + 0.5) / step - 0.5) * 16).astype(np.int32)[triangles]
    # fillConvexPoly draws the triangle's outline (LINE_8) as well as its inside, and rounds its
    # span on each row outwards: a grid point on a shared edge, or in a seam where two triangles
    # touch without overlapping (closed lips), still belongs to a triangle (the last drawn)
    # instead of falling through to the identity and showing whatever the source had there.
    # (Drawing every outline first with polylines, as this did, changed no grid point: each
    # outline is drawn again by its own fill, after the outlines of the triangles before it.)
    # (Each triangle's corners picked out once: indexing inside the loop cost more than drawing.)
    for k, triangle in enumerate(corners, start=1):
        cv2.fillConvexPoly(ids, triangle, (k,), cv2.LINE_8, shift=4)

    matrices = np.concatenate([IDENTITY[None], triangle_affines(src, dst, triangles)])

    gy = ((np.arange(grid_h, dtype=np.float32) + 0.5) * step - 0.5 + offset[1])[:, None]
    gx = ((np.arange(grid_w, dtype=np.float32) + 0.5) * step - 0.5 + offset[0])[None, :]
    chosen = matrices[ids]
    map_x = chosen[..., 0, 0] * gx + chosen[..., 0, 1] * gy + chosen[..., 0, 2]
    map_y = chosen[..., 1, 0] * gx + chosen[..., 1, 1] * gy + chosen[..., 1, 2]
    if step > 1:
        size = (grid_w * step, grid_h * step)
        map_x = cv2.resize(map_x, size, interpolation=cv2.INTER_LINEAR)[:height, :width]
        map_y = cv2.resize(map_y, size, interpolation=cv2.INTER_LINEAR)[:height, :width]
    return map_x, map_y


def triangle_affines(
    src: NDArray[Any], dst: NDArray[Any], triangles: NDArray[Any]
) -> NDArray[np.float32]:
    """(T, 2, 3) affine maps taking each destination triangle onto its source triangle.

    Solved in closed form (a 2x2 inverse per triangle): a batched general inverse costs a
    LAPACK call per triangle, which dominated the render time. Collapsed triangles (no area,
    so no pixels) get the identity.
    """
    d, s = dst[triangles].astype(np.float64), src[triangles].astype(np.float64)
    e1, e2 = d[:, 1] - d[:, 0], d[:, 2] - d[:, 0]
    f1, f2 = s[:, 1] - s[:, 0], s[:, 2] - s[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    flat = np.abs(det) < 1e-9
    det = np.where(flat, 1.0, det)
    # inverse of E = [e1 e2] (columns), then linear part L = F @ inv(E).
    inv = np.stack([np.stack([e2[:, 1], -e2[:, 0]], 1), np.stack([-e1[:, 1], e1[:, 0]], 1)], 1)
    inv /= det[:, None, None]
    f = np.stack([f1, f2], axis=2)  # columns f1, f2
    linear = f @ inv
    shift = s[:, 0] - np.einsum("tij,tj->ti", linear, d[:, 0])
    out: NDArray[np.float32] = np.concatenate([linear, shift[:, :, None]], axis=2).astype(
        np.float32
    )
    out[flat] = IDENTITY
    return out


def bounding_box(
    points: NDArray[Any], width: int, height: int, margin: int = 0
) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), the pixels covering `points` plus `margin`, clipped to a `width` x
    `height` image; None if fewer than 2x2 pixels are left."""
    x0, y0 = np.floor(points.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(points.max(axis=0)).astype(int) + 1 + margin
    x0, y0, x1, y1 = max(int(x0), 0), max(int(y0), 0), min(int(x1), width), min(int(y1), height)
    return (x0, y0, x1, y1) if x1 - x0 >= 2 and y1 - y0 >= 2 else None


def coverage(
    polygon: NDArray[Any], width: int, height: int, supersample: int = 4
) -> NDArray[np.float32]:
    """Anti-aliased coverage (0..1 float32) of a polygon given in pixels."""
    mask = np.zeros((height * supersample, width * supersample), np.uint8)
    points = np.round(((polygon + 0.5) * supersample - 0.5) * 16).astype(np.int32)
    cv2.fillPoly(mask, [points], (255,), cv2.LINE_8, shift=4)
    small = cv2.resize(mask, (width, height), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / 255.0
