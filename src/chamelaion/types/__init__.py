"""The SDK's models and parameter types."""

from __future__ import annotations

from .lipsync_estimate import LipsyncEstimate
from .lipsync_generate import LipsyncGenerate
from .lipsync_generate_params import (
    Input,
    LipsyncGenerateParams,
    ModelName,
    SpeakerPoint,
    SyncMode,
)
from .lipsync_generate_with_media_params import LipsyncGenerateWithMediaParams
from .lipsync_request import (
    FINISHED_STATUSES,
    LipsyncRequest,
    OutputSync,
    RequestStage,
    RequestStatus,
)
from .request_deleted import RequestDeleted
from .request_list_params import RequestListParams
from .request_list_response import Pagination, RequestListResponse

__all__ = [
    "FINISHED_STATUSES",
    "Input",
    "LipsyncEstimate",
    "LipsyncGenerate",
    "LipsyncGenerateParams",
    "LipsyncGenerateWithMediaParams",
    "LipsyncRequest",
    "ModelName",
    "OutputSync",
    "Pagination",
    "RequestDeleted",
    "RequestListParams",
    "RequestListResponse",
    "RequestStage",
    "RequestStatus",
    "SpeakerPoint",
    "SyncMode",
]
