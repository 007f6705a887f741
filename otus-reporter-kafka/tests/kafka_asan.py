"""Build the Kafka reporter's C extension with AddressSanitizer and UBSan into a directory.

Used by ``test_kafka_sanitizers.py``; the driver ``kafka_fuzz_driver.py`` loads the result in
a subprocess that preloads the ASan runtime (CPython itself is not instrumented).
"""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path

NATIVE = Path(__file__).resolve().parents[1] / "src" / "otus_reporter_kafka" / "_native"
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
FLAGS = ["-g", "-O1", "-fno-omit-frame-pointer", "-fPIC", "-shared", *SANITIZE]


def compiler(tmp: Path) -> str | None:
    """gcc (or clang) when it can build and link a sanitized shared object, else None."""
    cc = shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return None
    probe = tmp / "probe.c"
    probe.write_text("int probe(int x) { return x + 1; }\n")
    ok = subprocess.run(
        [cc, *FLAGS, str(probe), "-o", str(tmp / "probe.so")], capture_output=True, check=False
    )
    return cc if ok.returncode == 0 else None


def asan_runtime(cc: str) -> str | None:
    """Path of the ASan runtime to preload into an uninstrumented python, or None."""
    out = subprocess.run(
        [cc, "-print-file-name=libasan.so"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return out if out and Path(out).is_absolute() and Path(out).exists() else None


def build(cc: str, out: Path, extra: tuple[str, ...] = ()) -> Path:
    """``_kafka_fast.so`` built with the sanitizers into ``out`` (``extra``: more flags)."""
    out.mkdir(parents=True, exist_ok=True)
    include = sysconfig.get_paths()["include"]
    fast = out / "_kafka_fast.so"
    subprocess.run(
        [cc, *FLAGS, "-std=c11", "-Wall", "-Wextra", f"-I{include}", *extra,
         str(NATIVE / "kafka_fast.c"), "-o", str(fast)],
        check=True,
    )  # fmt: skip
    return fast
