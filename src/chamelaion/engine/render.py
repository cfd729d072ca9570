"""Rendering: re-shape the lower face of one frame from its tracked landmarks to target ones.

A piecewise-affine warp over a triangulation of the lower face's landmarks, closed by a fixed
ring of points around the jaw and under the nose: the ring does not move, so the warp fades to
the identity there and every pixel outside the ring is the source's, bit for bit. Inside, each
target triangle takes its pixels from its source triangle. The mouth opening itself is not part
of the mesh: where the target's lips part, `interior.draw_interior` paints teeth and cavity.

`MouthRenderer` is the interface a different renderer (a neural one, say) would implement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy.spatial import Delaunay

from chamelaion.engine.articulation import articulate
from chamelaion.engine.bank import MouthBank, MouthSample, lip_colour, paste_sample
from chamelaion.engine.faces import (
    INNER_LOWER_LIP,
    INNER_UPPER_LIP,
    JAWLINE,
    MESH_POINTS,
    NOSE_BOTTOM,
    OUTER_LOWER_LIP,
    OUTER_UPPER_LIP,
    apply_affine,
)
from chamelaion.engine.geometry import mouth_frame
from chamelaion.engine.interior import MouthLighting, draw_interior
from chamelaion.engine.warp import bounding_box, warp_map

INNER_POLYGON = (*INNER_UPPER_LIP, *INNER_LOWER_LIP[-2:0:-1])
LIP_CONTOURS = (*OUTER_UPPER_LIP, *OUTER_LOWER_LIP, *INNER_UPPER_LIP, *INNER_LOWER_LIP)
COARSE_STEP = 3  # pixels between warp-map samples away from the lips
RING_MARGIN = 0.14  # eye spans between the jawline and the fixed ring
CHIN_MARGIN = 0.26  # extra margin straight below the chin


@dataclass(frozen=True)
class WarpMesh:
    """The lower-face triangulation of one face track, in canonical coordinates."""

    landmarks: NDArray[Any]  # (K,) landmark indices that move
    ring: NDArray[Any]  # (R, 2) canonical positions of the fixed border
    triangles: NDArray[Any]  # (T, 3) indices into [landmarks..., ring...]
    lips: NDArray[Any]  # indices into [landmarks...] of the lip contours

    def region(self, pose: NDArray[Any]) -> NDArray[Any]:
        """The ring as a polygon in frame pixels: outside it, a frame is left untouched."""
        return apply_affine(pose, self.ring)


def build_mesh(rest: NDArray[Any]) -> WarpMesh:
    """Triangulate the lower face of a canonical `rest` shape (a typical frame of the track)."""
    nose_y = rest[NOSE_BOTTOM, 1]
    top = nose_y - 0.04
    jaw = [i for i in JAWLINE if rest[i, 1] > top + 0.02]
    jaw_points = rest[jaw]
    centre = np.array([rest[jaw, 0].mean(), top])
    outward = jaw_points - centre
    outward /= np.linalg.norm(outward, axis=1, keepdims=True)
    # Wider below the chin, which travels furthest when the jaw drops.
    margin = RING_MARGIN + CHIN_MARGIN * np.maximum(outward[:, 1], 0.0)
    ring_jaw = jaw_points + outward * margin[:, None]
    xs = np.linspace(ring_jaw[-1, 0], ring_jaw[0, 0], 9)[1:-1]
    ring_top = np.stack([xs, np.full_like(xs, top)], axis=1)
    ring_jaw[[0, -1], 1] = np.minimum(ring_jaw[[0, -1], 1], top)
    ring = np.concatenate([ring_jaw, ring_top])

    inside = _inside(rest[:MESH_POINTS], ring)
    landmarks = np.array(
        sorted(set(np.flatnonzero(inside & (rest[:MESH_POINTS, 1] > top + 0.02))) | set(jaw))
    )
    # Triangulate an opened mouth so the inner lips are well apart, then drop the triangles
    # that fill the opening: the interior is drawn, not warped.
    opened = articulate(rest, opening=0.3, spread=0.0, rest_width=_width(rest))
    points = np.concatenate([opened[landmarks], ring])
    triangles = Delaunay(points).simplices
    centroids = points[triangles].mean(axis=1)
    keep = _inside(centroids, ring) & ~_inside(centroids, opened[list(INNER_POLYGON)])
    lips = np.flatnonzero(np.isin(landmarks, LIP_CONTOURS))
    return WarpMesh(landmarks, ring, triangles[keep], lips)


def _width(shape: NDArray[Any]) -> float:
    return mouth_frame(shape).half_width * 2


def _inside(points: NDArray[Any], polygon: NDArray[Any]) -> NDArray[Any]:
    contour = polygon.astype(np.float32).reshape(-1, 1, 2)
    return np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), False) > 0
                     for x, y in points])  # fmt: skip


def _face_map(
    src: NDArray[Any], dst: NDArray[Any], mesh: WarpMesh, width: int, height: int
) -> tuple[NDArray[Any], NDArray[Any]]:
    """The warp map of the lower face: computed on a coarse grid, which is exact inside each
    triangle, except around the lips, where the map tears (lips closing over a gap, or opening
    one) and is computed at every pixel."""
    map_x, map_y = warp_map(src, dst, mesh.triangles, width, height, step=COARSE_STEP)
    lips = np.concatenate([src[mesh.lips], dst[mesh.lips]])
    box = bounding_box(lips, width, height, margin=2 * COARSE_STEP)
    if box is not None:
        lx0, ly0, lx1, ly1 = box
        corners = dst[mesh.triangles]
        near = (corners[..., 0].max(axis=1) >= lx0) & (corners[..., 0].min(axis=1) <= lx1)
        near &= (corners[..., 1].max(axis=1) >= ly0) & (corners[..., 1].min(axis=1) <= ly1)
        exact_x, exact_y = warp_map(
            src, dst, mesh.triangles[near], lx1 - lx0, ly1 - ly0, offset=(lx0, ly0)
        )
        map_x[ly0:ly1, lx0:lx1] = exact_x
        map_y[ly0:ly1, lx0:lx1] = exact_y
    return map_x, map_y


class MouthRenderer(Protocol):
    """Re-draws one face's lower face in a frame, given where its landmarks are and where the
    target mouth shape puts them. The pipeline holds one per face track."""

    def render(
        self, frame: NDArray[Any], source: NDArray[Any], target: NDArray[Any], pose: NDArray[Any],
        drop: float, opening: float,
    ) -> None: ...  # fmt: skip

    def follow(self, opening: float) -> None:
        """Advance what carries from one frame to the next as `render` would at this opening,
        without drawing: a segment rendered on its own first follows the frames before it, so
        it draws exactly what a whole-job render draws there. Following an opening twice is
        following it once, so `follow` then `render` at one opening draws as `render` alone
        (the render pass advances the renderer in frame order and draws with copies of it on
        other threads)."""


@dataclass
class WarpRenderer:
    """The landmark-driven renderer: piecewise-affine warp, then the mouth interior from the
    face's mouth bank (real pixels) or, if the video never showed this mouth open, drawn."""

    mesh: WarpMesh
    lighting: MouthLighting
    bank: MouthBank | None = None
    _sample: MouthSample | None = None

    def render(
        self, frame: NDArray[Any], source: NDArray[Any], target: NDArray[Any], pose: NDArray[Any],
        drop: float, opening: float,
    ) -> None:  # fmt: skip
        """Re-shape `frame` (RGB, in place) so the landmarks at `source` move to `target`.

        `source` and `target` are full (478, 2) landmark sets in frame pixels, `pose` the
        canonical-to-frame transform, `drop` the target jaw drop in mouth units and `opening`
        the target inner-lip gap over mouth width.
        """
        ring = self.mesh.region(pose)
        src = np.concatenate([source[self.mesh.landmarks], ring])
        dst = np.concatenate([target[self.mesh.landmarks], ring])
        h, w = frame.shape[:2]
        bounds = bounding_box(ring, w, h)
        if bounds is None:
            return
        x0, y0, x1, y1 = bounds
        origin = np.array([x0, y0], np.float64)
        map_x, map_y = _face_map(src - origin, dst - origin, self.mesh, x1 - x0, y1 - y0)
        box = frame[y0:y1, x0:x1]
        warped = cv2.remap(box, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # Outside the ring every pixel stays the source's, exactly (copied in place, `warped`
        # having the box's size and type; indexing both with a boolean mask cost more than the
        # remap).
        outside = np.ones(map_x.shape, np.uint8)
        cv2.fillPoly(outside, [np.round(ring - origin).astype(np.int32)], (0,))
        cv2.copyTo(box, outside, warped)
        local = target - origin
        inner = local[list(INNER_POLYGON)]
        self.follow(opening)
        if self._sample is not None:
            paste_sample(warped, inner, self._sample, lip_colour(warped, local))
        else:
            mouth = mouth_frame(local)
            lip_u, lip_v = mouth.to_local(local[list(INNER_UPPER_LIP)])
            order = np.argsort(lip_u)
            draw_interior(warped, inner, mouth, (lip_u[order], lip_v[order]), drop, self.lighting)
        frame[y0:y1, x0:x1] = warped

    def follow(self, opening: float) -> None:
        """The mouth sample is kept while the opening stays close to it (no flicker)."""
        self._sample = self.bank.nearest(opening, self._sample) if self.bank else None
