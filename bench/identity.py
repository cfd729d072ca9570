"""How well `engine/identity.py` tells one person from another, on real footage.

    python bench/identity.py [--seconds 3]

Each clip of the footage holds one person; several people appear in more than one clip,
recorded on different occasions (Obama in four, Fei-Fei Li in three, Andrew in two): clips of
one person stand for two shots of one person, clips of different people for two people. Each
clip's first `--seconds` are scanned as the engine scans faces and the longest track's likeness
taken; the two distances (shape, colour) are printed for every pair, grouped, so the thresholds
`SHAPE_MATCH` and `COLOUR_MATCH` can be read against them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from chamelaion.engine import identity, media
from chamelaion.engine.faces import LandmarkDetector, TrackBuilder

FOOTAGE = Path("/work/shared/footage")
CLIPS = {  # clip: person
    "styletalk_Obama_clip1.mp4": "obama",
    "styletalk_Obama_clip2.mp4": "obama",
    "styletalk_Obama_clip3.mp4": "obama",
    "edtalk_uncrop_Obama.mp4": "obama",
    "styletalk_feifeili_clip1.mp4": "feifeili",
    "styletalk_feifeili_clip2_short.mp4": "feifeili",
    "styletalk_feifeili_clip3.mp4": "feifeili",
    "styletalk_andrew_clip_1.mp4": "andrew",
    "styletalk_andrew_clip_2.mp4": "andrew",
    "styletalk_reagan_clip1.mp4": "reagan",
    "styletalk_KristiNoem.mp4": "noem",
    "edtalk_pose_source2.mp4": "congressman",
    "mimictalk_German_20s.mp4": "german",
    "real3dportrait_May_5s.mp4": "may",
    "dfrf_cnn2_25fps.mp4": "cnn",
    "retalking_face_1.mp4": "retalking1",
    "retalking_face_2.mp4": "retalking2",
}


def clip_likeness(path: Path, seconds: float) -> identity.Likeness:
    fps = media.probe(path).fps
    frames = round(seconds * float(fps))
    builder = TrackBuilder()
    pictures: dict[int, NDArray[np.uint8]] = {}
    with LandmarkDetector(max_faces=1) as detect:
        for index, rgb in zip(range(frames), media.read_frames(path, Fraction(fps)), strict=False):
            builder.add(index, detect(rgb))
            pictures[index] = rgb
    track = max(builder.finish(), key=lambda t: int(t.found.sum()))
    wanted = identity.colour_frames(track)
    return identity.likeness(track, {f: pictures[f] for f in wanted})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    likenesses = {
        name: clip_likeness(FOOTAGE / name, args.seconds)
        for name in CLIPS
        if (FOOTAGE / name).exists()
    }
    same: list[tuple[str, str, float, float]] = []
    other: list[tuple[str, str, float, float]] = []
    for a, b in itertools.combinations(likenesses, 2):
        shape, colour = likenesses[a].distances(likenesses[b])
        (same if CLIPS[a] == CLIPS[b] else other).append((a, b, shape, colour))
    for title, pairs in (("one person", same), ("different people", other)):
        print(f"{title}: {len(pairs)} pairs")
        for a, b, shape, colour in sorted(pairs, key=lambda p: p[2]):
            print(f"  shape {shape:.3f} colour {colour:.3f}  {a} / {b}")
    matched_same = sum(
        s <= identity.SHAPE_MATCH and c <= identity.COLOUR_MATCH for *_, s, c in same
    )
    matched_other = sum(
        s <= identity.SHAPE_MATCH and c <= identity.COLOUR_MATCH for *_, s, c in other
    )
    summary = {
        "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": platform.node(),
        "seconds_per_clip": args.seconds,
        "one_person_pairs": len(same),
        "one_person_matched": int(matched_same),
        "different_people_pairs": len(other),
        "different_people_matched": int(matched_other),
        "shape_one_person": [round(min(p[2] for p in same), 3), round(max(p[2] for p in same), 3)],
        "shape_different": [round(min(p[2] for p in other), 3), round(max(p[2] for p in other), 3)],
        "colour_one_person": [round(min(p[3] for p in same), 3), round(max(p[3] for p in same), 3)],
        "colour_different": [
            round(min(p[3] for p in other), 3),
            round(max(p[3] for p in other), 3),
        ],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
