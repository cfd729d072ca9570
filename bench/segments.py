"""Segment-parallel latency: one long job on the real service with 1 and 2 worker processes.

    .venv/bin/python bench/segments.py [--seconds 60] [--segment-seconds 10] [--workers 1 2]

For each worker count N: a fresh `chamelaion serve --workers N` (SQLite, embedded runner) on
loopback and one upload job: a `--seconds` talking head (real footage, looped; 25 fps) with as
much generated speech. From the worker's log: the analysis (whole-job, on one worker), the
segment rendering (shared by the N workers), the join, and the output's sync scoring; the
latency is the job row's finished_at - started_at. The machine's cores bound the speed-up (on 2
cores, N = 2 is the most there is); the projection per added machine assumes each worker has a
core of its own: everything but the rendering stays, the rendering is divided by N.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from datetime import datetime
from fractions import Fraction
from pathlib import Path

import av
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the test media generator and server harness

import mediagen  # noqa: E402
import realserver  # noqa: E402

FOOTAGE = ROOT.parent / "shared" / "footage" / "mimictalk_German_20s.mp4"


def looped_video(source: Path, seconds: float, out: Path) -> Path:
    """`source`'s pictures repeated to `seconds` at 25 fps (H.264, no sound)."""
    pictures = mediagen.read_video_frames(source)
    count = round(seconds * 25)
    frames = ((i / 25, pictures[i % len(pictures)]) for i in range(count))
    return mediagen.write_video(out, frames, 25.0)


def speech_of(seconds: float, out: Path) -> Path:
    said = mediagen.phrases_with_gaps(
        ["good morning everyone", "today we talk about the weather", "see you tomorrow"], gap=0.6
    )
    whole = said
    while whole.duration < seconds:
        whole = whole + said
    cut = mediagen.Speech(whole.samples[: round(seconds * whole.sample_rate)], whole.sample_rate)
    return mediagen.write_wav(out, cut)


def _times(log: str, job_id: str) -> dict[str, float]:
    """Seconds since the epoch of the worker's log lines for the job, by what they say."""
    found: dict[str, float] = {}
    for line in log.splitlines():
        if f"job {job_id}" not in line or not line.startswith("{"):
            continue
        record = json.loads(line)
        when = datetime.fromisoformat(record["ts"].replace("Z", "+00:00")).timestamp()
        message = record["message"]
        for key, pattern in (
            ("started", r"attempt 1 started"),
            ("analysed", r"analysed in"),
            ("rendered", r"segments: .* joining"),
            ("joined", r": joined$"),
            ("completed", r": completed$"),
        ):
            if re.search(pattern, message):
                found[key] = when
    return found


def run(workers: int, video: Path, audio: Path, segment_seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="chm-segments-") as folder:
        data = Path(folder)
        key = realserver.create_key(data, "bench")
        env = {"CHAMELAION_SEGMENT_SECONDS": str(segment_seconds)}
        server = realserver.Server(data, env=env, workers=workers).start()
        try:
            with httpx.Client(
                base_url=server.api, headers={"x-api-key": key.key}, timeout=60
            ) as client:
                with video.open("rb") as v, audio.open("rb") as a:
                    response = client.post(
                        "/lipsync/generate-with-media", files={"video": v, "audio": a}
                    )
                job_id = response.json()["request_id"]
                deadline = time.monotonic() + 1800
                while (body := client.get(f"/lipsync/requests/{job_id}").json())["status"] in (
                    "queued",
                    "processing",
                ):
                    assert time.monotonic() < deadline, "the job did not finish"
                    time.sleep(0.5)
            assert body["status"] == "completed", body
            t = _times(server.logs(), job_id)
            started = datetime.fromisoformat(body["started_at"].replace("Z", "+00:00"))
            finished = datetime.fromisoformat(body["finished_at"].replace("Z", "+00:00"))
            return {
                "latency": (finished - started).total_seconds(),
                "analysis": t["analysed"] - t["started"],
                "render": t["rendered"] - t["analysed"],
                "join": t["joined"] - t["rendered"],
                "score": t["completed"] - t["joined"],
            }
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--segment-seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chm-segments-media-") as folder:
        media = Path(folder)
        video = looped_video(FOOTAGE, args.seconds, media / "video.mp4")
        audio = speech_of(args.seconds, media / "speech.wav")
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            size = f"{stream.codec_context.width}x{stream.codec_context.height}"
            rate = Fraction(stream.average_rate or 25)
        print(f"job: {args.seconds:.0f} s of {FOOTAGE.name} looped ({size}, {float(rate):g} fps), "
              f"segments of {args.segment_seconds:g} s")  # fmt: skip
        results = {n: run(n, video, audio, args.segment_seconds) for n in args.workers}
    print(f"{'workers':>7} {'latency':>8} {'analysis':>9} {'render':>7} {'join':>5} {'score':>6}")
    for n, r in results.items():
        print(f"{n:>7} {r['latency']:>7.1f}s {r['analysis']:>8.1f}s {r['render']:>6.1f}s "
              f"{r['join']:>4.1f}s {r['score']:>5.1f}s")  # fmt: skip
    base = results[min(results)]
    if min(results) == 1:
        fixed = base["latency"] - base["render"]
        print("projected with a core per worker (analysis and join stay on one worker):")
        for n in (1, 2, 4, 8):
            print(f"  {n} workers: {fixed + base['render'] / n:.1f} s")
        for n, r in results.items():
            if n > 1:
                print(f"  measured render speed-up with {n} workers: "
                      f"{base['render'] / r['render']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
