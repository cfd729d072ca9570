"""Fixtures of the SDK tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from chamelaion import _base_client
from realserver import Server, create_key, media_server, running
from sdk.helpers import Sleeps
from sdk.live import LIVE_UPLOAD_CAP, CuttingProxy, Live


@pytest.fixture
def opened() -> Iterator[ExitStack]:
    """Files a test opens (``opened.enter_context(path.open("rb"))``), closed at its end."""
    with ExitStack() as stack:
        yield stack


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> Sleeps:
    """Record retry/poll sleeps without sleeping; jitter off unless a test sets it."""
    record = Sleeps()

    def fake_sleep(seconds: float) -> None:
        record.delays.append(seconds)

    async def fake_async_sleep(seconds: float) -> None:
        record.delays.append(seconds)

    monkeypatch.setattr(_base_client, "_sleep", fake_sleep)
    monkeypatch.setattr(_base_client, "_async_sleep", fake_async_sleep)
    monkeypatch.setattr(_base_client, "_jitter", lambda: 0.0)
    return record


# -- a real server on loopback ---------------------------------------------------------------------


def _need_server() -> None:
    pytest.importorskip("fastapi", reason="the server extra is not installed")
    pytest.importorskip("chamelaion.server.app", reason="the server is not available")


@pytest.fixture(scope="session")
def live_media(media_dir: Path, short_face_video: Path, short_speech: Path) -> Iterator[str]:
    with media_server(media_dir) as url:
        yield url


@pytest.fixture(scope="session")
def live_api(tmp_path_factory: pytest.TempPathFactory, live_media: str) -> Iterator[Live]:
    """API only (no workers: jobs stay queued), URL inputs on loopback allowed, 8 MiB cap."""
    _need_server()
    data_dir = tmp_path_factory.mktemp("sdk-api")
    key = create_key(data_dir, "sdk")
    server = Server(
        data_dir,
        workers=0,
        env={
            "CHAMELAION_ALLOW_PRIVATE_URLS": "true",
            "CHAMELAION_MAX_UPLOAD_BYTES": str(LIVE_UPLOAD_CAP),
        },
    )
    with running(server):
        yield Live(server, key, live_media)


@pytest.fixture(scope="session")
def live_worker(tmp_path_factory: pytest.TempPathFactory, live_media: str) -> Iterator[Live]:
    """With one engine worker, so jobs complete. Output URLs expire after 5 s and point to a
    proxy that can break a download half way."""
    _need_server()
    data_dir = tmp_path_factory.mktemp("sdk-worker")
    key = create_key(data_dir, "sdk")
    server = Server(data_dir, workers=1)
    proxy = CuttingProxy(server.port).start()  # output URLs go through it
    server.env = {
        "CHAMELAION_ALLOW_PRIVATE_URLS": "true",
        "CHAMELAION_OUTPUT_URL_TTL_SECONDS": "5",
        "CHAMELAION_PUBLIC_BASE_URL": proxy.url,
    }
    try:
        with running(server):
            yield Live(server, key, live_media, proxy)
    finally:
        proxy.stop()
