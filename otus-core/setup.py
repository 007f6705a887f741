"""Build glue for the C extensions; all metadata lives in pyproject.toml.

``_otus_native`` (cffi) is the decoder, pcap walker and IP reassembly; ``_build`` (CPython
API, ``pyapi/``: cffi cannot hand back Python objects) builds the ``Datagram`` and
``TcpSegment`` objects of the decoder's wanted entries.
"""

from setuptools import Extension, setup

NATIVE = "src/otus/_native"

setup(
    cffi_modules=[f"{NATIVE}/_ffi_build.py:ffibuilder"],
    ext_modules=[
        Extension(
            "otus._native._build",
            sources=[f"{NATIVE}/pyapi/build.c"],
            depends=[f"{NATIVE}/decode.h"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra"],
        )
    ],
)
