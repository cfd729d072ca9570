"""Reading mediapipe's landmark lists into pixel coordinates: off the wire format where it is
laid out as the face mesh lays it out, field by field otherwise; the same numbers either way."""

from __future__ import annotations

import numpy as np
from mediapipe.framework.formats import landmark_pb2
from numpy.typing import NDArray

from chamelaion.engine.faces import _pixels


def _fieldwise(
    face: landmark_pb2.NormalizedLandmarkList, width: int, height: int
) -> NDArray[np.float32]:
    return np.array([(p.x * width, p.y * height) for p in face.landmark], dtype=np.float32)


def _landmarks(count: int, seed: int, **extra: float) -> landmark_pb2.NormalizedLandmarkList:
    rng = np.random.default_rng(seed)
    face = landmark_pb2.NormalizedLandmarkList()
    for x, y, z in rng.uniform(-0.2, 1.2, (count, 3)):
        face.landmark.add(x=x, y=y, z=z, **extra)
    return face


def test_the_face_mesh_layout_is_read_off_the_wire_to_the_same_numbers() -> None:
    face = _landmarks(478, 0)
    face.landmark[5].z = 0.0  # set to zero is still written (proto2): the layout holds
    assert len(face.SerializeToString()) == 17 * 478
    for width, height in [(1280, 720), (641, 359)]:
        got = _pixels(face, width, height)
        assert got.dtype == np.float32 and got.shape == (478, 2)
        assert np.array_equal(got, _fieldwise(face, width, height))


def test_another_layout_is_read_field_by_field() -> None:
    face = _landmarks(478, 1, visibility=0.5)  # 5 more bytes a landmark
    assert np.array_equal(_pixels(face, 1920, 1080), _fieldwise(face, 1920, 1080))
    empty = landmark_pb2.NormalizedLandmarkList()
    assert _pixels(empty, 1920, 1080).size == 0
