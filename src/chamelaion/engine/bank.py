"""The mouth bank: real mouth interiors from the same video, for openings the target needs.

During analysis, whenever a face's mouth is open, a small crop of it is kept in a canonical mouth
frame (corners level, fixed width), with its inner-lip contour and opening. At most one crop per
opening bin is kept, the sharpest, so memory stays a few hundred kilobytes whatever the length.
At render time the crop whose opening is nearest the target's is warped into the target's
inner-lip contour and colour-matched to the frame. Teeth, tongue and shadows are then the
speaker's own; where the video never shows an open mouth, `interior.draw_interior` is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from chamelaion.engine.faces import (
    INNER_LOWER_LIP,
    INNER_UPPER_LIP,
    OUTER_LOWER_LIP,
    OUTER_UPPER_LIP,
)
from chamelaion.engine.geometry import inner_gap, mouth_frame
from chamelaion.engine.warp import bounding_box, coverage, warp_map

CROP_WIDTH, CROP_HEIGHT = 160, 112
_CROP_HALF_WIDTH = 56.0  # pixels from the mouth centre to a corner, in the crop
_CROP_CENTRE = (CROP_WIDTH / 2, CROP_HEIGHT * 0.42)
MIN_OPENING = 0.06
BIN_WIDTH = 0.03
MAX_STRETCH = 1.5  # a sample serves openings up to this many times its own
INNER_CONTOUR = (*INNER_UPPER_LIP, *INNER_LOWER_LIP[-2:0:-1])
_LIP_RING = (*OUTER_UPPER_LIP, *OUTER_LOWER_LIP[-2:0:-1])
_TYPICAL_LIP_RGB = np.array([160.0, 100.0, 100.0])


@dataclass(frozen=True)
class MouthSample:
    opening: float
    crop: NDArray[Any]  # (CROP_HEIGHT, CROP_WIDTH, 3) uint8, canonical mouth frame
    contour: NDArray[Any]  # inner-lip contour in crop pixels
    lip_colour: NDArray[Any]  # mean RGB of the lips, for colour matching
    sharpness: float


def to_crop_matrix(landmarks: NDArray[Any]) -> NDArray[Any]:
    """The 2x3 similarity from frame pixels to the canonical mouth crop."""
    frame = mouth_frame(landmarks)
    scale = _CROP_HALF_WIDTH / frame.half_width
    c, s = frame.along * scale
    rot = np.array([[c, s], [-s, c]])
    shift = np.array(_CROP_CENTRE) - rot @ frame.center
    return np.hstack([rot, shift[:, None]])


def lip_colour(image: NDArray[Any], landmarks: NDArray[Any]) -> NDArray[Any]:
    """Mean colour between the outer and inner lip contours."""
    box = bounding_box(landmarks[list(_LIP_RING)], image.shape[1], image.shape[0])
    if box is None:
        return _TYPICAL_LIP_RGB
    x0, y0, x1, y1 = box
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round(landmarks[list(_LIP_RING)] - [x0, y0]).astype(np.int32)], (1,))
    cv2.fillPoly(mask, [np.round(landmarks[list(INNER_CONTOUR)] - [x0, y0]).astype(np.int32)], (0,))
    pixels = image[y0:y1, x0:x1][mask > 0]
    return pixels.mean(axis=0) if len(pixels) else _TYPICAL_LIP_RGB


@dataclass
class MouthBank:
    """Open-mouth samples of one face, one per opening bin."""

    samples: dict[int, MouthSample] = field(default_factory=dict)

    def offer(self, image: NDArray[Any], landmarks: NDArray[Any]) -> None:
        opening = inner_gap(landmarks)
        if opening < MIN_OPENING:
            return
        matrix = to_crop_matrix(landmarks)
        if matrix[0, 0] ** 2 + matrix[0, 1] ** 2 > 9.0:
            return  # a mouth under a third of the crop's size: too small to be worth enlarging
        crop = cv2.warpAffine(image, matrix, (CROP_WIDTH, CROP_HEIGHT), flags=cv2.INTER_AREA,
                              borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        contour = landmarks[list(INNER_CONTOUR)] @ matrix[:, :2].T + matrix[:, 2]
        sharpness = float(cv2.Laplacian(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), cv2.CV_32F).var())
        key = int(opening / BIN_WIDTH)
        held = self.samples.get(key)
        if held is None or sharpness > held.sharpness:
            self.samples[key] = MouthSample(
                opening, crop, contour.astype(np.float32), lip_colour(image, landmarks), sharpness
            )

    def nearest(self, opening: float, previous: MouthSample | None = None) -> MouthSample | None:
        """The sample with the nearest opening, or None if none can be stretched that far
        (teeth stretched tall look wrong; a drawn interior looks better then). The previous
        sample is kept while it is close enough: switching every frame makes teeth flicker."""
        if previous is not None and abs(previous.opening - opening) < BIN_WIDTH * 1.5:
            return previous
        usable = [s for s in self.samples.values() if opening <= MAX_STRETCH * s.opening + 0.03]
        if not usable:
            return None
        return min(usable, key=lambda s: abs(s.opening - opening))

    def merge(self, other: MouthBank) -> None:
        """Take `other`'s samples where they are sharper than this bank's, bin by bin."""
        for key, sample in other.samples.items():
            held = self.samples.get(key)
            if held is None or sample.sharpness > held.sharpness:
                self.samples[key] = sample

    def __len__(self) -> int:
        return len(self.samples)


def paste_sample(
    image: NDArray[Any],
    target_contour: NDArray[Any],
    sample: MouthSample,
    frame_lip_colour: NDArray[Any],
) -> None:
    """Warp `sample`'s interior into `target_contour` (image pixels) and blend it in place.

    The warp is a fan of triangles from each contour's centre, so the sample's lip edges land on
    the target's lip edges and what lies between stretches to fit.
    """
    box = bounding_box(target_contour, image.shape[1], image.shape[0], margin=1)
    if box is None:
        return
    x0, y0, x1, y1 = box
    dst = np.vstack([target_contour, target_contour.mean(axis=0)]) - [x0, y0]
    src = np.vstack([sample.contour, sample.contour.mean(axis=0)])
    n = len(target_contour)
    fan = np.array([[i, (i + 1) % n, n] for i in range(n)])
    map_x, map_y = warp_map(src, dst, fan, x1 - x0, y1 - y0)
    warped = cv2.remap(sample.crop, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    gain = np.clip(frame_lip_colour / np.maximum(sample.lip_colour, 1.0), 0.6, 1.6)
    colour = warped.astype(np.float32) * gain.astype(np.float32)
    alpha = coverage(dst[:n], x1 - x0, y1 - y0)
    region = image[y0:y1, x0:x1].astype(np.float32)
    blended = region + (colour - region) * alpha[..., None]
    image[y0:y1, x0:x1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
