"""Is this face track the same person as that one? Used to follow a pointed-at speaker across
hard cuts, where the tracker starts new tracks (`speaker.pointed_faces`).

A track's likeness has two parts, each read where the face is seen:
- its shape: the median over the track of the face's landmarks in the canonical face frame
  (eyes level, unit eye span), leaving out the mouth and jaw, which move with speech. It tells
  faces of different proportions apart, and a face from its mirror image, but it shifts as the
  head turns.
- its colour: a hue-saturation histogram of the pixels inside the face's landmarks, over a few
  of the track's frames. It tells skin, brows and eyes apart and ignores brightness, but changes
  with the light.
Two tracks are taken for the same person only when both parts agree (`SHAPE_MATCH`,
`COLOUR_MATCH`), and the caller accepts a match only where it is clear: a wrong face animated is
worse than none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from chamelaion.engine.faces import (
    CHIN,
    JAWLINE,
    MESH_POINTS,
    OUTER_LOWER_LIP,
    OUTER_UPPER_LIP,
    FaceTrack,
    apply_affine,
    canonical_frame,
)

# bench/identity.py, real footage, 17 clips of 11 people (several people in more than one clip,
# recorded on other occasions): shape distance one person 0.004-0.124, different people
# 0.029-0.140; colour one person 0.063-0.721 (the light and grading of each recording),
# different people 0.110-0.932. The two overlap a lot, so only near-identical likenesses pass:
# with these thresholds 2 of 10 pairs of one person match (those filmed alike) and none of 126
# pairs of different people (the nearest, shape 0.029 / colour 0.110). Shots within one video
# share the camera and light more than these clips do; still, expect the pointed person to be
# missed in a shot that frames them very differently (a note says so), not someone else taken.
SHAPE_MATCH = 0.02
COLOUR_MATCH = 0.2
FRAMES_FOR_COLOUR = 3

_MOVING = set(JAWLINE) | set(OUTER_UPPER_LIP) | set(OUTER_LOWER_LIP) | {CHIN}
_STILL = np.array([i for i in range(MESH_POINTS) if i not in _MOVING])


@dataclass(frozen=True)
class Likeness:
    shape: NDArray[Any]  # (len(_STILL), 2): median canonical landmarks
    colour: NDArray[Any]  # hue-saturation histogram, sums to 1

    def distances(self, other: Likeness) -> tuple[float, float]:
        """(shape, colour) distances: RMS landmark distance in eye spans; Hellinger distance."""
        shape = float(np.sqrt(((self.shape - other.shape) ** 2).sum(axis=1).mean()))
        colour = float(np.sqrt(max(0.0, 1.0 - np.sqrt(self.colour * other.colour).sum())))
        return shape, colour

    def matches(self, other: Likeness) -> bool:
        shape, colour = self.distances(other)
        return shape <= SHAPE_MATCH and colour <= COLOUR_MATCH


Pictures = Callable[[Sequence[int]], dict[int, NDArray[Any]]]
"""Source frames by index (RGB, display orientation), for the indices asked."""


def colour_frames(track: FaceTrack) -> list[int]:
    """The frames of `track` its colour is read on: spread over the frames it is found in."""
    found = np.flatnonzero(track.found) + track.start
    picks = np.linspace(0, len(found) - 1, FRAMES_FOR_COLOUR + 2)[1:-1].round().astype(int)
    return sorted({int(found[i]) for i in picks})


def likeness(track: FaceTrack, pictures: dict[int, NDArray[Any]]) -> Likeness:
    """The likeness of `track`; `pictures` holds (at least) its `colour_frames`."""
    shapes = [apply_affine(canonical_frame(p), p[_STILL]) for p in track.points[track.found]]
    histogram = np.zeros(16 * 8, np.float64)
    for frame in colour_frames(track):
        points = track.at(frame)
        if points is not None and frame in pictures:
            histogram += _face_histogram(pictures[frame], points)
    total = histogram.sum()
    colour = histogram / total if total > 0 else np.full_like(histogram, 1 / len(histogram))
    return Likeness(np.median(np.array(shapes), axis=0), colour)


def _face_histogram(rgb: NDArray[Any], points: NDArray[Any]) -> NDArray[Any]:
    """Hue (16 bins) by saturation (8 bins) counts of the pixels inside the face's landmarks."""
    hull = cv2.convexHull(np.round(points[:MESH_POINTS]).astype(np.int32))
    x, y, w, h = cv2.boundingRect(hull)
    height, width = rgb.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    if x1 <= x0 or y1 <= y0:
        return np.zeros(16 * 8)
    crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    mask = np.zeros(crop.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, hull - [x0, y0], (255,))
    hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)
    counts = cv2.calcHist([hsv], [0, 1], mask, [16, 8], [0, 180, 0, 256])
    return np.asarray(counts, np.float64).ravel()
