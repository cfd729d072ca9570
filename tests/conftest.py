"""Fixtures of every test: media, generated, never downloaded; the servers' databases dropped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import mediagen
import realserver


@pytest.fixture(scope="session", autouse=True)
def _test_databases() -> Iterator[None]:
    """Drop the PostgreSQL databases the session's servers got (none on SQLite)."""
    yield
    realserver.close_databases()


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def short_speech(media_dir: Path) -> Path:
    """About 2.5 s: silence, a short phrase, silence (WAV, 22.05 kHz mono)."""
    speech = mediagen.phrases_with_gaps(["hello mama"], gap=0.6)
    return mediagen.write_wav(media_dir / "short_speech.wav", speech)


@pytest.fixture(scope="session")
def short_face_video(media_dir: Path) -> Path:
    """A 2 s, 320x240, 25 fps talking-head video with no audio."""
    return mediagen.write_face_video(media_dir / "short_face.mp4", 2.0, 25.0, 320, 240)


@pytest.fixture(scope="session")
def blank_video(media_dir: Path) -> Path:
    """A 1 s video with no face in it."""
    return mediagen.write_blank_video(media_dir / "blank.mp4", 1.0)
