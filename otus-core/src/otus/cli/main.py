"""``otus``: parse the command line, dispatch to a subcommand, turn errors into exit codes.

Each subcommand is a module ``otus.cli.<name>`` listed in :data:`COMMANDS` with a
``register(subparsers)`` function that adds its parser and sets ``func(args) -> int``. Modules
keep heavy imports inside ``func`` so ``otus --help`` stays fast.

Exit codes: 0 success, 1 an Otus error (invalid file, plugin or daemon problem), 2 bad usage,
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from otus import __version__
from otus.errors import OtusError

__all__ = ["COMMANDS", "DEFAULT_CONFIG", "build_parser", "config_path", "main"]

#: Subcommand modules under ``otus.cli``, in the order ``otus --help`` shows them.
COMMANDS = ("plugins", "validate", "run", "daemon", "task", "control")

#: Read when neither ``--config`` nor ``OTUS_CONFIG`` is given and the file exists.
DEFAULT_CONFIG = "/etc/otus/otus.toml"

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otus",
        description="Otus: passive SIP and network capture agent.",
        epilog="Exit codes: 0 ok, 1 error, 2 bad usage, 130 interrupted. See docs/cli.md.",
    )
    parser.add_argument("--version", action="version", version=f"otus {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help=f"global config file (default: $OTUS_CONFIG, else {DEFAULT_CONFIG} if it exists)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"otus.cli.{name}").register(subparsers)
    _accept_config_anywhere(subparsers)
    return parser


def _accept_config_anywhere(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Let ``--config`` also follow the subcommand (``otus daemon --config FILE``), as
    operators write it; ``SUPPRESS`` keeps a value given before the subcommand."""
    for sub in set(subparsers.choices.values()):
        if "--config" not in sub._option_string_actions:
            sub.add_argument(
                "--config",
                metavar="FILE",
                default=argparse.SUPPRESS,
                help="global config file (the same as otus --config FILE)",
            )
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                _accept_config_anywhere(action)


def config_path(args: argparse.Namespace) -> str | None:
    """The global config file to read: ``--config``, ``$OTUS_CONFIG``, the default, or none."""
    explicit = getattr(args, "config", None) or os.environ.get("OTUS_CONFIG")
    if explicit:
        return str(explicit)
    return DEFAULT_CONFIG if os.path.exists(DEFAULT_CONFIG) else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``otus`` with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        func = getattr(args, "func", None)
        if func is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return int(func(args))
    except OtusError as err:
        print(f"otus: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("otus: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `otus plugins list | head`: the reader left; not an error worth a traceback.
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
