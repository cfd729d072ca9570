"""Fixtures for the server tests (the helpers they use live in `server.helpers`).

`make test` runs these tests on SQLite, then again on PostgreSQL (`make test-postgres`), all but
those marked `@pytest.mark.store_independent`: tests whose outcome cannot depend on the database
backend (HTTP parsing, the fetcher, signing, static files, engine messages), which only use the
database to authenticate or to read one row the way every GET does. Anything with a query, a
state transition, a constraint, a lock or a stored value of its own stays unmarked and runs on
both; unmarked is the default, so a test that forgets the mark costs time, never coverage.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import mediagen
import realserver
from server.helpers import (
    ApiServer,
    MediaHandler,
    MediaServer,
    Receiver,
    close_databases,
    contract_server,
    webhook_receiver,
)


@pytest.fixture(scope="session", autouse=True)
def _databases() -> Iterator[None]:
    """Drop the session's PostgreSQL databases at its end (nothing to do on SQLite)."""
    yield
    close_databases()


@pytest.fixture(scope="session")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """API only (no workers: jobs stay queued), 1 MiB upload cap, for the contract tests."""
    with contract_server(tmp_path_factory.mktemp("api-server")) as server:
        yield server


@pytest.fixture(scope="session")
def media_server(media_dir: Path) -> Iterator[MediaServer]:
    """Serves the session's generated media over HTTP on 127.0.0.1 (a loopback "CDN")."""

    with realserver.media_server(media_dir, MediaHandler) as url:
        yield MediaServer(media_dir, url)


@pytest.fixture(scope="session")
def long_inputs(media_dir: Path) -> tuple[Path, Path]:
    """A 6 s video and 30 s of speech: looped to the audio's length (`start_long_job`), the
    render lasts several seconds, so the job is surely still running when a test interrupts it."""
    speech = mediagen.phrases_with_gaps(["hello mama", "good morning", "see you soon"], gap=0.5)
    while speech.duration < 30.0:
        speech = speech + speech
    audio = mediagen.write_wav(media_dir / "long_speech.wav", speech)
    video = mediagen.write_face_video(media_dir / "long_face.mp4", 6.0, 25.0, 320, 240)
    return video, audio


@pytest.fixture(scope="session")
def segment_inputs(media_dir: Path) -> tuple[Path, Path]:
    """A 3 s video and 8 s of speech: looped to the audio's length (`start_long_job`), eight
    segments of 1 s, each rendered in about a second."""
    speech = mediagen.phrases_with_gaps(["hello mama", "good morning"], gap=0.5)
    while speech.duration < 8.0:
        speech = speech + speech
    speech = mediagen.Speech(speech.samples[: 8 * speech.sample_rate], speech.sample_rate)
    audio = mediagen.write_wav(media_dir / "segment_speech.wav", speech)
    video = mediagen.write_face_video(media_dir / "segment_face.mp4", 3.0, 25.0, 320, 240)
    return video, audio


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on loopback; see `Receiver`."""
    with webhook_receiver() as state:
        yield state
