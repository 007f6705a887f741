"""Build glue for the optional C fast paths; all metadata lives in pyproject.toml.

``_sip_native`` (cffi) is the header indexer; ``_sip_fast`` (CPython API) builds the whole
message head payload in one call. Both are optional: the parser falls back to pure Python.
"""

from setuptools import Extension, setup

NATIVE = "src/otus_parser_sip/_native"

setup(
    cffi_modules=[f"{NATIVE}/_ffi_build.py:ffibuilder"],
    ext_modules=[
        Extension(
            "otus_parser_sip._native._sip_fast",
            sources=[
                f"{NATIVE}/sip_fast.c",
                f"{NATIVE}/sip_json.c",
                f"{NATIVE}/sip_sdp.c",
                f"{NATIVE}/sip_batch.c",
                f"{NATIVE}/sip_dialog.c",
                f"{NATIVE}/sip_scan.c",
            ],
            depends=[
                f"{NATIVE}/{h}" for h in ("sip_dialog.h", "sip_sv.h", "sip_jb.h", "sip_scan.h")
            ],
            include_dirs=[NATIVE],
            extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wextra"],
            optional=True,
        )
    ],
)
