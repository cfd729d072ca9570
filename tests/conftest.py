"""Fixtures of every test: media, generated, never downloaded; the servers' databases dropped;
the order in which `make test` hands modules to its two processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import mediagen
import realserver

# Test directories whose modules mostly wait on servers and subprocesses (a few minutes each at
# worst), collected first: `make test` hands whole modules to two processes in collection order,
# and a long module handed out last would run alone at the end.
FIRST = ("typescript", "studio", "server")
TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        top = item.path.relative_to(TESTS).parts[0] if item.path.is_relative_to(TESTS) else ""
        return FIRST.index(top) if top in FIRST else len(FIRST)

    items.sort(key=rank)  # stable: each module keeps its own order


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
