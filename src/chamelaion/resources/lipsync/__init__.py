from __future__ import annotations

from .lipsync import AsyncLipsync, Lipsync
from .requests import AsyncRequests, Requests

__all__ = ["AsyncLipsync", "AsyncRequests", "Lipsync", "Requests"]
