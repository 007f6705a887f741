"""Build glue for the optional cffi header scanner; all metadata lives in pyproject.toml."""

from setuptools import setup

setup(cffi_modules=["src/otus_parser_sip/_native/_ffi_build.py:ffibuilder"])
