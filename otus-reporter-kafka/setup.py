"""Build glue for the optional C fast path; all metadata lives in pyproject.toml.

``_kafka_fast`` (CPython API) encodes record bodies and records sections; it is optional: with
no C compiler the wheel still installs and the reporter uses the same encoding in Python.
With the lz4 and zstd development headers (Debian: ``liblz4-dev``, ``libzstd-dev``) it also
compresses records sections itself (``packed_section``); without them the ``lz4`` /
``zstandard`` packages (or cramjam) do, as before.
"""

import os
from pathlib import Path

from setuptools import Extension, setup

NATIVE = "src/otus_reporter_kafka/_native"
INCLUDE_DIRS = [Path(p) for p in ("/usr/include", "/usr/local/include")]


def _have(header: str) -> bool:
    """Whether a C library's header is installed (OTUS_KAFKA_NO_CODECS=1 builds without)."""
    if os.environ.get("OTUS_KAFKA_NO_CODECS"):
        return False
    return any((d / header).exists() for d in INCLUDE_DIRS)


macros, libraries = [], []
if _have("lz4frame.h"):
    macros.append(("OTUS_HAVE_LZ4", "1"))
    libraries.append("lz4")
if _have("zstd.h"):
    macros.append(("OTUS_HAVE_ZSTD", "1"))
    libraries.append("zstd")

setup(
    ext_modules=[
        Extension(
            "otus_reporter_kafka._native._kafka_fast",
            sources=[f"{NATIVE}/kafka_fast.c"],
            define_macros=macros,
            libraries=libraries,
            extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wextra"],
            optional=True,
        )
    ],
)
