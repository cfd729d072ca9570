"""Faces: per-frame landmarks, association into tracks, and zero-phase smoothing.

Landmarks come from mediapipe's face mesh (478 points with the refined lips and irises), whose
models ship inside the mediapipe wheel. Each frame's faces are linked to the previous frame's by
overlap into tracks; the whole video is known before rendering, so a track is smoothed with a
zero-phase filter (no lag) after the fact: the head's rigid motion and the face's shape are
smoothed separately, so the head follows quick turns while the landmarks lose their jitter.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter1d

from chamelaion.engine.rows import CHUNK_ROWS, RowFile, RowFolder

LANDMARK_COUNT = 478
MESH_POINTS = 468  # the mesh proper; the refined irises are points 468-477

# Landmark indices (mediapipe face mesh topology).
# Lip contours run from the subject's right corner to the left corner.
OUTER_UPPER_LIP = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
OUTER_LOWER_LIP = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
INNER_UPPER_LIP = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
INNER_LOWER_LIP = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
MOUTH_CORNERS = (61, 291)
INNER_MOUTH_CORNERS = (78, 308)
INNER_LIP_CENTER = (13, 14)
# The face outline below the cheekbones, from one side over the chin to the other.
JAWLINE = (234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397,
           288, 361, 323, 454)  # fmt: skip
NOSE_BOTTOM = 2
CHIN = 152
# Points that move only with the head (eye corners, nose bridge, forehead, temples): the rigid
# pose of a frame is fitted to these.
RIGID_POINTS = (33, 133, 362, 263, 168, 6, 197, 195, 10, 151, 9, 8, 127, 356, 70, 300)
EYE_OUTER_CORNERS = (33, 263)


@dataclass(frozen=True)
class FaceBox:
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def area(self) -> float:
        return max(0.0, self.x1 - self.x0) * max(0.0, self.y1 - self.y0)

    def iou(self, other: FaceBox) -> float:
        ix = max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


def box_of(points: NDArray[Any]) -> FaceBox:
    return FaceBox(*points.min(axis=0), *points.max(axis=0))


def load_face_mesh() -> None:
    """Load mediapipe, which `LandmarkDetector` needs: about a CPU-second (much of it the
    plotting library its drawing helpers import), worth doing ahead of the scan where a core
    would otherwise be idle. Loading it again costs nothing."""
    import mediapipe  # noqa: F401


class LandmarkDetector:
    """mediapipe's face mesh in video mode: landmarks of up to `max_faces` faces per frame.

    Video mode tracks faces from frame to frame on the crop around each face's last landmarks,
    and runs its face detector on the whole frame only while it tracks fewer faces than it is
    allowed: asked for four faces in a one-face video, it would search the whole frame on
    every frame, a third of its cost. So the mesh is asked for as many faces as are on screen,
    and a face detector looks for new ones every `look_every` frames and on the first frame of
    each shot (`new_shot`); a mesh for more (or fewer) faces takes over when the count changes.
    It must see the frames in order. Frames larger than `analysis_side` on their long side are
    downscaled first: the mesh model works on a 192-pixel crop, so the full picture adds cost
    and no precision.
    """

    def __init__(self, max_faces: int = 1, analysis_side: int = 1280, look_every: int = 10) -> None:
        import mediapipe as mp

        self._solutions = mp.solutions
        self.max_faces = max_faces
        self.analysis_side = analysis_side
        self.look_every = look_every
        self._tracked = max_faces if max_faces == 1 else 1  # faces the mesh is asked for
        self._mesh = self._new_mesh(self._tracked)
        self._finder = (
            None
            if max_faces == 1
            else mp.solutions.face_detection.FaceDetection(
                model_selection=0, min_detection_confidence=0.5
            )
        )
        self._since_look = look_every  # look at the first frame
        self._found = 0  # faces the mesh found in the last frame

    def _new_mesh(self, faces: int) -> Any:
        return self._solutions.face_mesh.FaceMesh(
            static_image_mode=False,
            max_num_faces=faces,
            refine_landmarks=True,
            min_detection_confidence=0.5,
            min_tracking_confidence=0.5,
        )

    def new_shot(self) -> None:
        """The next frame starts a shot: forget the faces tracked and look for faces on it."""
        self._since_look = self.look_every
        self._found = 0
        self._mesh.close()
        self._mesh = self._new_mesh(self._tracked)

    def __call__(self, rgb: NDArray[Any]) -> list[NDArray[Any]]:
        """Landmarks in pixel coordinates of `rgb`, one (478, 2) float32 array per face."""
        import cv2

        h, w = rgb.shape[:2]
        scale = min(1.0, self.analysis_side / max(h, w))
        image = rgb
        if scale < 1.0:
            image = cv2.resize(
                rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA
            )
        if self._finder is not None and self._since_look >= self.look_every:
            self._since_look = 0
            # Fewer faces only when the mesh lost one too: a face the detector misses for a
            # frame (turned, blurred) keeps its track.
            seen = len(self._finder.process(image).detections or ())
            wanted = min(max(seen, self._found, 1), self.max_faces)
            if wanted != self._tracked:
                self._mesh.close()
                self._mesh, self._tracked = self._new_mesh(wanted), wanted
        self._since_look += 1
        found = self._mesh.process(image).multi_face_landmarks or ()
        if len(found) < self._found:
            # A face tracked in the last frame was lost in this one: tracking too many faces
            # would have searched this frame anyway, so search it (the mesh detects when it
            # tracks fewer faces than it may).
            found = self._mesh.process(image).multi_face_landmarks or ()
        self._found = len(found)
        return [_pixels(face, w, h) for face in found]

    def close(self) -> None:
        self._mesh.close()
        if self._finder is not None:
            self._finder.close()

    def __enter__(self) -> LandmarkDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# A landmark of mediapipe's list on the wire: field 1 (the landmark, 15 bytes long), then x, y
# and z as fields 1-3 of 32-bit floats; the list is these 17 bytes per landmark, back to back.
_WIRE_TAGS = {0: 0x0A, 1: 0x0F, 2: 0x0D, 7: 0x15, 12: 0x1D}
_WIRE_XY = [3, 4, 5, 6, 8, 9, 10, 11]


def _pixels(face: Any, width: int, height: int) -> NDArray[np.float32]:
    """(points, 2) pixel coordinates of one face's landmark list (mediapipe's normalised ones).

    Read off the list's wire format, when it is laid out as above (it is for the face mesh:
    no visibility or presence), in a third of the time of reading each of the 478 landmarks'
    fields from Python (about 0.6 ms a face and frame, holding the GIL the other half of the
    scan waits for); the same float32 numbers either way."""
    count = len(face.landmark)
    wire = np.frombuffer(face.SerializeToString(), np.uint8)
    if wire.size == 17 * count:
        rows = wire.reshape(count, 17)
        if all((rows[:, at] == tag).all() for at, tag in _WIRE_TAGS.items()):
            xy = rows[:, _WIRE_XY].copy().view("<f4")
            return (xy.astype(np.float64) * (width, height)).astype(np.float32)
    return np.array([(p.x * width, p.y * height) for p in face.landmark], dtype=np.float32)


@dataclass(eq=False)  # a track is itself: compared by identity, never by its arrays
class FaceTrack:
    """One face followed over consecutive frames: `points[i]` is frame `start + i`, NaN if lost.

    The points are on disk (`rows.RowFile`, read by row, range or index like an array): they grow
    with the video, 3.8 KB a frame. Which frames have the face is kept in memory (`found`)."""

    start: int
    points: RowFile  # (frames, 478, 2) float32
    found: NDArray[np.bool_]  # (frames,) bool: the face was found in the frame
    key: int = 0  # as returned by `TrackBuilder.add` for this track's faces

    @property
    def end(self) -> int:
        """One past the last frame."""
        return self.start + len(self.points)

    def at(self, frame: int) -> NDArray[Any] | None:
        if not self.start <= frame < self.end or not self.found[frame - self.start]:
            return None
        return self.points[frame - self.start]


class TrackBuilder:
    """Links each frame's faces to the open tracks by box overlap (greedy, best IoU first).

    A track survives up to `max_gap` frames without a match; a face matching no track opens a new
    one. Frames are fed in order with `add(frame_index, faces)`, which returns each face's track
    key (the `key` of the `FaceTrack` it ends up in). Each track's points go to a row file in
    `folder` as they come (a temporary folder by default), so memory holds open tracks' last
    boxes only, however long the video.
    """

    def __init__(
        self,
        max_gap: int = 12,
        min_iou: float = 0.3,
        first_key: int = 0,
        folder: RowFolder | None = None,
    ) -> None:
        self.max_gap = max_gap
        self.min_iou = min_iou
        self._folder = folder or RowFolder.temporary()
        self._open: list[_OpenTrack] = []
        self._closed: list[FaceTrack] = []
        self._next_key = first_key

    def add(self, frame: int, faces: Iterable[NDArray[Any]]) -> list[int]:
        faces = list(faces)
        keys = [-1] * len(faces)
        boxes = [box_of(f) for f in faces]
        pairs = sorted(
            ((box.iou(track.box), fi, ti) for fi, box in enumerate(boxes)
             for ti, track in enumerate(self._open)),
            reverse=True,
        )  # fmt: skip
        used_faces: set[int] = set()
        used_tracks: set[int] = set()
        for iou, fi, ti in pairs:
            if iou < self.min_iou or fi in used_faces or ti in used_tracks:
                continue
            used_faces.add(fi)
            used_tracks.add(ti)
            self._open[ti].add(frame, faces[fi], boxes[fi])
            keys[fi] = self._open[ti].key
        still_open = []
        for ti, track in enumerate(self._open):
            if ti in used_tracks or frame - track.last <= self.max_gap:
                still_open.append(track)
            else:
                self._closed.append(track.close())
        self._open = still_open
        for fi, face in enumerate(faces):
            if fi not in used_faces:
                track = _OpenTrack(self._next_key, frame, self._folder)
                track.add(frame, face, boxes[fi])
                self._open.append(track)
                keys[fi] = self._next_key
                self._next_key += 1
        return keys

    def cut(self) -> None:
        """A new shot starts: no face continues across it."""
        self._closed.extend(t.close() for t in self._open)
        self._open = []

    def finish(self) -> list[FaceTrack]:
        tracks = self._closed + [t.close() for t in self._open]
        self._open, self._closed = [], []
        return sorted(tracks, key=lambda t: t.start)


class _OpenTrack:
    """A track still being built: its rows written so far, its last box and frame."""

    def __init__(self, key: int, start: int, folder: RowFolder) -> None:
        self.key = key
        self.start = start
        self.last = start
        self.box = FaceBox(0.0, 0.0, 0.0, 0.0)
        self._rows = folder.writer(f"track-{key}", (LANDMARK_COUNT, 2))
        self._found: list[bool] = []

    def add(self, frame: int, face: NDArray[Any], box: FaceBox) -> None:
        missing = frame - self.start - self._rows.count
        self._rows.append_missing(missing)
        self._found.extend([False] * missing)
        self._rows.append(face)
        self._found.append(True)
        self.box, self.last = box, frame

    def close(self) -> FaceTrack:
        return FaceTrack(self.start, self._rows.close(), np.array(self._found, bool), self.key)


# ----------------------------------------------------------------------------------------------
# Pose: a per-frame similarity transform between the track's canonical face and the frame.


def fit_similarity(src: NDArray[Any], dst: NDArray[Any]) -> NDArray[Any]:
    """The 2x3 similarity (rotation, uniform scale, shift) taking `src` points closest to `dst`."""
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - src_mean, dst - dst_mean
    denom = float((a**2).sum()) or 1.0
    c = float((a * b).sum()) / denom
    s = float((a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]).sum()) / denom
    rot = np.array([[c, -s], [s, c]], dtype=np.float64)
    shift = dst_mean - rot @ src_mean
    return np.hstack([rot, shift[:, None]])


def apply_affine(matrix: NDArray[Any], points: NDArray[Any]) -> NDArray[Any]:
    moved: NDArray[Any] = points @ matrix[:, :2].T + matrix[:, 2]
    return moved


def invert_affine(matrix: NDArray[Any]) -> NDArray[Any]:
    # The 2x2 inverse in closed form: np.linalg.inv is a LAPACK call, which cost more than the
    # rest of the smoothing (once per frame), and far more on a busy machine.
    (a, b), (c, d) = matrix[:, :2]
    rot_inv = np.array([[d, -b], [-c, a]]) / (a * d - b * c)
    return np.hstack([rot_inv, (-rot_inv @ matrix[:, 2])[:, None]])


@dataclass(eq=False)
class PoseTrack:
    """A track split into rigid head pose and pose-free (canonical) shape, both smoothed.

    `poses[i]` maps canonical coordinates to frame `start + i`; `shapes[i]` is the face in
    canonical coordinates, in which the eyes are level and one unit is the distance between the
    outer eye corners. Frames where the face was lost hold NaN. The shapes are on disk (a row
    file, 3.8 KB a frame), the poses (48 bytes a frame) in memory.
    """

    start: int
    poses: NDArray[Any]  # (frames, 2, 3)
    shapes: RowFile  # (frames, 478, 2) float32
    found: NDArray[np.bool_]  # (frames,) bool

    def points(self, i: int) -> NDArray[np.float32]:
        """Smoothed landmarks of track frame i in frame pixel coordinates."""
        return apply_affine(self.poses[i], self.shapes[i]).astype(np.float32)


def canonical_frame(points: NDArray[Any]) -> NDArray[Any]:
    """The similarity mapping frame coordinates to a canonical face: eyes level, unit eye span."""
    left, right = points[EYE_OUTER_CORNERS[0]], points[EYE_OUTER_CORNERS[1]]
    span = right - left
    length = float(np.hypot(*span)) or 1.0
    c, s = span / length
    rot = np.array([[c, s], [-s, c]]) / length
    center = (left + right) / 2
    return np.hstack([rot, (-rot @ center)[:, None]])


def smooth_track(
    track: FaceTrack,
    pose_sigma: float = 1.5,
    shape_sigma: float = 1.0,
    fill_gap: int = 2,
    folder: RowFolder | None = None,
) -> PoseTrack:
    """Zero-phase smoothing of a track, after filling short gaps by interpolation; the smoothed
    shapes go to a row file in `folder` (a temporary one by default).

    Gaps of up to `fill_gap` frames are bridged (a face lost for a frame or two would otherwise
    make its mouth snap back to the source's for that frame); longer gaps stay lost and are
    smoothed as separate runs, so nothing bleeds across them.

    Two passes over the track a chunk at a time, so memory does not grow with its length: the
    poses first (small, kept whole), then the shapes, each chunk read with the filter's reach
    on either side, so every smoothed shape is exactly what filtering the whole run gives.
    """
    gaps = _short_gaps(track.found, fill_gap)
    found = track.found.copy()
    for gap in gaps:
        found[gap] = True
    n = len(found)
    raw_poses = np.full((n, 2, 3), np.nan)
    reference = None
    for first, points in _filled_chunks(track, gaps, 0, n):
        for k in np.flatnonzero(found[first : first + len(points)]):
            if reference is None:
                reference = apply_affine(canonical_frame(points[k]), points[k])[list(RIGID_POINTS)]
            # Refine with all rigid points, not just the eye corners, for a steadier pose.
            raw_poses[first + k] = fit_similarity(reference, points[k][list(RIGID_POINTS)])
    poses = raw_poses.copy()
    reach = int(4.0 * shape_sigma + 0.5) + 1  # gaussian_filter1d's radius (truncate 4), and one
    shapes = (folder or RowFolder.temporary()).writer("shapes", (LANDMARK_COUNT, 2))
    for run in _runs(found):
        shapes.append_missing(run.start - shapes.count)
        poses[run] = _smooth_pose(raw_poses[run], pose_sigma)
        for a in range(run.start, run.stop, CHUNK_ROWS):
            b = min(a + CHUNK_ROWS, run.stop)
            lo, hi = max(run.start, a - reach), min(run.stop, b + reach)
            window = np.empty((hi - lo, LANDMARK_COUNT, 2), np.float32)
            for first, points in _filled_chunks(track, gaps, lo, hi):
                for k, row in enumerate(points):
                    i = first + k
                    window[i - lo] = apply_affine(invert_affine(raw_poses[i]), row)
            smoothed = gaussian_filter1d(
                window, shape_sigma, axis=0, mode="nearest", output=np.float32
            )
            shapes.append(smoothed[a - lo : b - lo])
    shapes.append_missing(n - shapes.count)
    return PoseTrack(track.start, poses, shapes.close(), found)


def _smooth_pose(poses: NDArray[Any], sigma: float) -> NDArray[Any]:
    """Smooth rotation angle, log-scale and shift separately (a matrix average would shear)."""
    angle = np.unwrap(np.arctan2(poses[:, 1, 0], poses[:, 0, 0]))
    log_scale = np.log(np.hypot(poses[:, 0, 0], poses[:, 1, 0]))
    shift = poses[:, :, 2]
    angle = gaussian_filter1d(angle, sigma, mode="nearest")
    log_scale = gaussian_filter1d(log_scale, sigma, mode="nearest")
    shift = gaussian_filter1d(shift, sigma, axis=0, mode="nearest")
    scale = np.exp(log_scale)
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    out = np.empty_like(poses)
    out[:, 0, 0], out[:, 0, 1], out[:, 1, 0], out[:, 1, 1] = c, -s, s, c
    out[:, :, 2] = shift
    return out


def _runs(mask: NDArray[Any]) -> list[slice]:
    """Slices of the consecutive True stretches of `mask`."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [slice(a, b) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _short_gaps(found: NDArray[Any], max_gap: int) -> list[slice]:
    """The gaps of up to `max_gap` frames with the face found on both sides: bridged."""
    return [
        gap
        for gap in _runs(~found)
        if gap.stop - gap.start <= max_gap and gap.start > 0 and gap.stop < len(found)
    ]


def _filled_chunks(
    track: FaceTrack, gaps: list[slice], start: int, stop: int
) -> Iterator[tuple[int, NDArray[Any]]]:
    """The track's points [start, stop) a chunk at a time, the short `gaps` bridged by linear
    interpolation between the frames on either side."""
    starts = np.array([gap.start for gap in gaps], np.int64)
    longest = max((gap.stop - gap.start for gap in gaps), default=0)
    for first, points in track.points.chunks(start, stop):
        last = first + len(points)
        # The gaps are in order: those touching this chunk start at most `longest` before it.
        lo, hi = np.searchsorted(starts, [first - longest, last])
        for gap in gaps[lo:hi]:
            if gap.stop <= first or gap.start >= last:
                continue
            before, after = track.points[gap.start - 1], track.points[gap.stop]
            for k, i in enumerate(range(gap.start, gap.stop), start=1):
                if first <= i < last:
                    w = k / (gap.stop - gap.start + 1)
                    points[i - first] = (1 - w) * before + w * after
        yield first, points
