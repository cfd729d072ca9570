"""The SDK package as shipped: type-checks under `mypy --strict`, exports its surface, and the
README's Python SDK examples are valid Python."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import chamelaion

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "src" / "chamelaion"


def test_sdk_passes_mypy_strict() -> None:
    if shutil.which("mypy", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("mypy is not installed")
    targets = sorted(str(p) for p in SDK.glob("_*.py"))
    targets += [str(SDK / "resources"), str(SDK / "types")]
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *targets],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Success" in out.stdout


def test_py_typed_marker_is_shipped() -> None:
    assert (SDK / "py.typed").exists()


def test_public_surface() -> None:
    for name in [
        "Chamelaion",
        "AsyncChamelaion",
        "ChamelaionError",
        "APIError",
        "APIStatusError",
        "BadRequestError",
        "AuthenticationError",
        "TokenLimitError",
        "PermissionDeniedError",
        "NotFoundError",
        "UnsupportedMediaTypeError",
        "RateLimitError",
        "InternalServerError",
        "APIConnectionError",
        "APITimeoutError",
        "WaitTimeoutError",
        "LipsyncGenerate",
        "LipsyncRequest",
        "RequestListResponse",
        "Pagination",
    ]:
        assert name in chamelaion.__all__, name
        assert hasattr(chamelaion, name), name
    assert chamelaion.__version__ == "0.1.0"
    assert issubclass(chamelaion.APITimeoutError, chamelaion.APIConnectionError)
    assert issubclass(chamelaion.InternalServerError, chamelaion.APIStatusError)
    assert issubclass(chamelaion.APIStatusError, chamelaion.APIError)
    assert issubclass(chamelaion.APIError, chamelaion.ChamelaionError)
    assert issubclass(chamelaion.WaitTimeoutError, chamelaion.ChamelaionError)


def _readme_sdk_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^## Python SDK\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert match, "README has no '## Python SDK' section"
    return re.findall(r"```python\n(.*?)```", match.group(1), flags=re.S)


def test_readme_examples_are_valid_python() -> None:
    blocks = _readme_sdk_blocks()
    assert len(blocks) >= 7
    for block in blocks:
        # `async for` at the top level of a snippet is shown as if inside a coroutine
        compile(block, "README.md", "exec", flags=0x2000)  # PyCF_ALLOW_TOP_LEVEL_AWAIT
    joined = "\n".join(blocks)
    for call in [
        "lipsync.generate(",
        "lipsync.generate_with_media(",
        "requests.retrieve(",
        "requests.list(",
        "requests.wait(",
        "requests.download(",
    ]:
        assert call in joined, call
