"""Registration: the entry point, the spec, cheap imports, and the descriptor layout."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import otus
from otus.capture import PACKET_DESC
from otus_capture_afpacket import plugin
from otus_capture_afpacket.options import AfPacketOptions


def test_entry_point_registers_the_plugin_module() -> None:
    (ep,) = [ep for ep in entry_points(group="otus.plugins") if ep.name == "afpacket"]
    assert ep.value == "otus_capture_afpacket.plugin"


def test_spec() -> None:
    (spec,) = plugin.otus_capturers()
    assert isinstance(spec, otus.CapturerSpec)
    assert spec.name == "afpacket"
    assert spec.options_model is AfPacketOptions


def test_importing_the_plugin_does_not_load_the_extension() -> None:
    code = (
        "import sys, otus_capture_afpacket.plugin as p; p.otus_capturers();"
        "print('otus_capture_afpacket._native._afpacket' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "False"
    # ...while validating a filter does load it (so the check above can tell the difference).
    code = code.replace("p.otus_capturers();", "p.AfPacketOptions(bpf='udp');")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "True"


def test_factory_builds_a_capturer_without_opening_anything() -> None:
    (spec,) = plugin.otus_capturers()
    cap = spec.factory(AfPacketOptions(interface="lo"), otus.PluginContext(task_id="t", workers=2))
    assert isinstance(cap, otus.Capturer)
    assert cap.stats()["packets"] == 0


def test_descriptor_layout_matches_otus_core() -> None:
    from otus_capture_afpacket._native import load

    ffi, _ = load()
    assert ffi.sizeof("otus_pkt_t") == PACKET_DESC.size == 32
    fields = [
        "ts_ns",
        "offset",
        "caplen",
        "wirelen",
        "ifindex",
        "linktype",
        "vlan_tci",
        "vlan_tpid",
        "flags",
    ]
    fmt = PACKET_DESC.format
    codes = fmt[1:] if fmt[0] in "=<>@!" else fmt
    for i, name in enumerate(fields):
        import struct

        assert ffi.offsetof("otus_pkt_t", name) == struct.calcsize("=" + codes[:i]), name
        assert ffi.sizeof(ffi.typeof("otus_pkt_t").fields[i][1].type) == struct.calcsize(
            "=" + codes[i]
        )
