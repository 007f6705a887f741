"""``otus task create|list|status|delete``: manage the daemon's capture tasks."""

from __future__ import annotations

import argparse
import os
from typing import Any

from otus.cli._client import add_socket_option, print_json, rpc, want_json
from otus.errors import ConfigError, OtusError

#: ``--wait`` default: the daemon's own default for ``task_create`` (START_WAIT).
DEFAULT_WAIT = 10.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("task", help="create, list, inspect and delete tasks")
    actions = parser.add_subparsers(dest="task_command", metavar="ACTION", required=True)

    create = actions.add_parser("create", help="create and start a task from a file")
    create.add_argument("-f", "--file", required=True, help="task file (TOML, YAML or JSON)")
    waiting = create.add_mutually_exclusive_group()
    waiting.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT,
        metavar="SECONDS",
        help="wait up to SECONDS for every worker to start or the task to fail "
        f"(default {DEFAULT_WAIT:g}); exit 1 if it failed or is still starting",
    )
    waiting.add_argument(
        "--no-wait",
        dest="wait",
        action="store_const",
        const=0.0,
        help="return at once, the task still starting",
    )
    create.set_defaults(func=run_create)
    listing = actions.add_parser("list", help="list tasks and their states")
    listing.set_defaults(func=run_list)
    status = actions.add_parser("status", help="state, workers, restarts and counts")
    status.add_argument("id", nargs="?", help="task id (default: all tasks)")
    status.set_defaults(func=run_status)
    delete = actions.add_parser("delete", help="stop a task and forget it")
    delete.add_argument("id", help="task id")
    delete.set_defaults(func=run_delete)
    for p in (create, listing, status, delete):
        add_socket_option(p)
        p.add_argument("--json", action="store_true", help="print JSON")


def run_create(args: argparse.Namespace) -> int:
    from otus._config.loader import load_document
    from otus._config.validate import load_task_file
    from otus._control.client import RpcCallError
    from otus._control.jsonrpc import TASK_FAILED
    from otus._plugins.registry import load_registry

    load_task_file(args.file, load_registry())  # the same check as `otus validate`, with file name
    config = load_document(args.file)
    _pcap_path_from_here(config, args.file)
    wait = float(args.wait)
    if not 0 <= wait <= 120:
        raise OtusError(f"--wait {args.wait:g}: give 0 to 120 seconds")
    try:
        result = rpc(args, "task_create", {"config": config, "wait": wait}, timeout=wait + 30)
    except RpcCallError as exc:
        if exc.code != TASK_FAILED or not isinstance(exc.data, dict):
            raise
        if want_json(args):
            print_json(exc.data)
        raise  # "otus: task X failed to start: worker 0: ...", exit 1
    if want_json(args):
        print_json(result)
    else:
        print(_created(result))
    if result["state"] == "starting" and wait > 0:
        why = f"; last error: {result['last_error']}" if result.get("last_error") else ""
        raise OtusError(
            f"task {result['id']}: {result['workers_started']} of {result['workers']} worker(s) "
            f"started within {wait:g}s{why}; it keeps trying: see "
            f"'otus task status {result['id']}', or delete it"
        )
    return 0


def _created(t: dict[str, Any]) -> str:
    """One line on a created task: ``task a running (2 worker(s))``."""
    reason = f", {t['reason']}" if t.get("reason") else ""
    return f"task {t['id']} {t['state']} ({t['workers']} worker(s){reason})"


def _pcap_path_from_here(config: dict[str, Any], source: str) -> None:
    """A relative pcap ``path`` names a file seen from here, not from the daemon's working
    directory: made absolute before sending. ``-`` (stdin) would be the daemon's: refused."""
    capture = config.get("capture")
    if not isinstance(capture, dict) or capture.get("name") != "pcap":
        return
    options = capture.get("config")
    if not isinstance(options, dict):
        return
    path = options.get("path")
    if path == "-":
        raise ConfigError(
            "'-' (stdin) is for otus run; a daemon task reads a file",
            source=source,
            path="capture.config.path",
        )
    if isinstance(path, str) and not os.path.isabs(path):
        options["path"] = os.path.abspath(path)


def run_list(args: argparse.Namespace) -> int:
    tasks = rpc(args, "task_list")
    if want_json(args):
        print_json(tasks)
        return 0
    from otus.cli.plugins import format_table

    rows = [
        (t["id"], t["state"], t["since"], f"{t['workers_alive']}/{t['workers']}",
         str(t["restarts"]), t.get("reason") or "")
        for t in tasks
    ]  # fmt: skip
    print(format_table(("ID", "STATE", "SINCE", "WORKERS", "RESTARTS", "REASON"), rows))
    return 0


def run_status(args: argparse.Namespace) -> int:
    result = rpc(args, "task_status", {"id": args.id} if args.id else {})
    if want_json(args):
        print_json(result)
        return 0
    for t in result if isinstance(result, list) else [result]:
        print(f"{t['id']}: {t['state']} since {t['since']}")
        started = t.get("workers_started", 0)
        print(
            f"  workers {t['workers_alive']}/{t['workers']} alive ({started} started), "
            f"{t['restarts']} restarts"
        )
        if t.get("reason"):
            print(f"  reason: {t['reason']}")
        if t.get("last_error"):
            print(f"  last error: {t['last_error']}")
        if t.get("expires_at"):
            print(f"  expires at {t['expires_at']}")
        _print_counts(t.get("counts", {}), "  ")
    return 0


def _print_counts(counts: dict[str, Any], indent: str) -> None:
    for key, value in sorted(counts.items()):
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            _print_counts(value, indent + "  ")
        else:
            print(f"{indent}{key}: {value}")


def run_delete(args: argparse.Namespace) -> int:
    result = rpc(args, "task_delete", {"id": args.id})
    if want_json(args):
        print_json(result)
    else:
        print(f"task {result['id']} deleted")
    return 0
