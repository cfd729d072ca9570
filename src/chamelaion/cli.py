"""The `chamelaion` command: the engine's commands here, the service's from `server.cli`.

Handlers import what they need when they run, so `chamelaion --help` stays instant and the
engine's heavy imports (mediapipe, PyAV) happen only for the commands that use them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chamelaion", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_engine_commands(commands)
    try:
        from chamelaion.server.cli import add_commands as add_server_commands
    except ImportError:  # the SDK-only install has no server
        pass
    else:
        add_server_commands(commands)
    return parser


def _add_engine_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    pass  # filled in by the engine work


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
