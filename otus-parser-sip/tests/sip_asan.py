"""Build the SIP parser's C extensions with AddressSanitizer and UBSan into a directory.

Used by ``test_sip_sanitizers.py``; the driver ``sip_fuzz_driver.py`` loads the result in a
subprocess that preloads the ASan runtime (CPython itself is not instrumented).
"""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path

from cffi import FFI

NATIVE = Path(__file__).resolve().parents[1] / "src" / "otus_parser_sip" / "_native"
FAST_SOURCES = (
    "sip_fast.c", "sip_json.c", "sip_sdp.c", "sip_batch.c", "sip_dialog.c", "sip_scan.c",
)  # fmt: skip
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


def build(cc: str, out: Path) -> tuple[Path, Path]:
    """``(_sip_fast .so, _sip_native .so)`` built with the sanitizers into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    include = sysconfig.get_paths()["include"]
    fast = out / "_sip_fast.so"
    subprocess.run(
        [cc, *FLAGS, "-std=c11", "-Wall", f"-I{include}", f"-I{NATIVE}",
         *(str(NATIVE / s) for s in FAST_SOURCES), "-o", str(fast)],
        check=True,
    )  # fmt: skip
    ffi = FFI()
    ffi.cdef((NATIVE / "sip_scan.cdef").read_text())
    ffi.set_source("otus_parser_sip._native._sip_native", '#include "sip_scan.h"\n')
    glue = out / "_sip_native.c"
    ffi.emit_c_code(str(glue))
    native = out / "_sip_native.so"
    subprocess.run(
        [cc, *FLAGS, f"-I{include}", f"-I{NATIVE}", str(glue), str(NATIVE / "sip_scan.c"),
         "-o", str(native)],
        check=True,
    )  # fmt: skip
    return fast, native
