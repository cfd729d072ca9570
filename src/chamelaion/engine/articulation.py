"""The articulation model: how a face's lower landmarks move when the mouth takes a new shape.

Works in a face's canonical coordinates (see `faces.PoseTrack`) and, within them, in a mouth
frame: origin between the lip corners, `u` along the corners (±1 at the corners), `v` down,
one unit being half the mouth's width. A target shape is reached from the *current* shape in
three steps, each a smooth displacement of every lower-face landmark:

1. close: the inner lips meet where they are (the lower lip and jaw rise, the upper lip drops
   a little), undoing whatever the source mouth was doing in this frame;
2. width: the mouth's width is set to the speaker's resting width times (1 + spread), the
   cheeks beside the corners following and the effect fading away from the mouth;
3. open: the jaw drops; the lower lip and the chin move with it, the corners by a third as
   much, the upper lip rises slightly.

Starting from the current shape rather than a fixed template keeps the face's own expression,
head turn and perspective: when source and target agree, nothing moves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from chamelaion.engine.faces import INNER_LOWER_LIP, INNER_UPPER_LIP
from chamelaion.engine.geometry import MouthFrame, mouth_frame

_UPPER = list(INNER_UPPER_LIP)
_LOWER = list(INNER_LOWER_LIP)
UPPER_LIP_SHARE = 0.2  # of a gap change taken by the upper lip; the jaw takes the rest
CORNER_SHARE = 0.3  # of the jaw drop the corners follow


def _lip_profile(
    shape: NDArray[Any], frame: MouthFrame
) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    """The inner lips as functions of u: (u grid, v of upper inner lip, v of lower inner lip)."""
    u_up, v_up = frame.to_local(shape[_UPPER])
    u_lo, v_lo = frame.to_local(shape[_LOWER])
    grid = np.linspace(-1.0, 1.0, 41)
    upper = np.interp(grid, *_sorted(u_up, v_up))
    lower = np.interp(grid, *_sorted(u_lo, v_lo))
    return grid, upper, lower


def _sorted(u: NDArray[Any], v: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    order = np.argsort(u)
    return u[order], v[order]


def jaw_drop(opening: float) -> float:
    """How far the jaw drops, in mouth units, for an inner-lip gap of `opening` mouth widths
    (the upper lip rises by its share meanwhile)."""
    return 2.0 * opening / (1.0 + UPPER_LIP_SHARE)


def articulate(
    shape: NDArray[Any], opening: float, spread: float, rest_width: float
) -> NDArray[Any]:
    """Move `shape` (canonical landmarks, current frame) to the target mouth shape."""
    frame = mouth_frame(shape)
    u, v = frame.to_local(shape)
    grid, upper, lower = _lip_profile(shape, frame)
    uc = np.clip(u, -1.0, 1.0)
    gap = np.maximum(np.interp(uc, grid, lower - upper), 0.0)
    seam = np.interp(uc, grid, (upper + lower) / 2)
    below = v > seam
    beyond = np.maximum(np.abs(u) - 1.0, 0.0)
    corner_fade = np.exp(-((beyond / 0.7) ** 2))

    # How much of a jaw movement each point follows (lower side), or of an upper-lip movement.
    lip_weight = 1.0 - (1.0 - CORNER_SHARE) * uc**2
    jaw_weight = 0.95 * np.exp(-((np.maximum(np.abs(u) - 0.8, 0.0) / 1.2) ** 2))
    chin_blend = np.clip((v - seam - 0.45) / 0.5, 0.0, 1.0)
    lower_weight = np.where(
        np.abs(u) <= 1.0,
        (1 - chin_blend) * lip_weight + chin_blend * jaw_weight,
        (1 - chin_blend) * CORNER_SHARE * corner_fade + chin_blend * jaw_weight,
    )
    above_fade = np.exp(-((np.maximum(seam - v - 0.55, 0.0) / 0.45) ** 2))
    upper_weight = (
        np.where(
            np.abs(u) <= 1.0,
            -UPPER_LIP_SHARE * (1 - uc**2) + CORNER_SHARE * uc**2,
            CORNER_SHARE * corner_fade,
        )
        * above_fade
    )

    # 1. Close: at each u the lower lip rises by its share of the local gap, the upper lip drops
    # by the rest. The chin rises only half as much: an open source mouth is as often lips
    # parted over closed teeth (a smile) as a dropped jaw.
    inside = np.where(np.abs(u) <= 1.0, 1.0, corner_fade)
    gap_middle = float(np.interp(0.0, grid, lower - upper))
    rise = (1 - chin_blend) * gap * inside + chin_blend * 0.5 * max(gap_middle, 0.0) * jaw_weight
    dv = np.where(below, -(1 - UPPER_LIP_SHARE) * rise, UPPER_LIP_SHARE * gap * inside * above_fade)
    # 2. Width: scale along the mouth axis, fading beyond the corners and away from the lips.
    scale = rest_width * (1.0 + spread) / max(frame.half_width * 2, 1e-6) - 1.0
    v_fade = np.exp(-(((v - seam) / 1.4) ** 2))
    du = scale * np.where(np.abs(u) <= 1.0, u, np.sign(u) * np.exp(-((beyond / 0.8) ** 2))) * v_fade
    # 3. Open: the jaw drops so that the gap at the middle is `opening` times the mouth width.
    dv = dv + jaw_drop(opening) * np.where(below, lower_weight, upper_weight)
    articulated: NDArray[Any] = shape + frame.to_global(du, dv)
    return articulated
