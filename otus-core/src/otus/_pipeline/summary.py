"""The end-of-run summary of ``otus run``: counts per stage, drops by stage and reason, errors.

Built only from a statistics snapshot (see ``docs/pipeline.md``), so the same text can be made
for a worker's last snapshot. :func:`summary_data` is the machine-readable form
(``--summary-json``), :func:`format_summary` the human one.
"""

from __future__ import annotations

from typing import Any

from otus._pipeline.progress import human_bytes

#: Words in a dotted key component that mark a counter as a loss (``capture.drops.kernel``,
#: ``report.kafka.dropped.buffer_full``, ``decode.frag_evicted.memory``).
_DROP_WORDS = ("drop", "evicted", "overflow", "rejected")
_ERROR_WORDS = ("error", "errors", "malformed", "invalid")
#: Counters of traffic the capture itself missed (not lost by Otus), with what they mean.
_NOT_SEEN = {
    "reassembly.tcp.gap_bytes": "TCP bytes missing from the capture; messages there are lost",
}
#: Gauges of things a stage still held when the run ended, with what they are.
_HELD = {"decode.frag_active": "IP datagrams whose other fragments never came"}


def _nonzero(counters: dict[str, int], prefix: str) -> dict[str, int]:
    return {k: v for k, v in counters.items() if k.startswith(prefix) and v}


def _is_drop(key: str) -> bool:
    if key.startswith("lost."):
        return True
    if key.startswith(("process.", "errors.", "latency.")):
        # what a processor drops is its job (filtering), shown with the processors
        return False
    return any(word in part for part in key.split(".")[1:] for word in _DROP_WORDS)


def _is_error(key: str) -> bool:
    if key.startswith("errors."):
        return True
    if key.startswith(("lost.", "latency.")):
        return False
    return any(part in _ERROR_WORDS for part in key.split(".")[1:])


def summary_data(
    snapshot: dict[str, Any], *, status: str, error: str | None, elapsed: float
) -> dict[str, Any]:
    """The summary as plain data: totals per stage plus every non-zero drop and error counter."""
    counters: dict[str, int] = snapshot.get("counters", {})
    parsers = sorted({k.split(".")[1] for k in counters if k.startswith("parse.")})
    processors = sorted({k.split(".")[1] for k in counters if k.startswith("process.")})
    reporters = sorted({k.split(".")[1] for k in counters if k.startswith("report.")})
    return {
        "status": status,
        "error": error,
        "elapsed_seconds": round(elapsed, 3),
        "read": {
            "packets": counters.get("capture.packets", 0),
            "bytes": counters.get("capture.bytes", 0),
            "batches": counters.get("capture.batches", 0),
        },
        "decoded": counters.get("decode.decoded", counters.get("decode.packets", 0)),
        # frames carrying no IP (ARP, LLDP, an encapsulation the decoder does not know)
        "not_ip": counters.get("decode.ignored.not_ip", 0),
        "parsed": {
            name: {
                "in": counters.get(f"parse.{name}.in", 0),
                "chunks": counters.get(f"parse.{name}.chunks", 0),
                "records": counters.get(f"parse.{name}.records", 0),
            }
            for name in parsers
        },
        "processed": {
            name: {
                "in": counters.get(f"process.{name}.in", 0),
                "out": counters.get(f"process.{name}.out", 0),
            }
            for name in processors
        },
        "reported": {name: counters.get(f"report.{name}.in", 0) for name in reporters},
        "records": {
            "parsed": counters.get("records.parsed", 0),
            "reported": counters.get("records.reported", 0),
        },
        "dropped": {k: v for k, v in sorted(counters.items()) if v and _is_drop(k)},
        "errors": {k: v for k, v in sorted(counters.items()) if v and _is_error(k)},
        "not_seen": {k: counters[k] for k in _NOT_SEEN if counters.get(k)},
        "undelivered": undelivered(counters),
        # records a reporter still held when the run ended (a forced quit, a reporter left
        # behind), and IP datagrams still waiting for fragments: neither delivered nor
        # counted as dropped
        "held": {k: v for k, v in sorted(snapshot.get("gauges", {}).items()) if v and k in _HELD}
        | {
            k: v
            for k, v in sorted(snapshot.get("gauges", {}).items())
            if v and k.startswith("report.") and k.endswith(".buffer_records")
        },
        # every statistic of the run (docs/pipeline.md keys: the parsers' methods, statuses and
        # dialogs, the decoder's reasons, ...), as `otus task status` shows a daemon task's
        "counters": dict(sorted(counters.items())),
        "gauges": dict(sorted(snapshot.get("gauges", {}).items())),
    }


def undelivered(counters: dict[str, int]) -> dict[str, int]:
    """Per reporter, the records handed to it (``report.<r>.in``) that it did not deliver
    (its ``records`` stat: written, acknowledged): dropped, failed or still held. Reporters
    that do not count ``records`` are left out (nothing to compare)."""
    out: dict[str, int] = {}
    for key, handed in counters.items():
        if not (key.startswith("report.") and key.endswith(".in")):
            continue
        name = key[len("report.") : -len(".in")]
        delivered = counters.get(f"report.{name}.records")
        if delivered is not None and handed > delivered:
            out[name] = handed - delivered
    return out


def _n(value: int) -> str:
    return f"{value:,}"


def format_summary(data: dict[str, Any]) -> str:
    """The summary for a terminal, one stage per line (the error, if any, is shown apart)."""
    read = data["read"]
    lines = [f"otus run: {data['status']} in {data['elapsed_seconds']:.1f} s"]
    size = f" ({human_bytes(read['bytes'])})" if read["bytes"] else ""
    lines.append(
        f"  read       {_n(read['packets'])} packets{size} in {_n(read['batches'])} batches"
    )
    not_ip = data.get("not_ip", 0)
    why = f" ({_n(not_ip)} frames without IP ignored)" if not_ip else ""
    lines.append(f"  decoded    {_n(data['decoded'])} packets{why}")
    for name, p in data["parsed"].items():
        src = f"{_n(p['in'])} datagrams"
        if p["chunks"]:
            src += f", {_n(p['chunks'])} stream chunks"
        lines.append(f"  parsed     {name}: {_n(p['records'])} records from {src}")
    for name, p in data["processed"].items():
        lines.append(f"  processed  {name}: {_n(p['in'])} in, {_n(p['out'])} out")
    for name, n in data["reported"].items():
        lines.append(f"  reported   {name}: {_n(n)} records")
    for title, key in (("dropped", "dropped"), ("errors", "errors")):
        items = data[key]
        if not items:
            lines.append(f"  {title:<10} none")
            continue
        for i, (name, n) in enumerate(items.items()):
            lines.append(f"  {title if i == 0 else '':<10} {name}: {_n(n)}")
    for i, (name, n) in enumerate(data.get("not_seen", {}).items()):
        lines.append(f"  {'not seen' if i == 0 else '':<10} {name}: {_n(n)} ({_NOT_SEEN[name]})")
    for name, n in data.get("undelivered", {}).items():
        lines.append(f"  {'not sent':<10} {name}: {_n(n)} of {_n(data['reported'][name])} records")
    for i, (name, n) in enumerate(data.get("held", {}).items()):
        what = _HELD.get(name, "not delivered")
        lines.append(f"  {'held' if i == 0 else '':<10} {name}: {_n(n)} ({what})")
    return "\n".join(lines)
