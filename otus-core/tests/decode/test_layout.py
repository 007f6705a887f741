"""The Python view of ``otus_dec_t`` matches the compiled struct; batch buffers of any kind."""

from __future__ import annotations

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from otus import RawBatch, RawBatchBuilder
from otus._decode.decoder import Decoder
from otus._decode.layout import FIELDS, entry_struct
from otus._decode.options import DecoderOptions
from otus._native import load


def test_entry_struct_covers_the_c_layout() -> None:
    ffi, _ = load()
    st = entry_struct(ffi)
    assert st.size == ffi.sizeof("otus_dec_t")
    c_fields = {name for name, _ in ffi.typeof("otus_dec_t").fields} - {"reserved"}
    assert {name for name, _ in FIELDS} == c_fields


def test_decode_accepts_bytearray_memoryview_and_cdata() -> None:
    ffi, _ = load()
    frame = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / Raw(b"hi"))
    b = RawBatchBuilder()
    b.add(frame, ts_ns=5)
    raw = b.build()
    dec = Decoder(DecoderOptions(), [])
    cdata = ffi.new("uint8_t[]", raw.data)
    descs = ffi.new("otus_pkt_t[]", 1)
    ffi.memmove(descs, raw.descs, len(raw.descs))
    for data, d in [
        (bytearray(raw.data), raw.descs),
        (memoryview(raw.data), bytearray(raw.descs)),
        (cdata, descs),
    ]:
        out = dec.decode(RawBatch(data, d, 1))
        assert out.row(0)["payload"] == b"hi"
        assert out.row(0)["src"] == "10.0.0.1"
    assert dec.stats()["packets"] == 3
