"""Active speaker detection benchmark: its added cost, and how often it picks the true speaker.

    python bench/speaker.py [--seconds 10]

Fixtures are generated: two faces side by side at 1280x720, one really speaking (lip-synced to
the sound track by the engine itself), the other still and a little larger, so max-face and
active-speaker choices differ; and a scene where the left face speaks first, the right second.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

W, H, FPS = 1280, 720, 25.0


def _side(analysis, frame: int) -> str | None:  # type: ignore[no-untyped-def]
    from chamelaion.engine.faces import box_of

    face = analysis.choice.faces[frame]
    points = None if face is None else face.at(frame)
    if points is None:
        return None
    return "left" if box_of(points).x1 < W / 2 + 40 else "right"


def accuracy(video: Path, truth: list[str]) -> float:
    from chamelaion.engine.pipeline import analyse_video

    analysis = analyse_video(video)
    hits = sum(_side(analysis, f) == truth[f] for f in range(min(analysis.frames, len(truth))))
    return hits / len(truth)


def timed(video: Path, audio: Path, out: Path, active: bool) -> float:
    from chamelaion.engine import LipsyncOptions, lipsync

    start = time.perf_counter()
    lipsync(video, audio, out, LipsyncOptions(active_speaker_detection=active))
    return time.perf_counter() - start


def main() -> None:
    import mediagen

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="chamelaion-asd-"))
    lines = ["my mama made a map of the moon", "bob will be back by noon", "peter picked a pepper"]
    speech = mediagen.silence(0.3)
    while speech.duration < args.seconds:
        speech = speech + mediagen.speak(lines[len(speech.phonemes) % 3]) + mediagen.silence(0.3)
    seconds = speech.duration
    left = mediagen.write_one_side(folder / "l.mp4", seconds, FPS, W, H, "left", speech=speech)
    right = mediagen.write_one_side(folder / "r.mp4", seconds, FPS, W, H, "right", scale=1.15)
    two_faces = mediagen.write_side_by_side(folder / "two.mp4", left, right, FPS, speech)
    single = mediagen.write_one_side(
        folder / "single.mp4", seconds, FPS, W, H, "left", speech=speech
    )
    target = mediagen.write_wav(folder / "target.wav", mediagen.phrases_with_gaps(lines[::-1], 0.4))

    # Speaker A, then speaker B.
    half = mediagen.silence(seconds / 2)
    first = mediagen.Speech(speech.samples[: len(half.samples)], speech.sample_rate)
    second = mediagen.Speech(speech.samples[len(half.samples) :], speech.sample_rate)
    a = mediagen.write_one_side(
        folder / "a.mp4",
        seconds,
        FPS,
        W,
        H,
        "left",
        speech=first + mediagen.silence(second.duration),
    )
    b = mediagen.write_one_side(
        folder / "b.mp4", seconds, FPS, W, H, "right", scale=1.15, speech=half + second
    )
    a_then_b = mediagen.write_side_by_side(folder / "ab.mp4", a, b, FPS, speech)

    frames = int(seconds * FPS)
    switch = int(first.duration * FPS)
    report = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, 2 cores, python {platform.python_version()}",
        "fixture": f"{W}x{H}, {FPS:g} fps, {seconds:.1f} s",
        "seconds_two_faces_active_speaker": round(
            timed(two_faces, target, folder / "o1.mp4", True), 2
        ),
        "seconds_two_faces_largest_face": round(
            timed(two_faces, target, folder / "o2.mp4", False), 2
        ),
        "seconds_single_face": round(timed(single, target, folder / "o3.mp4", True), 2),
        "accuracy_left_speaks": round(accuracy(two_faces, ["left"] * frames), 4),
        "accuracy_a_then_b": round(
            accuracy(a_then_b, ["left"] * switch + ["right"] * (frames - switch)), 4
        ),
    }
    report["added_cost_vs_largest_face"] = round(
        report["seconds_two_faces_active_speaker"] / report["seconds_two_faces_largest_face"] - 1,
        3,  # type: ignore[operator]
    )
    report["added_cost_vs_single_face"] = round(
        report["seconds_two_faces_active_speaker"] / report["seconds_single_face"] - 1,
        3,  # type: ignore[operator]
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
