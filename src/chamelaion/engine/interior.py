"""The inside of an opened mouth: teeth, tongue and the dark cavity, drawn where the lips part.

When the target opens a mouth wider than the source frame has it, there are no real pixels for
what the lips uncover, so they are synthesised: upper teeth fixed to the skull just below where
the lips meet at rest, lower teeth that ride with the jaw, a tongue low in the cavity once the
jaw is well down, and shading that darkens towards the corners and the back. Everything is a
function of mouth coordinates (see `geometry.MouthFrame`), evaluated per pixel over the
mouth's bounding box only, with edges anti-aliased over one pixel so the teeth stay sharp.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chamelaion.engine.articulation import UPPER_LIP_SHARE
from chamelaion.engine.geometry import MouthFrame
from chamelaion.engine.warp import bounding_box, coverage

# Tooth boundaries along the mouth (u), from the middle outwards: centrals, laterals, canines.
_UPPER_TOOTH_EDGES = (0.0, 0.30, 0.52, 0.70, 0.84)
_LOWER_TOOTH_EDGES = (0.0, 0.18, 0.36, 0.54, 0.70)
_TOOTH_RGB = np.array([236.0, 230.0, 214.0])
_CAVITY_RGB = np.array([58.0, 22.0, 24.0])
_TONGUE_RGB = np.array([150.0, 66.0, 68.0])


@dataclass(frozen=True)
class MouthLighting:
    """Colours scaled to the face's own light, so teeth never glow in a dim shot."""

    tooth: NDArray[Any]
    cavity: NDArray[Any]
    tongue: NDArray[Any]

    @classmethod
    def from_skin(cls, skin_rgb: NDArray[Any]) -> MouthLighting:
        luma = float(skin_rgb @ np.array([0.299, 0.587, 0.114]))
        light = float(np.clip(luma / 170.0, 0.35, 1.05))
        tint = skin_rgb / max(float(skin_rgb.mean()), 1.0)
        tooth = _TOOTH_RGB * light * (0.9 + 0.1 * tint)
        return cls(np.clip(tooth, 0, 255), _CAVITY_RGB * light, _TONGUE_RGB * light)


def _smoothstep(edge: NDArray[Any] | float, x: NDArray[Any], width: float) -> NDArray[Any]:
    """0 below `edge`, 1 above, ramping over `width` (anti-aliasing)."""
    return np.clip((x - edge) / width + 0.5, 0.0, 1.0)


def draw_interior(
    image: NDArray[Any],
    inner_polygon: NDArray[Any],
    frame: MouthFrame,
    upper_lip: tuple[NDArray[Any], NDArray[Any]],
    drop: float,
    lighting: MouthLighting,
) -> None:
    """Paint the mouth interior into `image` (RGB uint8, modified in place) inside `inner_polygon`.

    `frame` is the target mouth frame in `image` pixels, `upper_lip` the target inner upper lip
    as (u, v) samples, `drop` the jaw drop in mouth units (as in `articulation.articulate`).
    """
    box = bounding_box(inner_polygon, image.shape[1], image.shape[0], margin=1)
    if box is None:
        return
    x0, y0, x1, y1 = box
    alpha = coverage(inner_polygon - [x0, y0], x1 - x0, y1 - y0)
    if alpha.max() <= 0:
        return

    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    u, v = frame.to_local(np.stack([xs.ravel(), ys.ravel()], axis=1))
    u, v = u.reshape(xs.shape), v.reshape(xs.shape)
    pixel = 1.0 / frame.half_width  # one pixel in mouth units
    au = np.abs(u)
    lip_u, lip_v = upper_lip
    upper = np.interp(u, lip_u, lip_v)  # target inner upper lip
    rest_seam = upper + UPPER_LIP_SHARE * drop * (1 - np.clip(u, -1, 1) ** 2)

    colour = np.empty((*xs.shape, 3), np.float32)
    depth = np.clip((v - upper) / max(drop, 0.15), 0.0, 1.5)
    colour[:] = lighting.cavity * (1.0 - 0.35 * np.clip(depth, 0, 1))[..., None]

    # Tongue: a soft mound low in the cavity when the jaw is well open.
    if drop > 0.25:
        tongue_top = rest_seam + drop * (0.55 + 0.25 * (au / 0.8) ** 2)
        tongue = _smoothstep(tongue_top, v, 3 * pixel) * (au < 0.85)
        colour += (lighting.tongue - colour) * tongue[..., None] * 0.85

    # Lower teeth ride with the jaw; only their tops show.
    lower_top = rest_seam + drop * 0.92 - 0.05
    lower_teeth = _smoothstep(lower_top, v, pixel) * _teeth_columns(au, _LOWER_TOOTH_EDGES, pixel)
    lower_shade = (0.78 - 0.5 * (au / 0.7) ** 2)[..., None]
    colour += (lighting.tooth * lower_shade - colour) * lower_teeth[..., None]

    # Upper teeth hang from the skull to just below where the lips meet at rest.
    upper_edge = rest_seam + 0.11
    hang = 1.0 - _smoothstep(upper_edge, v, pixel)
    upper_teeth = hang * _teeth_columns(au, _UPPER_TOOTH_EDGES, pixel)
    gum_to_edge = np.clip((v - upper) / 0.2, 0.0, 1.0)
    upper_shade = ((0.97 - 0.55 * (au / 0.84) ** 2) * (0.82 + 0.18 * gum_to_edge))[..., None]
    colour += (lighting.tooth * upper_shade - colour) * upper_teeth[..., None]

    # The lips shade what is just inside them.
    lip_shadow = np.clip((v - upper) / 0.08, 0.0, 1.0) * 0.35 + 0.65
    colour *= lip_shadow[..., None]

    region = image[y0:y1, x0:x1].astype(np.float32)
    blended = region + (colour - region) * alpha[..., None]
    image[y0:y1, x0:x1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def _teeth_columns(au: NDArray[Any], edges: tuple[float, ...], pixel: float) -> NDArray[Any]:
    """Coverage and shading of teeth across the mouth: each tooth rounded (bright in its middle,
    a little darker at its sides, a faint seam between neighbours), none past the last edge."""
    coverage = 1.0 - _smoothstep(edges[-1], au, 2 * pixel)
    shade = np.ones_like(au)
    for left, right in itertools.pairwise(edges):
        inside = (au >= left) & (au < right)
        t = (au - left) / (right - left)
        shade = np.where(inside, 0.86 + 0.14 * np.sin(np.pi * t), shade)
        seam = np.clip(np.abs(au - left) / max(1.2 * pixel, 0.015), 0.0, 1.0)
        shade = shade * (0.8 + 0.2 * seam)
    teeth: NDArray[Any] = coverage * shade
    return teeth
