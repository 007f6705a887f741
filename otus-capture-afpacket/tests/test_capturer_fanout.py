"""``workers: 2``: two capture processes in one PACKET_FANOUT group share the traffic by flow."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from afp_helpers import udp_frame

from otus.testing.netns import VethPair, raw_sender

pytestmark = pytest.mark.root

WORKER = Path(__file__).with_name("afp_worker.py")


def test_two_workers_each_get_whole_flows_in_both_directions(veth: VethPair) -> None:
    workers = [
        subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                veth.ns_a,
                sys.executable,
                str(WORKER),
                veth.if_a,
                str(i),
                "2",
                "fanout-task",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        groups = {w.stdout.readline().split()[-1] for w in workers if w.stdout}  # "ready <group>"
        assert len(groups) == 1  # both derived the same group from the task id
        flows = [(veth.ip_b, 10000 + i, veth.ip_a, 5060) for i in range(40)]
        frames = []
        for src, sport, dst, dport in flows:
            for k in range(3):  # request and answer, interleaved: both directions of each flow
                frames.append(udp_frame(src, dst, sport, dport, b"q%d" % k, src_mac=veth.mac_b))
                frames.append(udp_frame(dst, src, dport, sport, b"a%d" % k, src_mac=veth.mac_b))
        with raw_sender(veth.ns_b, veth.if_b) as s:
            for frame in frames:
                s.send(frame)
        outputs = []
        for w in workers:
            w.send_signal(signal.SIGTERM)
            out, err = w.communicate(timeout=10)
            assert w.returncode == 0, err
            outputs.append({tuple(t) for t in json.loads(out.splitlines()[-1])})
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()

    def flow(t: tuple[str, int, str, int]) -> tuple[str, int, str, int]:
        return min(t, (t[2], t[3], t[0], t[1]))

    per_worker = [{flow(t) for t in seen} for seen in outputs]
    assert per_worker[0] | per_worker[1] == {flow(f) for f in flows}  # every flow captured...
    assert not per_worker[0] & per_worker[1]  # ...by exactly one worker
    assert per_worker[0]  # and the kernel did spread them
    assert per_worker[1]
    for seen in outputs:  # each worker saw both directions of its flows
        for f in {flow(t) for t in seen}:
            assert f in seen
            assert (f[2], f[3], f[0], f[1]) in seen
