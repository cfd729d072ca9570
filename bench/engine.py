"""Engine benchmark: speed against the transcode floor, and memory against duration.

    python bench/engine.py                    # 720p25, 1080p30 and 4K (2160p25), 20 s each
    python bench/engine.py --quick            # 720p25 only
    python bench/engine.py --long             # also 10 minutes of 720p25 and 1080p30 (slow)
    python bench/engine.py --long --long-seconds 180   # the long inputs 3 minutes long instead
    python bench/engine.py --long --sizes 1080p30      # only the sizes named (20 s and long)
    python bench/engine.py --real VIDEO AUDIO # also score real footage (not committed)

Each measurement runs in a child process of its own, so its peak RSS is its own, and each
engine run is measured beside its floor in the same run of this script: on a shared machine
compare the ratios, not the seconds. The transcode floor is a plain decode and re-encode of the
same video with the same H.264 (crf 18, veryfast) + AAC settings the engine uses, the pictures
going from decoder to encoder as decoded (no colour conversion): the engine's ratio to it is
the cost of lip-sync itself. The 10-minute inputs are the 20 s fixture looped (packets copied,
not re-encoded), with its dub looped likewise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# name, frame rate, width, height; the long inputs are made of the sizes up to 1080p only.
SIZES = [("720p25", 25, 1280, 720), ("1080p30", 30, 1920, 1080), ("2160p25", 25, 3840, 2160)]
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
    work_mb: dict[str, float] = {}
    phases: dict[str, list[float]] = {}
    if kind == "engine":
        from chamelaion.engine import lipsync

        clock = _PhaseClock(start)
        with tempfile.TemporaryDirectory(dir=Path(out).parent) as work:
            sampler = _Sampler(Path(work))

            def progress(report: object) -> None:
                clock.report(report)
                sampler.stage(report)

            try:
                frames = lipsync(video, audio, out, work_dir=work, progress=progress).frames
            finally:
                sampler.stop()
            phases = clock.phases()
            # What the job kept on disk at the end (the join done, before the work dir goes):
            # every segment and the smoothed face tracks, which the work dir keeps for resuming;
            # and the most it held at any sample.
            work_mb = {
                "work_dir_mb": _megabytes(Path(work)),
                "work_dir_faces_mb": _megabytes(Path(work) / "faces"),
                "work_dir_peak_mb": max((s[2] for s in sampler.samples), default=0.0),
            }
            Path(f"{out}.timeline.json").write_text(json.dumps(sampler.samples))
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
        pictures = media.read_frames(video, info.fps, picture=media.yuv_picture)
        for frames, frame in enumerate(pictures, start=1):
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
            {
                "wall_s": wall,
                "cpu_s": cpu,
                "frames": frames,
                "peak_rss_mb": usage.ru_maxrss / 1024,
                **work_mb,
                **({"phases": phases} if phases else {}),
            }
        )
    )


class _PhaseClock:
    """Wall and CPU seconds of the engine's phases, told apart by its progress reports: start
    (imports, probing, reading the audio) until the first report; the mouth track (the
    analysis reports 0 frames while it waits for it); the scan (from its first frame) and the
    rest of the analysis (speaker choice, smoothing, the plan) until the first render report;
    the render until its last frame; the join after it. The CPU is the whole process's (every
    thread's), read at each boundary."""

    def __init__(self, start: float) -> None:
        self._marks: list[tuple[str, float, float]] = [("start", start, 0.0)]

    def _mark(self, name: str) -> None:
        if all(name != seen for seen, _, _ in self._marks):
            usage = resource.getrusage(resource.RUSAGE_SELF)
            self._marks.append((name, time.perf_counter(), usage.ru_utime + usage.ru_stime))

    def report(self, progress: object) -> None:
        stage = getattr(progress, "stage", "")
        done, total = getattr(progress, "frames_done", 0), getattr(progress, "frames_total", 0)
        if stage == "analysis":
            self._mark("mouth track, scan set-up" if done == 0 else "scan and plan")
        elif stage == "render":
            self._mark("render")
            if done >= total:
                self._mark("join")

    def phases(self) -> dict[str, list[float]]:
        """{phase: [wall s, CPU s]}, the last phase ending now."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        marks = [*self._marks, ("end", time.perf_counter(), usage.ru_utime + usage.ru_stime)]
        names = ["startup"] + [name for name, _, _ in marks[1:-1]]
        return {
            name: [round(b[1] - a[1], 2), round(b[2] - a[2], 2)]
            for name, a, b in zip(names, marks[:-1], marks[1:], strict=True)
        }


class _Sampler:
    """Every `SAMPLE_SECONDS`: (seconds, RSS MB, work dir MB, engine stage), written beside the
    output as `<output>.timeline.json`: where memory and disk grow during a long job."""

    SAMPLE_SECONDS = 2.0

    def __init__(self, work: Path) -> None:
        import threading

        self.samples: list[tuple[float, float, float, str]] = []
        self._stage = "start"
        self._work = work
        self._start = time.perf_counter()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stage(self, report: object) -> None:
        self._stage = str(getattr(report, "stage", ""))

    def _run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._done.wait(self.SAMPLE_SECONDS):
            with open("/proc/self/statm") as statm:
                rss = int(statm.read().split()[1]) * page / 2**20
            try:
                disk = _megabytes(self._work)
            except FileNotFoundError:  # a file went while it was being counted
                continue
            seconds = round(time.perf_counter() - self._start, 1)
            self.samples.append((seconds, round(rss, 1), disk, self._stage))

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def _megabytes(folder: Path) -> float:
    return round(sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20, 1)


def measure(kind: str, video: Path, audio: Path, out: Path) -> dict[str, Any]:
    """The child's figures: numbers, and the engine's phases ({name: [wall s, CPU s]})."""
    run = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(video), str(audio), str(out)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    figures: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return figures


def speed_row(video: Path, audio: Path, label: str, folder: Path) -> dict[str, object]:
    from chamelaion.engine import media

    info = media.probe(video)
    floor = measure("transcode", video, audio, folder / f"{video.stem}.floor.mp4")
    engine = measure("engine", video, audio, folder / f"{video.stem}.out.mp4")
    return {
        "fixture": f"{label} ({info.width}x{info.height}, {float(info.fps):g} fps, "
        f"{info.duration:g} s)",
        "engine_s": round(engine["wall_s"], 2),
        "transcode_floor_s": round(floor["wall_s"], 2),
        "ratio": round(engine["wall_s"] / floor["wall_s"], 2),
        # CPU seconds (user + system) are steadier than wall time on a busy machine.
        "engine_cpu_s": round(engine["cpu_s"], 2),
        "transcode_floor_cpu_s": round(floor["cpu_s"], 2),
        "cpu_ratio": round(engine["cpu_s"] / floor["cpu_s"], 2),
        "engine_fps": round(engine["frames"] / engine["wall_s"], 1),
        "realtime_factor": round(info.duration / engine["wall_s"], 2),
        "engine_peak_rss_mb": round(engine["peak_rss_mb"]),
        "floor_peak_rss_mb": round(floor["peak_rss_mb"]),
        "work_dir_mb": engine["work_dir_mb"],
        "work_dir_faces_mb": engine["work_dir_faces_mb"],
        # Per phase of the engine run: wall and CPU seconds (their ratio: cores kept busy).
        "engine_phases": {
            name: f"{wall:.2f} s wall, {cpu:.2f} s CPU ({cpu / max(wall, 1e-9):.2f} cores)"
            for name, (wall, cpu) in engine.get("phases", {}).items()
        },
        "work_dir_peak_mb": engine["work_dir_peak_mb"],
        "output_mb": round((folder / f"{video.stem}.out.mp4").stat().st_size / 2**20, 1),
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
    parser.add_argument("--quick", action="store_true", help="720p25 only")
    parser.add_argument("--long", action="store_true", help="also 10-minute inputs (slow)")
    parser.add_argument(
        "--long-seconds", type=float, default=600.0, help="length of the long inputs (600)"
    )
    parser.add_argument(
        "--sizes",
        help="comma-separated sizes to run, of "
        + ", ".join(name for name, *_ in SIZES)
        + " (all by default; --quick is 720p25)",
    )
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
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
        f"python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} at start",
    }
    sizes = SIZES[:1] if args.quick else SIZES
    if args.sizes:
        wanted = args.sizes.split(",")
        unknown = set(wanted) - {name for name, *_ in SIZES}
        if unknown:
            parser.error(f"unknown sizes: {', '.join(sorted(unknown))}")
        sizes = [size for size in SIZES if size[0] in wanted]
    rows = []
    pairs = []  # (20 s row, long row) per size run long
    for name, fps, w, h in sizes:
        video, audio = make_fixture(folder, name, 20, fps, w, h)
        rows.append(speed_row(video, audio, name, folder))
        if args.long and h <= 1080:
            import mediagen

            seconds = args.long_seconds
            long_video = mediagen.loop_packets(video, folder / f"{name}-{seconds:g}s.mp4", seconds)
            long_audio = mediagen.loop_packets(audio, folder / f"{name}-{seconds:g}s.wav", seconds)
            rows.append(speed_row(long_video, long_audio, f"{name} looped", folder))
            pairs.append((rows[-2], rows[-1]))
    report["speed"] = rows
    if args.long:
        # Memory against duration: the peak of the long input over the peak of 20 s, per size.
        memory = {}
        for short, long in pairs:
            peak_short, peak_long = short["engine_peak_rss_mb"], long["engine_peak_rss_mb"]
            assert isinstance(peak_short, int) and isinstance(peak_long, int)
            memory[str(short["fixture"])] = {
                "peak_rss_mb_20s": peak_short,
                f"peak_rss_mb_{args.long_seconds:g}s": peak_long,
                "growth": round(peak_long / peak_short - 1, 3),
            }
        report["memory"] = memory
    if args.real:
        report["real_footage"] = real_footage(folder, *args.real)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
