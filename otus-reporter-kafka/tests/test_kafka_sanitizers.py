"""The Kafka reporter's C code under AddressSanitizer and UBSan: hostile cases plus a bounded
fuzz against the Python path.

``_kafka_fast`` is rebuilt with ``-fsanitize=address,undefined`` into a temporary directory
and driven by ``kafka_fuzz_driver.py`` in a subprocess that preloads the ASan runtime
(``OTUS_FUZZ_SECONDS``, default 15 s). Any sanitizer report, crash, Python exception or C/Python
difference fails the test; a canary out-of-bounds read first proves that reports do fail it.
"""

from __future__ import annotations

import os
from pathlib import Path

import kafka_asan
import pytest

from otus.testing.sanitizers import (
    check_reports_fail,
    fuzz_seconds,
    need_sanitizers,
    run_driver,
)

HERE = Path(__file__).resolve().parent
SECONDS = fuzz_seconds()


@pytest.fixture(scope="module")
def sanitized(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    tmp = tmp_path_factory.mktemp("kafka_asan")
    cc, runtime = need_sanitizers(tmp)
    kafka_asan.build(cc, tmp)
    return cc, runtime, tmp


def test_a_sanitizer_report_fails_the_run(sanitized: tuple[str, str, Path]) -> None:
    check_reports_fail(*sanitized)


def test_hostile_records_and_fuzz_under_asan_and_ubsan(sanitized: tuple[str, str, Path]) -> None:
    _, runtime, tmp = sanitized
    run_driver(
        runtime,
        HERE / "kafka_fuzz_driver.py",
        str(tmp / "_kafka_fast.so"),
        str(SECONDS),
        os.environ.get("OTUS_FUZZ_SEED", "9092"),
        seconds=SECONDS,
    )
