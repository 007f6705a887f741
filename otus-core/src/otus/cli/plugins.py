"""``otus plugins list``: every installed plugin, loaded or failed, as a table or JSON.

Listing imports plugin modules but never a cffi extension: plugins keep those in factories.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

KINDS = ("capturer", "parser", "processor", "reporter")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("plugins", help="inspect installed plugins")
    actions = parser.add_subparsers(dest="plugins_command", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list",
        help="list plugins with their kind, distribution, version and load status",
        description="List installed plugins. Plugins that failed to load are shown with the "
        "error. OTUS_STRICT_PLUGINS=1 turns any failure into an error (exit 1).",
    )
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.add_argument("--kind", choices=KINDS, help="only plugins of this kind")
    listing.set_defaults(func=run_list)


def run_list(args: argparse.Namespace) -> int:
    from otus._config.settings import load_settings
    from otus._plugins.registry import load_registry

    if getattr(args, "config", None):
        load_settings(args.config)  # a --config given must exist and be valid, used or not
    entries = load_registry().entries()
    if args.kind:
        # A module that did not import has no known kind: show it under every kind.
        entries = [e for e in entries if e.kind in (args.kind, None)]
    if args.json:
        json.dump([e.to_dict() for e in entries], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    header = ("NAME", "KIND", "DISTRIBUTION", "VERSION", "STATUS", "SUMMARY")
    rows = [
        (
            e.name,
            e.kind or "?",
            e.distribution,
            e.version,
            e.status,
            e.summary if e.status == "loaded" else f"error: {e.error}",
        )
        for e in entries
    ]
    print(format_table(header, rows))
    failed = sum(1 for e in entries if e.status == "failed")
    print(f"\n{len(entries) - failed} loaded, {failed} failed")
    return 0


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns; the last one is not padded."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)
