"""Shared by the CLI commands that talk to a running daemon."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_socket_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--socket", help="daemon control socket (default: from the config)")


def socket_path(args: argparse.Namespace) -> str:
    if getattr(args, "socket", None):
        return str(args.socket)
    from otus._config.settings import load_settings
    from otus.cli.main import config_path

    return load_settings(config_path(args)).control.socket


def rpc(
    args: argparse.Namespace,
    method: str,
    params: dict[str, Any] | None = None,
    timeout: float = 30.0,
) -> Any:
    from otus._control.client import call

    return call(socket_path(args), method, params, timeout)


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def want_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False)) or not sys.stdout.isatty()
