"""The Kafka reporter's C code under AddressSanitizer and UBSan: hostile cases plus a bounded
fuzz against the Python path.

``_kafka_fast`` is rebuilt with ``-fsanitize=address,undefined`` into a temporary directory
and driven by ``kafka_fuzz_driver.py`` in a subprocess that preloads the ASan runtime
(``OTUS_FUZZ_SECONDS``, default 15 s). Any sanitizer report, crash, Python exception or C/Python
difference fails the test; a canary out-of-bounds read first proves that reports do fail it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import kafka_asan
import pytest

from otus.testing import need

HERE = Path(__file__).resolve().parent
SECONDS = float(os.environ.get("OTUS_FUZZ_SECONDS", "15"))
CANARY = """
#include <stdlib.h>
int canary(int k) { char *p = malloc(8); int v = p[k]; free(p); return v; }
"""


@pytest.fixture(scope="module")
def sanitized(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    tmp = tmp_path_factory.mktemp("kafka_asan")
    cc = kafka_asan.compiler(tmp)
    need(cc is not None, "a C compiler with AddressSanitizer and UBSan (gcc or clang) is needed")
    assert cc is not None
    runtime = kafka_asan.asan_runtime(cc)
    need(runtime is not None, f"{cc} does not ship a preloadable libasan.so")
    assert runtime is not None
    kafka_asan.build(cc, tmp)
    return cc, runtime, tmp


def _env(runtime: str) -> dict[str, str]:
    return {
        **os.environ,
        "LD_PRELOAD": runtime,
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",  # CPython leaks at exit
        "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
        "PYTHONMALLOC": "malloc",  # every object its own allocation, with ASan redzones
    }


def test_a_sanitizer_report_fails_the_run(sanitized: tuple[str, str, Path]) -> None:
    cc, runtime, tmp = sanitized
    src = tmp / "canary.c"
    src.write_text(CANARY)
    subprocess.run([cc, *kafka_asan.FLAGS, str(src), "-o", str(tmp / "canary.so")], check=True)
    code = f"import ctypes; ctypes.CDLL({str(tmp / 'canary.so')!r}).canary(%d)"
    ok = subprocess.run(
        [sys.executable, "-c", code % 3], env=_env(runtime), capture_output=True, check=False
    )
    assert ok.returncode == 0, ok.stderr[-2000:]
    bad = subprocess.run(
        [sys.executable, "-c", code % 9], env=_env(runtime), capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert bad.returncode != 0
    # UBSan's object-size check or ASan's redzone, whichever sees it first
    assert "runtime error: load of address" in bad.stderr or "heap-buffer-overflow" in bad.stderr


def test_hostile_records_and_fuzz_under_asan_and_ubsan(sanitized: tuple[str, str, Path]) -> None:
    _, runtime, tmp = sanitized
    run = subprocess.run(
        [sys.executable, str(HERE / "kafka_fuzz_driver.py"), str(tmp / "_kafka_fast.so"),
         str(SECONDS), os.environ.get("OTUS_FUZZ_SEED", "9092")],
        env=_env(runtime), capture_output=True, text=True, timeout=SECONDS + 120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-6000:]
    assert "fuzz ok" in run.stdout
    assert "ERROR: AddressSanitizer" not in run.stderr
    assert "runtime error:" not in run.stderr
