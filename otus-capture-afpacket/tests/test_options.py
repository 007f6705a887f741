"""The options model: defaults that work, geometry validated as a whole, BPF errors quoted."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from otus_capture_afpacket.options import FRAME_OVERHEAD, AfPacketOptions, FanoutOptions, MiB


def test_defaults_are_valid_and_fit_the_memory_budget() -> None:
    opts = AfPacketOptions()
    assert opts.ring_bytes <= 64 * MiB
    assert opts.snaplen + FRAME_OVERHEAD <= opts.block_size
    assert opts.any_interface
    assert opts.fanout == FanoutOptions(mode="hash", defrag=True)


def test_sizes_accept_units() -> None:
    opts = AfPacketOptions(block_size="2MiB", block_count=8, max_ring_memory="16MiB")
    assert opts.block_size == 2 * MiB
    assert opts.ring_bytes == 16 * MiB


def test_snaplen_that_does_not_fit_a_block_says_what_to_change() -> None:
    with pytest.raises(
        ValidationError,
        match=r"snaplen 65535 does not fit in a block of 65536 bytes.*block_size to at least 69632",
    ):
        AfPacketOptions(block_size=65536)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"block_size": 1000 * 1000}, "multiple of the page size"),
        ({"frame_size": 1000}, "frame_size 1000 must be at least 128 and a multiple of 16"),
        ({"block_size": 1 * MiB, "frame_size": 48 * 1024}, "multiple of frame_size"),
        (
            {"block_count": 128},
            r"ring of 128 MiB \(block_size 1 MiB x block_count 128\) exceeds max_ring_memory 64",
        ),
        ({"cpus": [0, 0]}, "distinct CPU numbers"),
        # Was ignored without a word: no interface was put in promiscuous mode.
        ({"promiscuous": True}, r"promiscuous needs a named interface; with 'any'"),
        # The kernel takes a block size below 2 GiB (an int) and a frame count in 32 bits;
        # beyond, open() failed with "'I' format requires 0 <= number <= 4294967295" or EINVAL.
        (
            {"block_size": "4GiB", "max_ring_memory": "64GiB"},
            r"block_size 4 GiB: the kernel takes blocks below 2 GiB",
        ),
        (
            {"block_size": "2GiB", "max_ring_memory": "64GiB"},
            r"block_size 2 GiB: the kernel takes blocks below 2 GiB",
        ),
        (
            {
                "block_size": "1GiB",
                "frame_size": 128,
                "block_count": 1024,
                "max_ring_memory": "1TiB",
            },
            r"1024 blocks of 8388608 frames .* the kernel counts frames in 32 bits",
        ),
        ({"snaplen": 10}, "greater than or equal to 64"),
    ],
)
def test_bad_geometry_is_a_clear_error(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AfPacketOptions(**fields)  # type: ignore[arg-type]


def test_raising_the_memory_limit_allows_a_larger_ring() -> None:
    assert AfPacketOptions(block_count=128, max_ring_memory="256MiB").ring_bytes == 128 * MiB


def test_typos_are_rejected() -> None:
    with pytest.raises(ValidationError, match="snap_len"):
        AfPacketOptions(snap_len=100)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match=r"fanout\.groupid"):
        AfPacketOptions(fanout={"groupid": 3})  # type: ignore[arg-type]


def test_bpf_syntax_error_quotes_libpcap() -> None:
    with pytest.raises(ValidationError, match=r"bad BPF filter 'udp prot 5060': .*syntax error"):
        AfPacketOptions(bpf="udp prot 5060")


def test_valid_bpf_and_fragment_form_validate() -> None:
    assert AfPacketOptions(bpf="udp port 5060", bpf_keep_fragments=True).bpf == "udp port 5060"


def test_fanout_group_is_stable_per_task_and_overridable() -> None:
    fan = FanoutOptions()
    assert fan.group_for("task-a") == fan.group_for("task-a")
    assert fan.group_for("task-a") != fan.group_for("task-b")
    assert 0 <= fan.group_for("task-a") <= 0xFFFF
    assert FanoutOptions(group_id=7).group_for("task-a") == 7
