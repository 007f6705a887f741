"""cffi build script for ``otus_capture_afpacket._native._afpacket`` (out-of-line API mode).

Run by setuptools at build time only; runtime code imports the compiled module lazily through
:func:`otus_capture_afpacket._native.load`. Declarations for Python are in ``afpacket.cdef``.
"""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[2]  # setuptools wants source paths relative to the project directory

ffibuilder = FFI()
ffibuilder.cdef((HERE / "afpacket.cdef").read_text())
ffibuilder.set_source(
    "otus_capture_afpacket._native._afpacket",
    '#include "afpacket.h"\n',
    sources=[str((HERE / "afpacket.c").relative_to(PROJECT))],
    include_dirs=[str(HERE)],
    libraries=["pcap"],
    extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-fno-strict-aliasing"],
)

# After changing the C code rebuild in place:
#   pip install -e otus-capture-afpacket --no-build-isolation
