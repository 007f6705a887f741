"""Build the SIP parser's C extensions with AddressSanitizer and UBSan into a directory.

Used by ``test_sip_sanitizers.py``; the driver ``sip_fuzz_driver.py`` loads the result in a
subprocess that preloads the ASan runtime (``otus.testing.sanitizers``).
"""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

from otus.testing.sanitizers import build_extension

NATIVE = Path(__file__).resolve().parents[1] / "src" / "otus_parser_sip" / "_native"
FAST_SOURCES = (
    "sip_fast.c", "sip_json.c", "sip_sdp.c", "sip_batch.c", "sip_dialog.c", "sip_media.c",
    "sip_scan.c",
)  # fmt: skip


def build(cc: str, out: Path) -> tuple[Path, Path]:
    """``(_sip_fast .so, _sip_native .so)`` built with the sanitizers into ``out``."""
    fast = build_extension(
        cc, [NATIVE / s for s in FAST_SOURCES], out / "_sip_fast.so", includes=[NATIVE]
    )
    ffi = FFI()
    ffi.cdef((NATIVE / "sip_scan.cdef").read_text())
    ffi.set_source("otus_parser_sip._native._sip_native", '#include "sip_scan.h"\n')
    glue = out / "_sip_native.c"
    ffi.emit_c_code(str(glue))
    native = build_extension(
        cc, [glue, NATIVE / "sip_scan.c"], out / "_sip_native.so", includes=[NATIVE], extra=()
    )
    return fast, native
