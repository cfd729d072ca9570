"""`chamelaion lipsync` and `chamelaion eval` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from chamelaion.engine import media


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chamelaion.cli", *map(str, args)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_lipsync_then_eval(tmp_path: Path, short_face_video: Path, short_speech: Path) -> None:
    out = tmp_path / "out.mp4"
    run = _run("lipsync", short_face_video, short_speech, "-o", out, "--sync-mode", "loop")
    assert run.returncode == 0, run.stderr
    assert "render" in run.stderr and "frames" in run.stderr and "fps" in run.stderr
    assert "W0000" not in run.stderr  # native log noise stays out of the user's terminal
    info = media.probe(out)
    assert info.has_video and info.has_audio

    scored = _run("eval", out, "--audio", short_speech)
    assert scored.returncode == 0, scored.stderr
    figures = json.loads(scored.stdout)
    assert set(figures) >= {
        "offset_frames",
        "confidence",
        "distance",
        "silent_closed_share",
        "face_detection_rate",
        "loudness_correlation",
    }
    assert figures["face_detection_rate"] == 1.0


def test_lipsync_reports_errors_plainly(
    tmp_path: Path, blank_video: Path, short_speech: Path
) -> None:
    out = tmp_path / "never.mp4"
    run = _run("lipsync", blank_video, short_speech, "-o", out)
    assert run.returncode == 1
    assert run.stderr.strip().endswith("error: no face detected in video")
    assert "Traceback" not in run.stderr
    assert not out.exists()


def test_lipsync_with_a_transcript_notes_one_that_does_not_match(
    tmp_path: Path, short_face_video: Path, short_speech: Path
) -> None:
    script = tmp_path / "script.txt"
    script.write_text("Die Katze schläft auf dem warmen Sofa im Wohnzimmer.", encoding="utf-8")
    out = tmp_path / "out.mp4"
    run = _run(
        "lipsync", short_face_video, short_speech, "-o", out,
        "--transcript", script, "--transcript-language", "de-DE",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "note: the transcript was not used" in run.stderr
    assert media.probe(out).has_video


def test_lipsync_refuses_a_transcript_it_cannot_use_before_any_work(
    tmp_path: Path, short_face_video: Path, short_speech: Path
) -> None:
    script = tmp_path / "script.txt"
    script.write_text("hello mama", encoding="utf-8")
    out = tmp_path / "never.mp4"
    unknown = _run(
        "lipsync", short_face_video, short_speech, "-o", out,
        "--transcript", script, "--transcript-language", "tlh",
    )  # fmt: skip
    assert unknown.returncode == 1
    assert "error: unsupported transcript_language 'tlh'" in unknown.stderr
    missing = _run(
        "lipsync", short_face_video, short_speech, "-o", out, "--transcript", tmp_path / "no.txt"
    )
    assert missing.returncode == 1 and "error: cannot read transcript" in missing.stderr
    script.write_text("x" * 20_001, encoding="utf-8")
    too_long = _run("lipsync", short_face_video, short_speech, "-o", out, "--transcript", script)
    assert too_long.returncode == 1
    assert "error: transcript too long: 20001 characters, at most 20000" in too_long.stderr
    for run in (unknown, missing, too_long):
        assert "Traceback" not in run.stderr and "render" not in run.stderr
    assert not out.exists()


def test_lipsync_resumes_from_its_work_dir(
    tmp_path: Path, short_face_video: Path, short_speech: Path
) -> None:
    work = tmp_path / "work"
    command = ("lipsync", short_face_video, short_speech, "--sync-mode", "loop")
    first = _run(*command, "-o", tmp_path / "first.mp4", "--work-dir", work)
    assert first.returncode == 0, first.stderr
    assert "analysis" in first.stderr
    manifest = json.loads((work / "manifest.json").read_text())
    assert len(manifest["finished"]) == len(manifest["segments"])  # kept: the user's dir

    again = _run(*command, "-o", tmp_path / "again.mp4", "--work-dir", work)
    assert again.returncode == 0, again.stderr
    assert "analysis" not in again.stderr and "wrote" in again.stderr  # nothing left to do
    assert (
        media.probe(tmp_path / "again.mp4").duration == media.probe(tmp_path / "first.mp4").duration
    )


def test_lipsync_speaker_point(tmp_path: Path, short_face_video: Path, short_speech: Path) -> None:
    """`--speaker FRAME,X,Y`: a malformed or out-of-range point is refused by the parser, a
    point on no face fails with the engine's message, a point on the face re-animates it."""
    out = tmp_path / "out.mp4"
    for given, message in (
        ("0,0.5", "'0,0.5': give FRAME,X,Y, e.g. 0,0.25,0.4"),
        ("0,1.5,0.5", "speaker x must be a fraction of the picture from 0 to 1, not 1.5"),
    ):
        refused = _run("lipsync", short_face_video, short_speech, "-o", out, "--speaker", given)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr
    nowhere = _run("lipsync", short_face_video, short_speech, "-o", out, "--speaker", "3,0,0")
    assert nowhere.returncode == 1
    assert "error: no face at the speaker point (x 0, y 0) in frame 3" in nowhere.stderr
    assert not out.exists()
    pointed = _run("lipsync", short_face_video, short_speech, "-o", out, "--speaker", "3,0.5,0.5")
    assert pointed.returncode == 0, pointed.stderr
    assert media.probe(out).has_video


def test_lipsync_cores(tmp_path: Path, short_face_video: Path, short_speech: Path) -> None:
    """`--cores N`: the faces are drawn on N threads (the same pictures on any number, see
    test_segments); anything but a whole number from 1 is refused by the parser."""
    out = tmp_path / "out.mp4"
    for given in ("0", "two", "-1"):
        refused = _run("lipsync", short_face_video, short_speech, "-o", out, "--cores", given)
        assert refused.returncode == 2, refused.stderr
        assert f"{given!r}: give a whole number of cores from 1" in refused.stderr
        assert not out.exists()
    one = _run("lipsync", short_face_video, short_speech, "-o", out, "--cores", "1")
    assert one.returncode == 0, one.stderr
    assert "drawn on 1 core)" in one.stderr
    assert media.probe(out).has_video
