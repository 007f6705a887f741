"""cffi build script for ``otus_parser_sip._native._sip_native`` (out-of-line API mode).

Run by setuptools at build time only (``setup.py`` names it); the parser imports the compiled
module lazily through ``otus_parser_sip._scan`` and falls back to pure Python without it.
"""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent

ffibuilder = FFI()
ffibuilder.cdef((HERE / "sip_scan.cdef").read_text())
ffibuilder.set_source(
    "otus_parser_sip._native._sip_native",
    '#include "sip_scan.h"\n',
    sources=[str((HERE / "sip_scan.c").relative_to(HERE.parents[2]))],
    include_dirs=[str(HERE)],
    extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wextra"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
