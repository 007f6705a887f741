"""Build glue for the C extensions; all metadata lives in pyproject.toml.

``_otus_native`` (cffi) is the decoder, pcap walker and IP reassembly; ``_pyapi`` (CPython
API, ``pyapi/``: cffi cannot hand back Python objects) builds the ``Datagram`` and
``TcpSegment`` objects of the decoder's wanted entries and reads single labels for
``Record.label``.
"""

from setuptools import Extension, setup

NATIVE = "src/otus/_native"

setup(
    cffi_modules=[f"{NATIVE}/_ffi_build.py:ffibuilder"],
    ext_modules=[
        Extension(
            "otus._native._pyapi",
            sources=[f"{NATIVE}/pyapi/{c}.c" for c in ("module", "build", "labels")],
            depends=[f"{NATIVE}/decode.h", f"{NATIVE}/pyapi/pyapi.h"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra"],
        )
    ],
)
