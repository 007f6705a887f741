"""Helpers for the decoder tests: decode frames, and an independent oracle (scapy/dpkt)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from otus import Interest, RawBatchBuilder
from otus._decode.decoder import DecodedBatch, Decoder
from otus._decode.options import DecoderOptions

Frame = bytes | tuple[bytes, int]  # a frame, or (frame, linktype)


def decode_frames(
    frames: Sequence[Frame],
    interests: Sequence[Interest] = (),
    options: DecoderOptions | None = None,
    decoder: Decoder | None = None,
    **add: Any,
) -> tuple[Decoder, DecodedBatch]:
    """Decode ``frames`` as one batch (Ethernet unless given as ``(frame, linktype)``)."""
    dec = decoder or Decoder(options or DecoderOptions(), interests)
    b = RawBatchBuilder()
    for i, f in enumerate(frames):
        frame, linktype = f if isinstance(f, tuple) else (f, 1)
        b.add(frame, ts_ns=1_000_000_000 + i, linktype=linktype, **add)
    return dec, dec.decode(b.build())


@pytest.fixture
def decode() -> Callable[..., tuple[Decoder, DecodedBatch]]:
    return decode_frames
