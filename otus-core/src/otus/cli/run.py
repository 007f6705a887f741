"""``otus run``: one pipeline in the foreground, from flags or a task file.

Examples::

    otus run --pcap calls.pcapng --parser sip --reporter console
    otus run -i eth0 --bpf 'udp port 5060' --parser sip --set console.format=json
    otus run -f task.toml --summary-json summary.json

The task is validated exactly like ``otus validate`` does. A progress bar is drawn on stderr when
it is a terminal and the source is a file; a summary of counts follows at the end. Ctrl-C stops
gracefully (flushing reporters); a second Ctrl-C quits at once. Exit codes: 0 the run ended (file
read, or ``duration`` elapsed, everything delivered), 1 an error (invalid task, broken capture
file, records a reporter did not deliver), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import signal
import sys
import time
from typing import IO, TYPE_CHECKING, Any

from otus.errors import ConfigError, OtusError

if TYPE_CHECKING:
    from otus._config.settings import Settings
    from otus._config.validate import ValidatedTask

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130

_SOURCE = "<command line>"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run one pipeline in the foreground (a pcap file or an interface)",
        description="Run one capture pipeline in the foreground, from flags or a task file. "
        "Shows a progress bar for files on a terminal and a summary of counts at the end.",
        epilog="Plugin options: --set NAME.KEY=VALUE (VALUE is JSON, else a string; KEY may be "
        "dotted) or -o NAME=JSON (a whole options table). NAME is a plugin of this run, or "
        "'decoder' for the decoder options. Exit codes: 0 done, 1 error, 130 interrupted.",
    )
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--pcap", metavar="FILE", help="read a pcap/pcapng file ('-': stdin)")
    src.add_argument("-i", "--interface", metavar="IFACE", help="capture live (afpacket)")
    src.add_argument("-f", "--task", metavar="TASKFILE", help="run a task file (TOML/YAML/JSON)")
    parser.add_argument("--bpf", metavar="EXPR", help="capture filter for -i (tcpdump syntax)")
    parser.add_argument("--speed", type=float, help="replay pace for --pcap (1.0: real time)")
    parser.add_argument("--loop", type=int, help="extra passes over --pcap (-1: forever)")
    parser.add_argument("--parser", action="append", default=[], metavar="NAME",
                        help="a parser (repeatable), e.g. sip")  # fmt: skip
    parser.add_argument("--processor", action="append", default=[], metavar="NAME",
                        help="a processor (repeatable, applied in order)")  # fmt: skip
    parser.add_argument("--reporter", action="append", default=[], metavar="NAME",
                        help="a reporter (repeatable; default: console)")  # fmt: skip
    parser.add_argument("--set", action="append", default=[], dest="sets",
                        metavar="NAME.KEY=VALUE", help="set one plugin option")  # fmt: skip
    parser.add_argument("-o", "--options", action="append", default=[], metavar="NAME=JSON",
                        help="set a plugin's options from a JSON object")  # fmt: skip
    parser.add_argument("--id", default="run", help="task id stamped on records (default: run)")
    parser.add_argument("--summary-json", metavar="FILE", help="also write the summary as JSON")
    parser.add_argument("--no-progress", action="store_true", help="never draw a progress bar")
    parser.add_argument("--flush-timeout", type=_seconds, default=5.0, metavar="SECONDS",
                        help="longest wait for reporters at the end (default 5)")  # fmt: skip
    parser.set_defaults(func=run)


def _seconds(text: str) -> float:
    """A finite, non-negative number of seconds (argparse turns the error into usage, exit 2)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text!r}")
    return value


# -- building the task from flags ----------------------------------------------------------------


def _usage(problem: str) -> ConfigError:
    return ConfigError(problem, source=_SOURCE)


def task_from_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The task (plain data) described by the flags of ``otus run``."""
    if args.interface is not None:
        if args.speed is not None or args.loop is not None:
            raise _usage("--speed and --loop apply to --pcap, not to -i")
        capture: dict[str, Any] = {"interface": args.interface}
        if args.bpf:
            capture["bpf"] = args.bpf
        cap_name = "afpacket"
    else:
        if args.bpf:
            raise _usage("--bpf applies to -i (live capture); filter a file with tcpdump -r")
        capture = {"path": args.pcap}
        if args.speed is not None:
            capture["speed"] = args.speed
        if args.loop is not None:
            capture["loop"] = args.loop
        cap_name = "pcap"
    return {
        "id": args.id,
        "capture": {"name": cap_name, "config": capture},
        "parsers": [{"name": n, "config": {}} for n in args.parser],
        "processors": [{"name": n, "config": {}} for n in args.processor],
        "reporters": [{"name": n, "config": {}} for n in (args.reporter or ["console"])],
    }


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _targets(task: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The option tables of ``name`` in ``task`` (``decoder``: the decoder table)."""
    if name == "decoder":
        table = task.setdefault("decoder", {})
        return [table] if isinstance(table, dict) else []
    refs = [task.get("capture")] + [
        ref for kind in ("parsers", "processors", "reporters") for ref in task.get(kind) or []
    ]
    found = []
    for ref in refs:
        if isinstance(ref, dict) and ref.get("name") == name:
            found.append(ref.setdefault("config", {}))
    if not found:
        names = sorted({str(r.get("name")) for r in refs if isinstance(r, dict)} | {"decoder"})
        raise _usage(f"no plugin named {name!r} in this run; use one of {', '.join(names)}")
    return found


def apply_overrides(task: dict[str, Any], sets: list[str], options: list[str]) -> None:
    """Apply ``-o NAME=JSON`` (merged over the table) then ``--set NAME.KEY=VALUE``."""
    for item in options:
        name, sep, text = item.partition("=")
        try:
            value = json.loads(text)
        except ValueError as err:
            raise _usage(f"-o {item!r}: not JSON after '=': {err}") from None
        if not sep or not name or not isinstance(value, dict):
            raise _usage(f'-o {item!r}: use NAME={{JSON object}}, e.g. console={{"format":"json"}}')
        for table in _targets(task, name):
            table.update(value)
    for item in sets:
        lhs, sep, text = item.partition("=")
        name, dot, key = lhs.partition(".")
        if not sep or not dot or not name or not key:
            raise _usage(f"--set {item!r}: use NAME.KEY=VALUE, e.g. sip.ports=[5060,5080]")
        value = _parse_value(text)
        *parents, last = key.split(".")
        for table in _targets(task, name):
            node = table
            for part in parents:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise _usage(f"--set {item!r}: {part!r} is not a table")
                node = child
            node[last] = value


# -- running -------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    from otus._config.loader import load_document
    from otus._config.settings import load_settings
    from otus._config.validate import validate_task
    from otus._logging.setup import configure_logging
    from otus._plugins.registry import load_registry
    from otus.cli.main import config_path

    settings = load_settings(config_path(args))
    configure_logging(settings.log.level, "console" if sys.stderr.isatty() else settings.log.format)
    registry = load_registry()
    if args.task is not None:
        if args.parser or args.processor or args.reporter:
            raise _usage("-f TASKFILE takes its plugins from the file; drop --parser etc.")
        if args.bpf or args.speed is not None or args.loop is not None:
            raise _usage("-f TASKFILE: put bpf/speed/loop into the file's [capture.config]")
        source = args.task
        data = load_document(args.task)
        if "otus" in data:
            raise ConfigError("this is a global config file (root key 'otus'), not a task",
                              source=source)  # fmt: skip
    else:
        source = _SOURCE
        data = task_from_flags(args)
    apply_overrides(data, args.sets, args.options)
    task = validate_task(
        data, source=source, registry=registry, decoder_defaults=settings.core.decoder
    )
    if not task.parsers:  # almost always a forgotten --parser: the run would report nothing
        installed = ", ".join(registry.names("parser")) or "none"
        sys.stderr.write(
            "otus run: no parser, so nothing is parsed or reported; add --parser NAME "
            f"(installed: {installed})\n"
        )
    summary_file = _open_summary(args.summary_json)
    try:
        return _run(args, task, settings, summary_file)
    finally:
        if summary_file is not None:
            with contextlib.suppress(OSError):  # a failed write was reported by _run
                summary_file.close()


def _open_summary(path: str | None) -> IO[str] | None:
    """The ``--summary-json`` file, opened before the run so a bad path costs no run."""
    if path is None:
        return None
    try:
        return open(path, "w", encoding="utf-8")  # closed by run()
    except OSError as exc:
        raise OtusError(f"--summary-json {path}: cannot write: {exc.strerror}") from None


def _run(
    args: argparse.Namespace,
    task: ValidatedTask,
    settings: Settings,
    summary_file: IO[str] | None,
) -> int:
    """Build the pipeline, run it with a progress bar and signal handling, then summarise."""
    from otus._pipeline.builder import build_pipeline
    from otus._pipeline.progress import ProgressBar
    from otus._pipeline.runner import Runner
    from otus._pipeline.summary import format_summary, summary_data
    from otus._pipeline.worker import pipeline_context, plain_settings

    cfg = task.config
    context = pipeline_context(cfg.id, 1, settings, 0, plain_settings(settings))
    pipeline = build_pipeline(task, context)
    runner = Runner(pipeline, flush_timeout=args.flush_timeout, duration=cfg.duration)

    interrupted = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal interrupted
        if interrupted:
            raise KeyboardInterrupt
        interrupted = True
        sys.stderr.write("\rotus: stopping (flushing reporters; Ctrl-C again to quit now)\n")
        runner.stop()

    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    bar = None
    cap = cfg.capture
    if (not args.no_progress and sys.stderr.isatty() and cap.name == "pcap"
            and cap.config.get("path") not in (None, "-")):  # fmt: skip
        bar = ProgressBar(sys.stderr, pipeline.capturer.progress, lambda: pipeline.stats.packets)
    started = time.monotonic()
    status: str
    error: str | None
    try:
        if bar is not None:
            bar.start()
        result = runner.run()
        status, error, snapshot = result.status, result.error, result.snapshot
    except KeyboardInterrupt:
        status, error, snapshot = "interrupted", None, pipeline.snapshot()
    finally:
        if bar is not None:
            bar.close()
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
    if status == "stopped" and interrupted:
        status = "interrupted"
    data_out = summary_data(
        snapshot, status=status, error=error, elapsed=time.monotonic() - started
    )
    if status != "failed" or snapshot["counters"].get("capture.packets"):
        print(format_summary(data_out), file=sys.stderr)  # nothing to sum up when nothing was read
    if summary_file is not None:
        try:
            json.dump(data_out, summary_file, indent=2, sort_keys=True)
            summary_file.write("\n")
            summary_file.flush()
        except OSError as exc:  # a full disk
            print(f"otus: --summary-json {summary_file.name}: cannot write: {exc.strerror}",
                  file=sys.stderr)  # fmt: skip
            return EXIT_ERROR
    if status == "failed":
        print(f"otus: {error}", file=sys.stderr)
        return EXIT_ERROR
    if status == "interrupted":
        return EXIT_INTERRUPTED
    lost = data_out["undelivered"]
    if lost:
        names = ", ".join(f"{name} {n:,}" for name, n in lost.items())
        print(f"otus: records not delivered ({names}): see dropped and errors above",
              file=sys.stderr)  # fmt: skip
        return EXIT_ERROR
    return EXIT_OK
