"""Base classes of the resource objects (``client.lipsync``, ``client.lipsync.requests``)."""

from __future__ import annotations

from ._base_client import AsyncAPIClient, SyncAPIClient


class SyncAPIResource:
    _client: SyncAPIClient

    def __init__(self, client: SyncAPIClient) -> None:
        self._client = client


class AsyncAPIResource:
    _client: AsyncAPIClient

    def __init__(self, client: AsyncAPIClient) -> None:
        self._client = client
