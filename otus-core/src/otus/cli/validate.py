"""``otus validate FILE...``: check global config and task files without a daemon.

Prints one line per file (``ok`` on stdout, the error on stderr); exit 1 if any file is invalid
or two task files share an id. A global config named with ``--config`` is checked first.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check config or task files (TOML, YAML, JSON) without a daemon",
        description="Check global config files (root key 'otus') and task files (and the "
        "file of --config). Prints one line per file; exits 1 if any is invalid.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="files to check")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from otus._config.validate import ValidatedTask, check_unique_ids, validate_file
    from otus._plugins.registry import load_registry
    from otus.errors import ConfigError

    registry = load_registry()
    failed = 0
    tasks: list[ValidatedTask] = []
    files = list(args.files)
    explicit = getattr(args, "config", None)
    if explicit and explicit not in files:
        files.insert(0, explicit)  # `otus --config F validate T`: F is checked too
    for path in files:
        try:
            result = validate_file(path, registry)
        except ConfigError as err:
            print(err, file=sys.stderr)
            failed += 1
            continue
        if result.task is not None:
            tasks.append(result.task)
        print(f"{path}: ok: {result.describe()}")
    try:
        check_unique_ids(tasks)
    except ConfigError as err:
        print(err, file=sys.stderr)
        failed += 1
    return 1 if failed else 0
