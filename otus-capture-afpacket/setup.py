"""Build glue for the cffi extension; all metadata lives in pyproject.toml."""

from setuptools import setup

setup(cffi_modules=["src/otus_capture_afpacket/_native/_ffi_build.py:ffibuilder"])
