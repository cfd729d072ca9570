"""Engine benchmark: speed against the transcode floor, and memory against duration.

    python bench/engine.py                    # 720p25 and 1080p30 (20 s), RSS at 20 s vs 120 s
    python bench/engine.py --quick            # 720p25 only, no 120 s run
    python bench/engine.py --real VIDEO AUDIO # also score real footage (not committed)

Each measurement runs in a child process of its own, so its peak RSS is its own. The transcode
floor decodes and re-encodes the same video with the same H.264/AAC settings the engine uses:
the engine's ratio to it is the cost of lip-sync itself.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the test media generator


def make_fixture(
    folder: Path, name: str, seconds: float, fps: float, width: int, height: int
) -> tuple[Path, Path]:
    import mediagen

    phrases = ["the quick brown fox jumps over the lazy dog", "my mama made a map of the moon",
               "peter piper picked a peck of pickled peppers", "we will see you soon"]  # fmt: skip
    speech = mediagen.silence(0.3)
    while speech.duration < seconds:
        speech = (
            speech
            + mediagen.speak(phrases[len(speech.phonemes) % len(phrases)])
            + mediagen.silence(0.4)
        )
    speech = mediagen.Speech(
        speech.samples[: int(seconds * speech.sample_rate)], speech.sample_rate
    )
    audio = mediagen.write_wav(folder / f"{name}.wav", speech)
    video = folder / f"{name}.mp4"
    if not video.exists():
        mediagen.write_face_video(video, seconds, fps, width, height, audio=speech, face_height=0.8)
    return video, audio


def child(kind: str, video: str, audio: str, out: str) -> None:
    """Run one measurement in this process and print wall time and peak RSS as JSON."""
    import logging

    logging.disable(logging.WARNING)
    start = time.perf_counter()
    frames = 0
    if kind == "engine":
        from chamelaion.engine import lipsync

        frames = lipsync(video, audio, out).frames
    else:
        from chamelaion.engine import media
        from chamelaion.engine.options import LipsyncOptions

        options = LipsyncOptions()
        info, sound = media.probe(video), media.probe(audio)
        rate, layout = media.output_audio_format(sound)
        writer = media.VideoWriter(
            out, info.width, info.height, info.fps, rate, layout, options.crf, options.preset
        )
        feed = media.iter_audio(audio, rate, layout)
        for frames, frame in enumerate(media.read_frames(video, info.fps), start=1):
            writer.write_frame(frame)
            if frames % 10 == 0:
                chunk = next(feed, None)
                if chunk is not None:
                    writer.write_audio(chunk)
        for chunk in feed:
            writer.write_audio(chunk)
        writer.close()
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    print(
        json.dumps(
            {"wall_s": wall, "cpu_s": cpu, "frames": frames, "peak_rss_mb": usage.ru_maxrss / 1024}
        )
    )


def measure(kind: str, video: Path, audio: Path, out: Path) -> dict[str, float]:
    run = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(video), str(audio), str(out)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(run.stdout.strip().splitlines()[-1])


def speed_row(
    folder: Path, name: str, seconds: float, fps: float, w: int, h: int
) -> dict[str, object]:
    video, audio = make_fixture(folder, name, seconds, fps, w, h)
    floor = measure("transcode", video, audio, folder / f"{name}.floor.mp4")
    engine = measure("engine", video, audio, folder / f"{name}.out.mp4")
    return {
        "fixture": f"{name} ({w}x{h}, {fps:g} fps, {seconds:g} s)",
        "engine_s": round(engine["wall_s"], 2),
        "transcode_floor_s": round(floor["wall_s"], 2),
        "ratio": round(engine["wall_s"] / floor["wall_s"], 2),
        # CPU seconds (user + system) are steadier than wall time on a busy machine.
        "engine_cpu_s": round(engine["cpu_s"], 2),
        "transcode_floor_cpu_s": round(floor["cpu_s"], 2),
        "cpu_ratio": round(engine["cpu_s"] / floor["cpu_s"], 2),
        "engine_fps": round(engine["frames"] / engine["wall_s"], 1),
        "realtime_factor": round(seconds / engine["wall_s"], 2),
        "engine_peak_rss_mb": round(engine["peak_rss_mb"]),
        "floor_peak_rss_mb": round(floor["peak_rss_mb"]),
    }


def real_footage(folder: Path, video: Path, audio: Path) -> dict[str, object]:
    from chamelaion.engine import lipsync
    from chamelaion.engine.score import sync_score

    out = folder / "real.out.mp4"
    start = time.perf_counter()
    result = lipsync(video, audio, out)
    wall = time.perf_counter() - start
    return {
        "video": video.name,
        "audio": audio.name,
        "engine_s": round(wall, 2),
        "realtime_factor": round(result.duration / wall, 2),
        "source_with_its_own_audio": sync_score(video).as_dict(),
        "output_with_new_audio": sync_score(out, audio).as_dict(),
        "output": str(out),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--real", nargs=2, metavar=("VIDEO", "AUDIO"), type=Path)
    parser.add_argument("--keep", type=Path, help="folder to keep fixtures and outputs in")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    folder = args.keep or Path(tempfile.mkdtemp(prefix="chamelaion-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    report: dict[str, object] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores, "
        f"python {platform.python_version()}",
        "speed": [speed_row(folder, "720p25", 20, 25, 1280, 720)],
    }
    if not args.quick:
        report["speed"].append(speed_row(folder, "1080p30", 20, 30, 1920, 1080))  # type: ignore[attr-defined]
        long_video, long_audio = make_fixture(folder, "720p25-120s", 120, 25, 1280, 720)
        short = measure(
            "engine", *make_fixture(folder, "720p25", 20, 25, 1280, 720), folder / "m20.mp4"
        )
        long = measure("engine", long_video, long_audio, folder / "m120.mp4")
        report["memory"] = {
            "peak_rss_mb_20s": round(short["peak_rss_mb"]),
            "peak_rss_mb_120s": round(long["peak_rss_mb"]),
            "realtime_factor_120s": round(120 / long["wall_s"], 2),
        }
    if args.real:
        report["real_footage"] = real_footage(folder, *args.real)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
