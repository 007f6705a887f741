"""One capture worker process for the fanout test: ``python afp_worker.py IFACE ID WORKERS TASK``.

Runs inside the capture namespace (started with ``ip netns exec``), prints ``ready`` once it has
joined the fanout group, captures until SIGTERM, then prints one JSON line: the UDP 4-tuples
(src, sport, dst, dport) of every packet it received.
"""

from __future__ import annotations

import json
import signal
import socket
import struct
import sys

from otus import PluginContext
from otus.capture import PACKET_DESC
from otus_capture_afpacket._capturer import AfPacketCapturer
from otus_capture_afpacket.options import AfPacketOptions


def main() -> None:
    iface, pipeline_id, workers, task_id = (
        sys.argv[1],
        int(sys.argv[2]),
        int(sys.argv[3]),
        sys.argv[4],
    )
    opts = AfPacketOptions(interface=iface, bpf="udp", block_size=65536, block_count=8,
                           snaplen=256, block_timeout_ms=5)  # fmt: skip
    cap = AfPacketCapturer(
        opts, PluginContext(task_id=task_id, pipeline_id=pipeline_id, workers=workers)
    )
    cap.open()
    signal.signal(signal.SIGTERM, lambda *_: cap.stop())
    print("ready", cap.fanout_group, flush=True)
    seen = []
    for batch in cap.batches():
        data = bytes(batch.data)
        for _, off, *_rest in PACKET_DESC.iter_unpack(bytes(batch.descs)):
            ip = data[off + 14 : off + 34]
            sport, dport = struct.unpack_from("!HH", data, off + 34)
            seen.append((socket.inet_ntoa(ip[12:16]), sport, socket.inet_ntoa(ip[16:20]), dport))
        batch.release()
    cap.close()
    print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    main()
