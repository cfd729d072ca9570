"""`python -m chamelaion.server.openapi [PATH]`: the service's OpenAPI document as a file.

`make openapi` writes it to `openapi.json` at the repository root, where it is committed: the
SDKs' contract tests check their types against it, and a test fails when it no longer matches
the app (run `make openapi` after changing the API).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from chamelaion.server.app import create_app
from chamelaion.server.config import Settings


def document() -> dict[str, Any]:
    """The app's OpenAPI document; the app is built on a throwaway data dir (nothing runs)."""
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            _env_file=None,
            data_dir=Path(data_dir),
            database_url=f"sqlite:///{data_dir}/openapi.db",
            secret_key="openapi-export",
            access_log=False,
        )
        return create_app(settings).openapi()


def render(doc: dict[str, Any]) -> str:
    """The committed file's exact text: stable, so a stale file shows as a diff."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> None:
    text = render(document())
    if argv:
        Path(argv[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main(sys.argv[1:])
