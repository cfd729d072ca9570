"""The `chamelaion` command: the engine's commands here, the service's from `server.cli`.

Handlers import what they need when they run, so `chamelaion --help` stays instant and the
engine's heavy imports (mediapipe, PyAV) happen only for the commands that use them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from chamelaion.engine.options import Progress, SpeakerPoint


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chamelaion", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_engine_commands(commands)
    try:
        from chamelaion.server.cli import add_commands as add_server_commands
    except ImportError:  # the SDK-only install has no server
        pass
    else:
        add_server_commands(commands)
    return parser


def _add_engine_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    # stdlib only: --help stays instant
    from chamelaion.engine.options import DEFAULT_TRANSCRIPT_LANGUAGE, SyncMode

    run = commands.add_parser("lipsync", help="re-animate a video's speaker to new audio")
    run.add_argument("video", help="source video file")
    run.add_argument("audio", help="target audio file (any format FFmpeg reads)")
    run.add_argument("-o", "--output", required=True, help="output MP4 path")
    run.add_argument(
        "--sync-mode",
        default=SyncMode.CUT_OFF.value,
        choices=[mode.value for mode in SyncMode],
        help="what to do when video and audio durations differ (default: %(default)s)",
    )
    run.add_argument(
        "--disable-active-speaker-detection",
        action="store_true",
        help="re-animate the largest face instead of the detected speaker",
    )
    run.add_argument(
        "--speaker",
        metavar="FRAME,X,Y",
        type=_speaker_point,
        help="re-animate the face at this point: a source frame index (from 0) and x, y as "
        "fractions (0-1) of the picture's width and height; overrides speaker detection",
    )
    run.add_argument(
        "--transcript",
        metavar="FILE",
        help="UTF-8 text of what the audio says (a dub's script): sharpens the phone alignment",
    )
    run.add_argument(
        "--transcript-language",
        default=DEFAULT_TRANSCRIPT_LANGUAGE,
        help="the transcript's language, a BCP-47 tag espeak-ng reads (default: %(default)s)",
    )
    run.add_argument("--crf", type=int, default=18, help="H.264 quality, lower is better (18)")
    run.add_argument("--preset", default="veryfast", help="x264 speed preset (veryfast)")
    run.add_argument(
        "--cores",
        type=_cores,
        help="threads drawing the faces (default: the cores this process may run on); give "
        "fewer when other work shares the machine",
    )
    run.add_argument(
        "--work-dir",
        help="keep the analysis and finished segments here (kept afterwards): the same command "
        "run again after an interruption resumes where it stopped",
    )
    run.set_defaults(handler=_lipsync)

    evaluate = commands.add_parser("eval", help="print a JSON lip-sync score for a video")
    evaluate.add_argument("video")
    evaluate.add_argument("--audio", help="score against this audio instead of the video's own")
    evaluate.set_defaults(handler=_eval)


def _speaker_point(text: str) -> SpeakerPoint:
    """`--speaker`'s FRAME,X,Y (argparse shows a ValueError's type name, so its own errors
    are ArgumentTypeErrors that say what is wrong)."""
    from chamelaion.engine.options import SpeakerPoint

    parts = text.split(",")
    try:
        if len(parts) != 3:
            raise ValueError
        point = SpeakerPoint(int(parts[0]), float(parts[1]), float(parts[2]))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give FRAME,X,Y, e.g. 0,0.25,0.4 (a frame index and two fractions)"
        ) from None
    problem = point.problem()
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return point


def _cores(text: str) -> int:
    """`--cores`: a whole number from 1."""
    try:
        cores = int(text)
    except ValueError:
        cores = 0
    if cores < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of cores from 1")
    return cores


def _lipsync(args: argparse.Namespace) -> int:
    with _native_stderr_silenced() as stderr:
        from chamelaion.engine import EngineError, LipsyncOptions, SyncMode, lipsync
        from chamelaion.engine.pipeline import available_cores
        from chamelaion.engine.transcript import resolve_language

        try:
            transcript = _read_transcript(args.transcript)
            if transcript is not None:
                resolve_language(args.transcript_language)  # the service notes it; we can say
        except (OSError, UnicodeDecodeError) as exc:
            print(f"error: cannot read transcript {args.transcript}: {exc}", file=stderr)
            return 1
        except EngineError as exc:
            print(f"error: {exc}", file=stderr)
            return 1
        options = LipsyncOptions(
            sync_mode=SyncMode(args.sync_mode),
            active_speaker_detection=not args.disable_active_speaker_detection,
            crf=args.crf,
            preset=args.preset,
            transcript=transcript,
            transcript_language=args.transcript_language,
            speaker=args.speaker,
        )
        bar = _ProgressBar(stderr)
        cores = args.cores or available_cores()
        try:
            result = lipsync(
                args.video, args.audio, args.output, options,
                progress=bar, work_dir=args.work_dir, cores=cores,
            )  # fmt: skip
        except EngineError as exc:
            bar.finish()
            print(f"error: {exc}", file=stderr)
            return 1
        bar.finish()
        print(
            f"wrote {result.output} ({result.frames} frames, {result.duration:.2f} s, "
            f"face re-animated in {result.face_frames}, drawn on {cores} "
            f"{'core' if cores == 1 else 'cores'})",
            file=stderr,
        )
        for note in result.notes:
            print(f"note: {note}", file=stderr)
    return 0


def _read_transcript(path: str | None) -> str | None:
    """The transcript file's text ("-": standard input), or None without one."""
    if path is None:
        return None
    if path == "-":
        return sys.stdin.read()
    with open(path, encoding="utf-8") as file:
        return file.read()


def _eval(args: argparse.Namespace) -> int:
    with _native_stderr_silenced() as stderr:
        from chamelaion.engine import EngineError
        from chamelaion.engine.score import sync_score

        try:
            score = sync_score(args.video, args.audio)
        except EngineError as exc:
            print(f"error: {exc}", file=stderr)
            return 1
    print(json.dumps(score.as_dict(), indent=2))
    return 0


class _ProgressBar:
    """One status line: stage, frames done of total, frames per second."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.interactive = stream.isatty()
        self._last_decile: tuple[str, int] | None = None

    def __call__(self, progress: Progress) -> None:
        total = max(progress.frames_total, 1)
        share = min(progress.frames_done / total, 1.0)
        filled = int(share * 30)
        line = (
            f"{progress.stage:<9} [{'#' * filled}{'.' * (30 - filled)}] "
            f"{progress.frames_done}/{progress.frames_total} frames "
            f"{progress.frames_per_second:6.1f} fps"
        )
        if self.interactive:
            self.stream.write("\r" + line)
            self.stream.flush()
        elif (decile := (progress.stage, int(share * 10))) != self._last_decile:
            self._last_decile = decile
            print(line, file=self.stream)

    def finish(self) -> None:
        if self.interactive:
            self.stream.write("\n")


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[TextIO]:
    """Send native libraries' log lines (TensorFlow Lite, absl) to /dev/null; yield the real
    stderr for our own messages. Python's `sys.stderr` points at the real one meanwhile."""
    sys.stderr.flush()
    saved = os.dup(2)
    real = os.fdopen(os.dup(saved), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    previous, sys.stderr = sys.stderr, real
    try:
        yield real
    finally:
        sys.stderr = previous
        real.flush()
        os.dup2(saved, 2)
        os.close(saved)
        real.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
