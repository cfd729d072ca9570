"""Fixtures of the SDK tests."""

from __future__ import annotations

import pytest

from chamelaion import _base_client
from sdk.helpers import Sleeps


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
