"""otus.testing.netns: a veth pair between two namespaces that carries traffic and is removed."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from otus.testing import need_root, need_tool
from otus.testing.netns import inside, veth_pair

pytestmark = pytest.mark.root


def test_a_datagram_crosses_the_pair_and_the_namespaces_go_away() -> None:
    need_root()
    need_tool("ip")
    with veth_pair(mtu=1400) as veth:
        with inside(veth.ns_a):
            rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with rx:
            rx.bind((veth.ip_a, 0))
            rx.settimeout(5)
            port = rx.getsockname()[1]
            veth.run_b(sys.executable, "-c", "import socket; socket.socket(socket.AF_INET, "
                       f"socket.SOCK_DGRAM).sendto(b'hi', ('{veth.ip_a}', {port}))")  # fmt: skip
            data, (src, _) = rx.recvfrom(100)
        assert data == b"hi"
        assert src == veth.ip_b
        link = subprocess.run(veth.command_a("ip", "-o", "link", "show", veth.if_a),
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
        assert "mtu 1400" in link
        assert len(veth.mac_b) == 6
        names = (veth.ns_a, veth.ns_b)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(name in listed for name in names)
