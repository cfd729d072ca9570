"""The base of the SDK's response models."""

from __future__ import annotations

import pydantic


class BaseModel(pydantic.BaseModel):
    """Response models tolerate fields they do not know (kept as extra attributes), so a newer
    server does not break an older SDK."""

    model_config = pydantic.ConfigDict(extra="allow", populate_by_name=True)

    def to_dict(self) -> dict[str, object]:
        """The model as JSON-ready data, without fields the server left out."""
        return self.model_dump(mode="json", exclude_unset=True)
