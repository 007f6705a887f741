"""``otus daemon``: run the agent that holds capture tasks (design §5)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "daemon",
        help="run the daemon (tasks, workers, control socket, metrics)",
        description="Run the Otus daemon in the foreground (systemd, Kubernetes). It starts "
        "with embedded defaults when no config file is given. SIGTERM/SIGINT drain and stop; "
        "a second signal forces exit; SIGHUP reloads the global config.",
    )
    parser.add_argument("--socket", help="control socket path (overrides otus.control.socket)")
    parser.add_argument("--data-dir", help="data directory (overrides otus.data_dir)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from otus._config.settings import load_settings
    from otus._daemon.lifecycle import run_daemon
    from otus._logging.setup import configure_logging
    from otus._plugins.registry import load_registry
    from otus.cli.main import config_path

    path = config_path(args)
    settings = load_settings(path)
    if args.socket:
        settings.control.socket = args.socket
    if args.data_dir:
        settings.data_dir = args.data_dir
    log = settings.log
    configure_logging(
        log.level,
        log.format,
        file=log.file.model_dump(),
        loki=log.loki.model_dump(),
        static={"app": "otus", "host": settings.node.hostname, **settings.node.tags},
    )
    return run_daemon(settings, path, load_registry())
