"""Mouth geometry: what a face's landmarks say about its mouth, used by every stage that looks
at a mouth (speaker detection, the sync scorer, the audio-to-mouth model's training targets and
speaker adaptation, rendering, the benchmarks).

Two views of the same landmarks:
- a `MouthFrame` per face: origin between the lip corners, `u` along the corners, `v` down, one
  unit being half the mouth's width; articulation and rendering work in it;
- `mouth_params`: a few interpretable numbers per frame in *canonical* units (eyes level, one unit
  being the distance between the outer eye corners), so they compare across frames, head sizes
  and videos: the inner-lip gap, the mouth's width, the jaw's drop and the lips' thickness.
  A raw landmark PCA mixes these with head pose; these do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chamelaion.engine.faces import (
    CHIN,
    EYE_OUTER_CORNERS,
    INNER_LIP_CENTER,
    INNER_LOWER_LIP,
    INNER_UPPER_LIP,
    MOUTH_CORNERS,
    NOSE_BOTTOM,
    OUTER_LOWER_LIP,
    OUTER_UPPER_LIP,
)

# The columns of `mouth_params`, in canonical units (eye spans).
GAP, WIDTH, JAW, LIPS = 0, 1, 2, 3
PARAM_NAMES = ("gap", "width", "jaw", "lips")
_OUTER_LIP_CENTER = (OUTER_UPPER_LIP[5], OUTER_LOWER_LIP[5])


@dataclass(frozen=True)
class MouthFrame:
    center: NDArray[Any]  # (2,)
    along: NDArray[Any]  # unit vector corner to corner
    down: NDArray[Any]  # unit vector perpendicular, pointing to the chin
    half_width: float

    def to_local(self, points: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
        d = points - self.center
        return d @ self.along / self.half_width, d @ self.down / self.half_width

    def to_global(self, du: NDArray[Any], dv: NDArray[Any]) -> NDArray[Any]:
        offsets: NDArray[Any] = (
            du[:, None] * self.along + dv[:, None] * self.down
        ) * self.half_width
        return offsets


def mouth_frame(shape: NDArray[Any]) -> MouthFrame:
    left, right = shape[MOUTH_CORNERS[0]], shape[MOUTH_CORNERS[1]]
    span = right - left
    width = float(np.hypot(*span)) or 1e-6
    along = span / width
    down = np.array([-along[1], along[0]])
    return MouthFrame((left + right) / 2, along, down, width / 2)


def mouth_width(shape: NDArray[Any]) -> float:
    return mouth_frame(shape).half_width * 2


def inner_gap(shape: NDArray[Any]) -> float:
    """Inner-lip gap at the middle of the mouth as a fraction of the mouth's width."""
    frame = mouth_frame(shape)
    _, v_up = frame.to_local(shape[[INNER_UPPER_LIP[5]]])
    _, v_lo = frame.to_local(shape[[INNER_LOWER_LIP[5]]])
    return max(0.0, float(v_lo[0] - v_up[0])) / 2


def mouth_params(landmarks: NDArray[Any]) -> NDArray[Any]:
    """(frames, 4) gap, width, jaw, lips of (frames, 478, 2) landmarks, in eye spans; NaN rows
    where the landmarks are NaN.

    Distances are measured along the face's own axes (eyes level), so a head's roll does not
    leak into them: `gap` is the inner lips' distance at the middle, `width` the corners',
    `jaw` the chin's distance below the bottom of the nose, `lips` the outer lips' height less
    the gap (lips thicken as they round and protrude).
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim == 2:
        points = points[None]
    left, right = points[:, EYE_OUTER_CORNERS[0]], points[:, EYE_OUTER_CORNERS[1]]
    span = right - left
    scale = np.hypot(span[:, 0], span[:, 1])
    scale = np.where(scale > 0, scale, np.nan)
    along = span / scale[:, None]
    down = np.stack([-along[:, 1], along[:, 0]], axis=1)

    def vertical(a: int, b: int) -> NDArray[np.float64]:
        distance: NDArray[np.float64] = (
            np.einsum("ij,ij->i", points[:, b] - points[:, a], down) / scale
        )
        return distance

    corners = points[:, MOUTH_CORNERS[1]] - points[:, MOUTH_CORNERS[0]]
    width = np.hypot(corners[:, 0], corners[:, 1]) / scale
    gap = np.maximum(vertical(*INNER_LIP_CENTER), 0.0)
    jaw = vertical(NOSE_BOTTOM, CHIN)
    lips = vertical(*_OUTER_LIP_CENTER) - gap
    return np.stack([gap, width, jaw, lips], axis=1)
