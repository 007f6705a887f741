"""Real-time pacing: the sleeps requested follow capture time divided by the speed."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from otus._capture_pcap.capturer import PcapCapturer
from otus._capture_pcap.options import PcapOptions
from otus.capture import PACKET_DESC

from .pcapfiles import Pkt, pcap_file

T0 = 1_700_000_000_000_000_000


class FakeClock:
    """Time that moves only when slept; records every sleep."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.mark.parametrize("speed", [1.0, 2.0, 0.5])
def test_batches_leave_at_capture_time_over_speed(tmp_path: Path, speed: float) -> None:
    # 200 packets 5 ms apart: 1 s of capture
    pkts = [Pkt(T0 + i * 5_000_000, bytes([i & 0xFF]) * 60) for i in range(200)]
    path = tmp_path / "p.pcap"
    path.write_bytes(pcap_file(pkts, nano=True))
    fake = FakeClock()
    cap = PcapCapturer(PcapOptions(path=str(path), speed=speed), clock=fake.clock, sleep=fake.sleep)
    cap.open()
    n = 0
    first_ts = T0
    for batch in cap.batches():
        first_ts = PACKET_DESC.unpack_from(batch.descs, 0)[0]
        last_ts = PACKET_DESC.unpack_from(batch.descs, (batch.count - 1) * 32)[0]
        # leaving exactly when the first packet is due, and spanning little capture time
        assert fake.now == pytest.approx(100.0 + (first_ts - T0) / 1e9 / speed)
        assert last_ts - first_ts <= 0.01 * speed * 1e9
        n += batch.count
        batch.release()
    cap.close()
    assert n == 200
    assert sum(fake.sleeps) == pytest.approx((first_ts - T0) / 1e9 / speed)
    assert (first_ts - T0) / 1e9 > 0.95  # the last batch starts near the end
    assert max(fake.sleeps) <= 0.05  # sliced, so stop() is noticed


def test_stop_from_another_thread_ends_a_paced_replay(tmp_path: Path) -> None:
    # two packets an hour apart at real time: only stop() can end this promptly
    pkts = [Pkt(T0, b"a" * 60), Pkt(T0 + 3600 * 10**9, b"b" * 60)]
    path = tmp_path / "slow.pcap"
    path.write_bytes(pcap_file(pkts, nano=True))
    cap = PcapCapturer(PcapOptions(path=str(path), speed=1.0))
    cap.open()
    got = []
    timer = threading.Timer(0.2, cap.stop)
    timer.start()
    try:
        for batch in cap.batches():
            got.append(batch.count)
            batch.release()
    finally:
        timer.cancel()
        cap.close()
    assert got == [1]


@pytest.mark.parametrize("speed", [float("inf"), 1e308, 2e6])
def test_a_speed_beyond_a_million_times_real_time_is_refused(speed: float) -> None:
    """Before, inf passed validation and the replay died on 'cannot convert float infinity'."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="speed"):
        PcapOptions(path="x.pcap", speed=speed)
    assert PcapOptions(path="x.pcap", speed=1e6).speed == 1e6
