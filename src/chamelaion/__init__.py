"""Chamelaion: lip-sync service. The SDK lives at the top of this package.

::

    from chamelaion import Chamelaion

    client = Chamelaion()  # api_key from CHAMELAION_API_KEY
    job = client.lipsync.generate(
        inputs=[{"type": "video", "url": "https://cdn.example.com/episodes/42.mp4"},
                {"type": "audio", "url": "https://cdn.example.com/dubs/42-japanese.wav"}],
        reference_id="dub-episode-42",
    )
    done = client.lipsync.requests.wait(job.request_id)
    client.lipsync.requests.download(done, "out.mp4")

Importing this package imports only the SDK (httpx, pydantic and the standard library), never
the server or the engine (``chamelaion.server``, ``chamelaion.engine``).
"""

from __future__ import annotations

from . import types
from ._base_client import DEFAULT_BASE_URL, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, ProgressCallback
from ._client import AsyncChamelaion, Chamelaion
from ._exceptions import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ChamelaionError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    TokenLimitError,
    UnsupportedMediaTypeError,
    WaitTimeoutError,
    WebhookVerificationError,
)
from ._files import FileTypes
from ._pagination import AsyncRequestsPage, AsyncRequestsPaginator, SyncRequestsPage
from ._types import NOT_GIVEN, NotGiven, Timeout
from ._version import __version__
from ._webhooks import verify_webhook
from .types import (
    Input,
    LipsyncGenerate,
    LipsyncRequest,
    Pagination,
    RequestListResponse,
)

Client = Chamelaion
AsyncClient = AsyncChamelaion

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "NOT_GIVEN",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncChamelaion",
    "AsyncClient",
    "AsyncRequestsPage",
    "AsyncRequestsPaginator",
    "AuthenticationError",
    "BadRequestError",
    "Chamelaion",
    "ChamelaionError",
    "Client",
    "FileTypes",
    "Input",
    "InternalServerError",
    "LipsyncGenerate",
    "LipsyncRequest",
    "NotFoundError",
    "NotGiven",
    "Pagination",
    "PermissionDeniedError",
    "ProgressCallback",
    "RateLimitError",
    "RequestListResponse",
    "SyncRequestsPage",
    "Timeout",
    "TokenLimitError",
    "UnsupportedMediaTypeError",
    "WaitTimeoutError",
    "WebhookVerificationError",
    "__version__",
    "types",
    "verify_webhook",
]
