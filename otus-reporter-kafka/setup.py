"""Build glue for the optional C fast path; all metadata lives in pyproject.toml.

``_kafka_fast`` (CPython API) encodes record bodies and records sections; it is optional: with
no C compiler the wheel still installs and the reporter uses the same encoding in Python.
"""

from setuptools import Extension, setup

NATIVE = "src/otus_reporter_kafka/_native"

setup(
    ext_modules=[
        Extension(
            "otus_reporter_kafka._native._kafka_fast",
            sources=[f"{NATIVE}/kafka_fast.c"],
            extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wextra"],
            optional=True,
        )
    ],
)
