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
