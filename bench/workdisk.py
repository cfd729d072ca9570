"""What a job keeps on disk while it runs, per minute of output, on real footage.

    python bench/workdisk.py CLIP [CLIP ...]            # each at 720p and 1080p
    python bench/workdisk.py --seconds 30 CLIP          # each looped to 30 s first

A job's work dir (`engine.segments.WorkDir`) holds the render plan, the smoothed face tracks
(`faces/`), the analysis's landmark rows while it scans (`scan/`, removed when the analysis
ends) and every finished segment until the join: segments are the part that grows with the
output, at the encoder's bit rate, and they must all be there when the join starts. Each clip is
scaled to 1280x720 and 1920x1080 (the short side to 720 / 1080: a portrait clip stays portrait),
encoded nearly losslessly, looped to `--seconds`, and run through the engine with its own sound
as the new audio; the work dir is measured every half second and after the last segment (its
largest: the join only reads it). The encoder is constant-quality, so the segments cost what
the picture does: real footage, not bench/engine.py's synthetic face, says what a user's job
costs. Real footage is not committed (pass paths, e.g. from ../shared/footage/).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the test media generator (looping packets)


def _megabytes(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    total = 0
    for entry in path.rglob("*"):
        # A file may go while being counted (scan/ at the analysis's end).
        with contextlib.suppress(FileNotFoundError):
            total += entry.stat().st_size if entry.is_file() else 0
    return total / 2**20


def scaled(source: Path, target: Path, short_side: int) -> Path:
    """`source` with its short side `short_side` (even sizes), near-lossless, its sound kept."""
    from chamelaion.engine import media

    info = media.probe(source)
    factor = short_side / min(info.width, info.height)
    width, height = (round(info.width * factor / 2) * 2, round(info.height * factor / 2) * 2)
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        video_in = inp.streams.video[0]
        video_out = out.add_stream("libx264", rate=video_in.average_rate)
        video_out.width, video_out.height, video_out.pix_fmt = width, height, "yuv420p"
        video_out.options = {"crf": "8", "preset": "ultrafast"}
        audio_in = inp.streams.audio[0]
        audio_out = out.add_stream("aac", rate=audio_in.rate)
        for frame in inp.decode(video_in, audio_in):
            if isinstance(frame, av.VideoFrame):
                picture = frame.reformat(width, height, "yuv420p")
                picture.pts, picture.time_base = frame.pts, frame.time_base
                out.mux(video_out.encode(picture))
            elif isinstance(frame, av.AudioFrame):
                frame.pts = None
                out.mux(audio_out.encode(frame))
        out.mux(video_out.encode())
        out.mux(audio_out.encode())
    return target


def measure(video: Path, folder: Path) -> dict[str, object]:
    from chamelaion.engine.pipeline import SegmentedJob

    work = folder / f"{video.stem}.work"
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            peak[0] = max(peak[0], _megabytes(work))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        job = SegmentedJob.open(video, video, work)
        for segment in job.missing():
            job.render(segment)
    finally:
        done.set()
        sampler.join()
    wall = time.perf_counter() - start
    minutes = len(job.plan.plan) / float(job.plan.fps) / 60
    segments = sum(_megabytes(job.work.segment_path(s)) for s in job.segments)
    parts = {
        "segments": segments,
        "faces": _megabytes(work / "faces"),
        "plan": _megabytes(work / "plan.pickle"),
    }
    whole = _megabytes(work)
    row: dict[str, object] = {
        "clip": video.name,
        "size": f"{job.plan.width}x{job.plan.height}, {float(job.plan.fps):g} fps",
        "output_s": round(minutes * 60, 1),
        "segments": len(job.segments),
        "work_dir_mb_before_join": round(whole, 1),
        "work_dir_peak_mb_sampled": round(max(peak[0], whole), 1),
        "engine_s": round(wall, 1),
    }
    row.update({f"{name}_mb": round(mb, 1) for name, mb in parts.items()})
    # What grows with the output's length.
    row["segments_mb_per_min"] = round(segments / minutes, 1)
    row["faces_mb_per_min"] = round(parts["faces"] / minutes, 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="+", type=Path)
    parser.add_argument("--seconds", type=float, default=20.0, help="loop each clip to this")
    parser.add_argument("--sizes", default="720,1080", help="short sides to scale to")
    args = parser.parse_args()
    import logging
    import os

    import mediagen

    logging.disable(logging.WARNING)
    report: dict[str, object] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average_at_start": round(os.getloadavg()[0], 1),
    }
    rows = []
    with tempfile.TemporaryDirectory(prefix="chamelaion-workdisk-") as temp:
        folder = Path(temp)
        for clip in args.clips:
            for side in (int(s) for s in args.sizes.split(",")):
                made = scaled(clip, folder / f"{clip.stem}-{side}.mp4", side)
                looped = mediagen.loop_packets(
                    made, folder / f"{clip.stem}-{side}-{args.seconds:g}s.mp4", args.seconds
                )
                rows.append(measure(looped, folder))
                print(json.dumps(rows[-1]), file=sys.stderr)
    report["rows"] = rows
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
