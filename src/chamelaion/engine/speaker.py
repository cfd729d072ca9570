"""Which face to re-animate in each frame.

Max-face: the largest face on screen, with hysteresis, so two faces of similar size do not make
the choice flicker: the current face keeps the role until another is clearly larger
(`SWITCH_RATIO`) for `SWITCH_FRAMES` frames in a row.
"""

from __future__ import annotations

from chamelaion.engine.faces import FaceTrack, box_of

SWITCH_RATIO = 1.25
SWITCH_FRAMES = 5


def choose_faces(
    tracks: list[FaceTrack], frames: int, active_speaker_detection: bool = True
) -> list[FaceTrack | None]:
    """The face to re-animate in each source frame (None where there is no face).

    Active speaker detection is not implemented yet; until it is, both settings use max-face.
    """
    del active_speaker_detection
    return largest_faces(tracks, frames)


def largest_faces(tracks: list[FaceTrack], frames: int) -> list[FaceTrack | None]:
    chosen: list[FaceTrack | None] = [None] * frames
    current: FaceTrack | None = None
    challenger: FaceTrack | None = None
    streak = 0
    for f in range(frames):
        present = [(box_of(p).area, t) for t in tracks if (p := t.at(f)) is not None]
        if not present:
            current, challenger, streak = None, None, 0
            continue
        area_of = {id(t): a for a, t in present}
        largest_area, largest = max(present, key=lambda at: at[0])
        if current is None or id(current) not in area_of:
            current, challenger, streak = largest, None, 0
        elif largest is not current and largest_area > SWITCH_RATIO * area_of[id(current)]:
            streak = streak + 1 if challenger is largest else 1
            challenger = largest
            if streak >= SWITCH_FRAMES:
                current, challenger, streak = largest, None, 0
        else:
            challenger, streak = None, 0
        chosen[f] = current
    return chosen
