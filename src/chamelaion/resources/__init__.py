"""The API's resources, mirroring its URL tree (``/v1/lipsync/...`` → ``client.lipsync``)."""

from __future__ import annotations

from .lipsync import AsyncLipsync, AsyncRequests, Lipsync, Requests

__all__ = ["AsyncLipsync", "AsyncRequests", "Lipsync", "Requests"]
