"""``otus status|stats|reload|stop``: ask the running daemon."""

from __future__ import annotations

import argparse
from typing import Any

from otus.cli._client import add_socket_option, print_json, rpc, want_json


def register(subparsers: Any) -> None:
    for name, help_text, func in (
        ("status", "daemon version, uptime, tasks and plugins", run_status),
        ("stats", "per task and stage: packets, bytes, drops, records, errors", run_stats),
        ("reload", "reload the global config (like SIGHUP)", run_reload),
        ("stop", "stop the daemon gracefully", run_stop),
    ):
        p = subparsers.add_parser(name, help=help_text)
        add_socket_option(p)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=func)


def run_status(args: argparse.Namespace) -> int:
    st = rpc(args, "daemon_status")
    if want_json(args):
        print_json(st)
        return 0
    print(f"otus {st['version']} pid {st['pid']} up {st['uptime_seconds']:.0f}s")
    print(f"config {st['config'] or '<defaults>'}  socket {st['socket']}  data {st['data_dir']}")
    tasks = st["tasks"]
    print(f"tasks ({len(tasks)}): " + (", ".join(f"{k}={v}" for k, v in tasks.items()) or "none"))
    print("plugins: " + ", ".join(st["plugins"]))
    return 0


def run_stats(args: argparse.Namespace) -> int:
    st = rpc(args, "daemon_stats")
    if want_json(args):
        print_json(st)
        return 0
    from otus.cli.plugins import format_table

    rows = []
    for task_id, counts in sorted(st["tasks"].items()):
        for key, value in sorted(_flat(counts).items()):
            rows.append((task_id, key, str(value)))
    print(format_table(("TASK", "COUNTER", "VALUE"), rows))
    states = st.get("task_states", {})
    print("\ntasks: " + (", ".join(f"{k}={v}" for k, v in states.items()) or "none"))
    print(f"worker restarts: {st['worker_restarts_total']}")
    return 0


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def run_reload(args: argparse.Namespace) -> int:
    result = rpc(args, "config_reload")
    if want_json(args):
        print_json(result)
        return 0
    print("applied: " + (", ".join(result["applied"]) or "nothing"))
    if result["restart_required"]:
        print("need a daemon restart: " + ", ".join(result["restart_required"]))
    return 0


def run_stop(args: argparse.Namespace) -> int:
    rpc(args, "daemon_shutdown")
    print("daemon stopping")
    return 0
