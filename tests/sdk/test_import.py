"""`import chamelaion` loads the SDK only: never the server, the engine or their dependencies."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = (
    "chamelaion.server",
    "chamelaion.engine",
    "chamelaion.cli",
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "numpy",
    "scipy",
    "av",
    "cv2",
    "mediapipe",
    "celery",
    "redis",
    "limits",
)

# Imports the SDK, then exercises it without I/O (clients, resources, models, errors), and
# prints every module loaded.
PROGRAM = """
import json, sys
import chamelaion
from chamelaion import AsyncChamelaion, Chamelaion, LipsyncRequest
client = Chamelaion(api_key="k", base_url="http://127.0.0.1:9/api")
client.with_options(timeout=1, max_retries=0).lipsync.requests
AsyncChamelaion(api_key="k", base_url="http://127.0.0.1:9/api").lipsync.requests
LipsyncRequest.model_validate({"id": "x", "status": "queued", "created_at": "2026-04-07T10:00:00Z"})
client.close()
print(json.dumps(sorted(sys.modules)))
"""


def _loaded_modules() -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True, timeout=60
    )
    return list(json.loads(out.stdout))


def test_import_loads_only_the_sdk() -> None:
    loaded = _loaded_modules()
    bad = [m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert bad == []
    # and the SDK really was imported (the check above is not vacuous)
    assert "chamelaion._client" in loaded
    assert "httpx" in loaded
    assert "pydantic" in loaded


def test_top_level_third_party_imports_are_httpx_and_pydantic_only() -> None:
    stdlib = set(sys.stdlib_module_names)
    allowed = {
        "chamelaion",
        # httpx and its dependencies
        "httpx",
        "httpcore",
        "h11",
        "h2",
        "hpack",
        "hyperframe",
        "idna",
        "certifi",
        "anyio",
        "sniffio",
        "brotli",
        "zstandard",
        # httpx's `__init__` imports its optional command line tool when click/rich are present
        "click",
        "rich",
        "pygments",
        "markdown_it",
        "mdurl",
        # pydantic and its dependencies
        "pydantic",
        "pydantic_core",
        "typing_extensions",
        "typing_inspection",
        "annotated_types",
    }
    roots = {m.split(".")[0] for m in _loaded_modules()}
    # interpreter/site internals: __main__, _distutils_hack (setuptools), _sysconfigdata_*
    unexpected = sorted(
        r for r in roots if r not in stdlib and r not in allowed and not r.startswith("_")
    )
    assert unexpected == []
