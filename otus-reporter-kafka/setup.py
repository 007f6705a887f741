"""Build glue for the optional C fast path; all metadata lives in pyproject.toml.

``_kafka_fast`` (CPython API) encodes record bodies and records sections; it is optional: with
no C compiler the wheel still installs and the reporter uses the same encoding in Python.
It is one module from every ``*.c`` of ``_native`` (the headers are its ``depends``: rebuilt
on a change, shipped in the sdist); ``-flto`` lets the compiler inline across those files as
it would within one (the per-record calls of the body encoder into the JSON, base64 and
section code).
"""

from glob import glob

from setuptools import Extension, setup

NATIVE = "src/otus_reporter_kafka/_native"

setup(
    ext_modules=[
        Extension(
            "otus_reporter_kafka._native._kafka_fast",
            sources=sorted(glob(f"{NATIVE}/*.c")),
            depends=sorted(glob(f"{NATIVE}/*.h")),
            extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wextra", "-flto"],
            extra_link_args=["-O3", "-flto"],
            optional=True,
        )
    ],
)
