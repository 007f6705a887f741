"""AF_PACKET capture rate on a veth pair: Otus (capture + decode + SIP classify) vs tcpdump.

Needs root. Builds two namespaces joined by a veth pair; a small C sender (compiled here, one
``sendmmsg`` loop on a packet socket) in namespace B floods 60-byte UDP frames (64 flows, one
frame in 64 a SIP OPTIONS to port 5060) at the highest rate it can; the capture runs in
namespace A. Rows:

* live: Otus with its default options for a few seconds, then ``tcpdump -w /dev/null`` on the
  same load: packets captured, kernel drops, CPU of the capture stage, peak RSS of the worker;
* drained ring: the ring is filled while nobody reads, then read as fast as possible: the
  per-core ceiling of capture alone and of capture + decode + classify.

``python bench/bench_afpacket.py [--quick]`` prints the rows. Every figure is measured (median
of several runs), never assumed.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SENDER_C = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FRAMES 64
#define BATCH 256

static unsigned short csum(const unsigned char *p, int n) {
    unsigned long s = 0;
    for (int i = 0; i < n; i += 2) s += (p[i] << 8) | p[i + 1];
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return (unsigned short)~s;
}

int main(int argc, char **argv) {
    const char *ifname = argv[1];
    double seconds = atof(argv[2]);
    long long limit = argc > 3 ? atoll(argv[3]) : -1;
    int fd = socket(AF_PACKET, SOCK_RAW, 0);
    int one = 1;
    setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
    struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_ifindex = (int)if_nametoindex(ifname)};
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll) != 0) { perror("bind"); return 1; }
    static unsigned char frames[FRAMES][128];
    int lens[FRAMES];
    for (int f = 0; f < FRAMES; f++) {
        unsigned char *p = frames[f];
        const char *sip = "OPTIONS sip:a@b SIP/2.0\r\n\r\n";
        int plen = f == 0 ? (int)strlen(sip) : 18;
        memcpy(p, "\x02\x00\x00\x00\x00\x99\x02\x00\x00\x00\x00\x01\x08\x00", 14);
        unsigned char *ip = p + 14;
        memset(ip, 0, 20);
        ip[0] = 0x45; ip[8] = 64; ip[9] = 17;
        int tot = 20 + 8 + plen;
        ip[2] = tot >> 8; ip[3] = tot & 0xff;
        ip[12] = 10; ip[13] = 99; ip[14] = 0; ip[15] = 2;
        ip[16] = 10; ip[17] = 99; ip[18] = 0; ip[19] = 1;
        unsigned short c = csum(ip, 20); ip[10] = c >> 8; ip[11] = c & 0xff;
        unsigned char *udp = ip + 20;
        int sport = 20000 + f, dport = f == 0 ? 5060 : 30000 + f;
        udp[0] = sport >> 8; udp[1] = sport & 0xff; udp[2] = dport >> 8; udp[3] = dport & 0xff;
        udp[4] = (8 + plen) >> 8; udp[5] = (8 + plen) & 0xff; udp[6] = udp[7] = 0;
        if (f == 0) memcpy(udp + 8, sip, plen); else memset(udp + 8, 0x80 + f, plen);
        lens[f] = 14 + tot;
    }
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = frames[i % FRAMES]; iov[i].iov_len = lens[i % FRAMES];
        msgs[i].msg_hdr.msg_iov = &iov[i]; msgs[i].msg_hdr.msg_iovlen = 1;
    }
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long long sent = 0;
    for (;;) {
        int n = BATCH;
        if (limit >= 0 && limit - sent < n) n = (int)(limit - sent);
        if (n <= 0) break;
        int r = sendmmsg(fd, msgs, n, 0);
        if (r > 0) sent += r;
        if ((sent & 0x3fff) < BATCH) {
            clock_gettime(CLOCK_MONOTONIC, &t);
            if ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 >= seconds) break;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t);
    printf("%lld %.6f\n", sent, (t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}
"""


# -- worker modes (run inside namespace A through `ip netns exec`) ------------------------------


def _decoder() -> object:
    from otus import Interest
    from otus._decode.decoder import Decoder
    from otus._decode.options import DecoderOptions

    return Decoder(
        DecoderOptions(), [Interest(frozenset({"udp"}), frozenset({5060}), detector="sip")]
    )


def _live_worker(iface: str, seconds: float) -> None:
    """Capture + decode + classify with the default options for ``seconds``; print JSON."""
    from otus_capture_afpacket._capturer import AfPacketCapturer
    from otus_capture_afpacket.options import AfPacketOptions

    decoder = _decoder()
    cap = AfPacketCapturer(AfPacketOptions(interface=iface))
    cap.open()
    print("ready", flush=True)
    sys.stdin.readline()  # "go": the sender starts now
    threading.Timer(seconds, cap.stop).start()
    cpu0, decode_cpu, sip = time.process_time(), 0.0, 0
    for batch in cap.batches():
        d0 = time.process_time()
        decoded = decoder.decode(batch)  # type: ignore[attr-defined]
        sip += decoded.wanted(0)
        del decoded
        batch.release()
        decode_cpu += time.process_time() - d0
    cpu = time.process_time() - cpu0
    stats = cap.stats()
    cap.close()
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"packets": stats["packets"], "drops": stats["drops.kernel"], "cpu": cpu,
              "decode_cpu": decode_cpu, "sip": sip, "rss_mib": rss_mib}  # fmt: skip
    print(json.dumps(result), flush=True)


def _drained_worker(iface: str, decode: bool) -> None:
    """Open a 64 MiB ring, let the sender fill it, then read it all as fast as possible."""
    from otus_capture_afpacket._capturer import AfPacketCapturer
    from otus_capture_afpacket.options import AfPacketOptions

    decoder = _decoder() if decode else None
    cap = AfPacketCapturer(AfPacketOptions(interface=iface, block_count=64))
    cap.open()
    print("ready", flush=True)
    sys.stdin.readline()  # the ring is full now
    time.sleep(0.05)  # let the last partially filled block time out
    stats = cap.stats()
    waiting = stats["kernel.packets"] - stats["drops.kernel"]
    read = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    for batch in cap.batches():
        read += batch.count
        if decoder is not None:
            decoded = decoder.decode(batch)  # type: ignore[attr-defined]
            decoded.wanted(0)
            del decoded
        batch.release()
        if read >= waiting:
            break
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    cap.close()
    print(json.dumps({"packets": read, "cpu": cpu, "wall": wall}), flush=True)


# -- orchestration -------------------------------------------------------------------------------


def _sh(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


class _Veth:
    def __init__(self) -> None:
        tag = f"{os.getpid()}b"
        self.ns_a, self.ns_b, self.if_a, self.if_b = (
            f"otbA{tag}",
            f"otbB{tag}",
            f"ba{tag}",
            f"bb{tag}",
        )

    def __enter__(self) -> _Veth:
        _sh("ip", "netns", "add", self.ns_a)
        _sh("ip", "netns", "add", self.ns_b)
        _sh("ip", "link", "add", self.if_a, "netns", self.ns_a, "type", "veth", "peer", "name",
            self.if_b, "netns", self.ns_b)  # fmt: skip
        for ns, ifname in ((self.ns_a, self.if_a), (self.ns_b, self.if_b)):
            _sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            _sh("ip", "-n", ns, "link", "set", ifname, "up")
        return self

    def __exit__(self, *exc: object) -> None:
        for ns in (self.ns_a, self.ns_b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def _send(veth: _Veth, sender: Path, seconds: float, limit: int = -1) -> tuple[int, float]:
    out = _sh("ip", "netns", "exec", veth.ns_b, str(sender), veth.if_b, str(seconds), str(limit))
    sent, wall = out.split()
    return int(sent), float(wall)


def _worker(veth: _Veth, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", veth.ns_a, sys.executable, __file__, *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError(f"worker {args} did not start")
    return proc


def _finish(proc: subprocess.Popen[str]) -> dict[str, float]:
    out, _ = proc.communicate(timeout=60)
    return dict(json.loads(out.strip().splitlines()[-1]))


def _live_otus(veth: _Veth, sender: Path, seconds: float) -> dict[str, float]:
    proc = _worker(veth, "--live", veth.if_a, str(seconds + 0.5))
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    sent, wall = _send(veth, sender, seconds)
    res = _finish(proc)
    return {**res, "sent": sent, "send_wall": wall}


def _cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _live_tcpdump(veth: _Veth, sender: Path, seconds: float) -> dict[str, float]:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", veth.ns_a, "tcpdump", "-i", veth.if_a, "-n", "-w", "/dev/null"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    proc.stderr.readline()  # "tcpdump: listening on ..."
    cpu0 = _cpu_of(proc.pid)
    sent, wall = _send(veth, sender, seconds)
    time.sleep(0.5)
    cpu = _cpu_of(proc.pid) - cpu0
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=20)[1]
    counts = {line.split(" packet")[0]: line for line in err.splitlines() if " packet" in line}
    captured = next(int(k) for k, v in counts.items() if "captured" in v)
    dropped = next(int(k) for k, v in counts.items() if "dropped by kernel" in v)
    return {"packets": captured, "drops": dropped, "cpu": cpu, "sent": sent, "send_wall": wall}


def _drained(veth: _Veth, sender: Path, decode: bool) -> dict[str, float]:
    proc = _worker(veth, "--drained", veth.if_a, "1" if decode else "0")
    _send(veth, sender, 5.0, 600_000)  # more than the 64 MiB ring holds
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    return _finish(proc)


def _compile_sender(tmp: Path) -> Path:
    src, exe = tmp / "sender.c", tmp / "sender"
    src.write_text(SENDER_C)
    _sh("cc", "-O2", "-o", str(exe), str(src))
    return exe


def run(quick: bool) -> list[dict[str, object]]:
    if os.geteuid() != 0:
        note = "not measured: needs root (network namespaces)"
        return [{"stage": "afpacket", "otus_rate": 0.0, "unit": "pkt/s", "peer": None,
                 "peer_rate": None, "note": note}]  # fmt: skip
    runs, seconds = (3, 2.0) if quick else (5, 4.0)
    with tempfile.TemporaryDirectory() as tmp, _Veth() as veth:
        sender = _compile_sender(Path(tmp))
        otus = [_live_otus(veth, sender, seconds) for _ in range(runs)]
        tcpdump = [_live_tcpdump(veth, sender, seconds) for _ in range(runs)]
        capture_only = [_drained(veth, sender, decode=False) for _ in range(runs)]
        full = [_drained(veth, sender, decode=True) for _ in range(runs)]

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    def rate(rows: list[dict[str, float]]) -> float:
        return statistics.median(r["packets"] / r["send_wall"] for r in rows)

    def per_core(rows: list[dict[str, float]]) -> float:
        return statistics.median(r["packets"] / max(r["cpu"], 1e-9) for r in rows)

    def share(rows: list[dict[str, float]]) -> str:
        return f"{statistics.median(r['packets'] / r['sent'] for r in rows):.2%}"

    offered = statistics.median(r["sent"] / r["send_wall"] for r in otus + tcpdump)
    capture_cpu = statistics.median((r["cpu"] - r["decode_cpu"]) / r["send_wall"] for r in otus)
    total_cpu = statistics.median(r["cpu"] / r["send_wall"] for r in otus)
    tcpdump_cpu = statistics.median(r["cpu"] / r["send_wall"] for r in tcpdump)
    return [
        {
            "stage": "afpacket live veth: capture+decode+classify",
            "otus_rate": rate(otus),
            "unit": "pkt/s",
            "peer": "tcpdump -w /dev/null",
            "peer_rate": rate(tcpdump),
            "note": (
                f"offered {offered:,.0f} pkt/s of 60-byte UDP; per {seconds:g}s run (median of"
                f" {runs}): otus captured {share(otus)} of what was sent, kernel drops"
                f" {med(otus, 'drops'):,.0f}, capture stage {capture_cpu:.1%} of a core"
                f" (whole worker {total_cpu:.1%}), peak RSS {med(otus, 'rss_mib'):.0f} MiB;"
                f" tcpdump captured {share(tcpdump)}, drops {med(tcpdump, 'drops'):,.0f},"
                f" CPU {tcpdump_cpu:.1%}"
            ),
        },
        {
            "stage": "afpacket drained ring: capture only",
            "otus_rate": per_core(capture_only),
            "unit": "pkt/s",
            "peer": None,
            "peer_rate": None,
            "note": f"per core, 64 MiB ring filled first, {med(capture_only, 'packets'):,.0f} pkts",
        },
        {
            "stage": "afpacket drained ring: capture+decode+classify",
            "otus_rate": per_core(full),
            "unit": "pkt/s",
            "peer": None,
            "peer_rate": None,
            "note": "per core, otus._decode Decoder with a SIP interest (port 5060 + detector)",
        },
    ]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--live"]:
        _live_worker(sys.argv[2], float(sys.argv[3]))
    elif sys.argv[1:2] == ["--drained"]:
        _drained_worker(sys.argv[2], sys.argv[3] == "1")
    else:
        for row in run("--quick" in sys.argv):
            print(row)
