"""Build glue for the optional C fast paths; all metadata lives in pyproject.toml.

``_sip_native`` (cffi) is the header indexer; ``_sip_fast`` (CPython API) writes the payload
JSON (``parse_json``) and parses runs of datagrams (``parse_batch``). Both are optional: without
a working C toolchain the parser runs in pure Python, with a loud warning. When the toolchain
works but our C code does not compile, the build fails (an editable install would otherwise
keep the old ``.so`` silently); ``OTUS_SIP_NATIVE=optional`` turns that into a warning too.
"""

import os
import sys
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, CompileError, PlatformError

NATIVE = "src/otus_parser_sip/_native"
_FAILURES = (CCompilerError, CompileError, PlatformError, OSError)


class LoudBuildExt(build_ext):
    """``build_ext`` that says when an optional extension is skipped, and why."""

    def run(self) -> None:
        for ext in self.extensions:
            ext.optional = True  # the cffi indexer too: it is as optional as _sip_fast
        super().run()

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except _FAILURES as e:
            if not ext.optional:
                raise
            toolchain = self._toolchain_works(ext)
            if toolchain and os.environ.get("OTUS_SIP_NATIVE") != "optional":
                # Not a CompileError: build_ext would turn that into a warning again.
                raise RuntimeError(
                    f"otus-parser-sip: the C extension {ext.name} does not compile ({e}); the "
                    "C toolchain works, so this is a bug in the C code "
                    "(OTUS_SIP_NATIVE=optional installs without it)"
                ) from e
            self._drop_stale(ext)
            why = "it does not compile" if toolchain else "no working C compiler/Python headers"
            print(
                f"\nWARNING: otus-parser-sip: {ext.name} NOT built ({why}: {e}).\n"
                "WARNING: the SIP parser will run in pure Python (several times slower).\n",
                file=sys.stderr,
            )

    def _drop_stale(self, ext: Extension) -> None:
        """Remove an earlier build of ext (build directory and source tree): it would be
        copied or imported as if it matched the sources."""
        name = os.path.basename(self.get_ext_filename(self.get_ext_fullname(ext.name)))
        here = os.path.dirname(os.path.abspath(__file__))
        for path in (self.get_ext_fullpath(ext.name), os.path.join(here, NATIVE, name)):
            if os.path.exists(path):
                os.remove(path)

    def _toolchain_works(self, ext: Extension) -> bool:
        """True when a trivial C file including Python.h compiles with this ext's settings."""
        with tempfile.TemporaryDirectory() as tmp:
            probe = os.path.join(tmp, "probe.c")
            with open(probe, "w") as f:
                f.write("#include <Python.h>\nint otus_probe(void) { return 1; }\n")
            try:
                self.compiler.compile(
                    [probe], output_dir=tmp, include_dirs=[*self.include_dirs, *ext.include_dirs]
                )
            except _FAILURES:
                return False
        return True


setup(
    cmdclass={"build_ext": LoudBuildExt},
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
                f"{NATIVE}/sip_media.c",
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
