"""Run every ``bench/bench_*.py`` and print one table (what ``nox -s bench`` calls).

Each benchmark module runs in its own child process (``--one FILE``) so that one module's
imports and data cannot slow another, and so that the child's peak RSS (``getrusage``) can be
shown beside its rows; a row may carry its own ``rss_mib`` (e.g. a worker process it started),
which wins. A module that fails or cannot run shows one row saying so, never a figure. Targets
from the issues are shown beside the rows they apply to, with met / not met.

``python bench/run_all.py [--quick] [--only NAME ...] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

#: (stage prefix, minimum, text): the speed targets of the issues, matched on the stage name.
TARGETS: list[tuple[str, float, str]] = [
    ("pcap read (sample)", 0, ""),
    ("pcap read", 2_500_000, ">= 2.5M pkt/s"),
    ("decode+classify (VoIP mix)", 4_000_000, ">= 4M pkt/s"),
    ("IPv4 fragment reassembly", 500_000, ">= 500K frag/s"),
    ("tcp reassembly", 150_000, ">= 150K seg/s"),
    ("sip parse (full", 300_000, ">= 300K msg/s, >= 20x tshark"),
    ("kafka reporter", 200_000, ">= 200K rec/s per core"),
    ("end to end: pcap", 1_500_000, ">= 1.5M pkt/s"),
    ("end to end: SIP", 200_000, ">= 200K msg/s"),
    ("afpacket drained ring: capture+decode", 5_000_000, ">= 5M pkt/s per core"),
]


def _target(row: dict[str, Any]) -> str:
    for prefix, minimum, text in TARGETS:
        if str(row["stage"]).startswith(prefix):
            if not text or not row.get("otus_rate"):
                return ""
            met = float(row["otus_rate"]) >= minimum
            if prefix.startswith("sip parse") and row.get("peer_rate"):
                met = met and float(row["otus_rate"]) / float(row["peer_rate"]) >= 20
            return f"{text}: {'met' if met else 'NOT met'}"
    if str(row["stage"]).startswith("memory bound"):
        return "bounded: " + (
            "met" if str(row.get("note", "")).startswith("bounded") else "NOT met"
        )
    return ""


def _one(path: str, quick: bool, out: str) -> None:
    """Child: import one module, run it, write its rows (and this process's peak RSS)."""
    import importlib.util

    sys.path.insert(0, str(HERE))
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.run(quick)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(out).write_text(json.dumps({"rows": rows, "rss_mib": rss}))


def _module_rows(path: Path, quick: bool, timeout: float) -> tuple[list[dict[str, Any]], float]:
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"otus-bench-{os.getpid()}-{path.stem}.json"
    cmd = [sys.executable, __file__, "--one", str(path), "--out", str(out)]
    if quick:
        cmd.append("--quick")
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [_failed(path, f"did not finish within {timeout:.0f} s")], 0.0
    seconds = time.perf_counter() - start
    print(f"  {path.name}: {seconds:.0f} s", file=sys.stderr, flush=True)
    if proc.returncode != 0 or not out.exists():
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        return [_failed(path, f"failed: {lines[-1] if lines else proc.returncode}")], 0.0
    data = json.loads(out.read_text())
    out.unlink()
    return list(data["rows"]), float(data["rss_mib"])


def _failed(path: Path, why: str) -> dict[str, Any]:
    return {"stage": path.stem, "otus_rate": None, "unit": "", "peer": None, "peer_rate": None,
            "note": f"not measured: {why}"}  # fmt: skip


def _rate(value: Any) -> str:
    if not value:
        return "-"
    v = float(value)
    return f"{v:,.1f}" if v < 1000 else f"{v:,.0f}"


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as one plain-text table (also pasted into docs/performance.md)."""
    head = ("stage", "otus", "unit", "peer", "peer rate", "ratio", "peak RSS MiB", "target", "note")
    lines = [head]
    for r in rows:
        ratio = "-"
        if r.get("otus_rate") and r.get("peer_rate"):
            ratio = f"{float(r['otus_rate']) / float(r['peer_rate']):.2f}x"
        rss = f"{r['rss_mib']:.0f}" if r.get("rss_mib") else "-"
        lines.append((str(r["stage"]), _rate(r.get("otus_rate")), str(r.get("unit") or "-"),
                      str(r.get("peer") or "-"), _rate(r.get("peer_rate")), ratio, rss,
                      _target(r), str(r.get("note", ""))))  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(head) - 1)]
    text = []
    for line in lines:
        cells = [c.ljust(w) for c, w in zip(line[:-1], widths, strict=True)] + [line[-1]]
        text.append("  ".join(cells).rstrip())
    return "\n".join(text)


def machine() -> str:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f} at start"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small inputs, fewer runs")
    ap.add_argument("--only", nargs="*", default=[], help="module names, e.g. bench_sip")
    ap.add_argument("--json", help="also write the rows to this file")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        _one(args.one, args.quick, args.out)
        return 0
    files = sorted(HERE.glob("bench_*.py"))
    if args.only:
        files = [f for f in files if f.stem in args.only or f.stem[6:] in args.only]
    print(f"machine: {machine()}", flush=True)
    print(f"mode: {'quick' if args.quick else 'full'}; {len(files)} modules", flush=True)
    timeout = 900.0 if args.quick else 3600.0
    rows: list[dict[str, Any]] = []
    for path in files:
        module_rows, rss = _module_rows(path, args.quick, timeout)
        for row in module_rows:
            row.setdefault("rss_mib", rss or None)
        rows += module_rows
    print(table(rows) if rows else "(no benchmarks under bench/)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
