"""cffi build script for ``otus._native._otus_native`` (out-of-line API mode).

Run by setuptools at build time only; runtime code imports the compiled module lazily
through ``otus._native``. C declarations for Python live in the ``*.cdef`` files (one per
area: batch, decode, pcap, ...), C headers in ``*.h`` and sources in ``*.c``; each area adds
its own files, nothing is listed here.
"""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent

ffibuilder = FFI()
ffibuilder.cdef("\n".join(p.read_text() for p in sorted(HERE.glob("*.cdef"))))
ffibuilder.set_source(
    "otus._native._otus_native",
    "".join(f'#include "{p.name}"\n' for p in sorted(HERE.glob("*.h"))),
    sources=[str(p.relative_to(HERE.parents[2])) for p in sorted(HERE.glob("*.c"))],
    include_dirs=[str(HERE)],
    extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wextra", "-fno-strict-aliasing"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
