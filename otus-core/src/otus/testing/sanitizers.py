"""Run a plugin's C extension under AddressSanitizer and UBSan, from a test.

CPython itself is not instrumented: the extension is rebuilt with the sanitizers into a
temporary directory, and a driver script loads it (:func:`load_extension`) in a subprocess
whose environment (:func:`sanitized_env`) preloads the ASan runtime. Any report aborts that
process. :func:`check_reports_fail` proves, once per test module, that a report really does
fail the run (a canary out-of-bounds read), so a green run means something::

    @pytest.fixture(scope="module")
    def sanitized(tmp_path_factory):
        tmp = tmp_path_factory.mktemp("asan")
        cc, runtime = need_sanitizers(tmp)
        build_extension(cc, [NATIVE / "fast.c"], tmp / "_fast.so", includes=[NATIVE])
        return cc, runtime, tmp
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from otus.testing.requirements import need

__all__ = [
    "SANITIZE",
    "SHARED_FLAGS",
    "asan_runtime",
    "build_extension",
    "check_reports_fail",
    "fuzz_seconds",
    "load_extension",
    "need_sanitizers",
    "run_driver",
    "sanitized_env",
    "sanitizer_compiler",
]

SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
#: Flags of a sanitized shared object (an extension module or a ctypes library).
SHARED_FLAGS = ["-g", "-O1", "-fno-omit-frame-pointer", "-fPIC", "-shared", *SANITIZE]

_CANARY = """
#include <stdlib.h>
int canary(int k) { char *p = malloc(8); int v = p[k]; free(p); return v; }
"""


def fuzz_seconds(default: float = 15.0) -> float:
    """How long a bounded fuzz run may take: ``OTUS_FUZZ_SECONDS`` or ``default``."""
    return float(os.environ.get("OTUS_FUZZ_SECONDS", str(default)))


def sanitizer_compiler(tmp: Path) -> str | None:
    """gcc (or clang) when it can build and link a sanitized shared object, else None."""
    cc = shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return None
    probe = tmp / "probe.c"
    probe.write_text("int probe(int x) { return x + 1; }\n")
    ok = subprocess.run(
        [cc, *SHARED_FLAGS, str(probe), "-o", str(tmp / "probe.so")],
        capture_output=True,
        check=False,
    )
    return cc if ok.returncode == 0 else None


def asan_runtime(cc: str) -> str | None:
    """Path of the ASan runtime to preload into an uninstrumented python, or None."""
    out = subprocess.run(
        [cc, "-print-file-name=libasan.so"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return out if out and Path(out).is_absolute() and Path(out).exists() else None


def need_sanitizers(tmp: Path) -> tuple[str, str]:
    """``(compiler, ASan runtime)``; fails the test in CI (skips elsewhere) without them."""
    cc = sanitizer_compiler(tmp)
    need(cc is not None, "a C compiler with AddressSanitizer and UBSan (gcc or clang) is needed")
    assert cc is not None
    runtime = asan_runtime(cc)
    need(runtime is not None, f"{cc} does not ship a preloadable libasan.so")
    assert runtime is not None
    return cc, runtime


def build_extension(
    cc: str,
    sources: Iterable[Path],
    out: Path,
    *,
    includes: Iterable[Path] = (),
    extra: Iterable[str] = ("-std=c11", "-Wall"),
) -> Path:
    """Compile ``sources`` into the sanitized CPython extension ``out`` (a ``.so`` path);
    ``extra``: more compiler flags (generated cffi glue wants none)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    python_include = sysconfig.get_paths()["include"]
    subprocess.run(
        [cc, *SHARED_FLAGS, *extra, f"-I{python_include}", *(f"-I{d}" for d in includes),
         *map(str, sources), "-o", str(out)],
        check=True,
    )  # fmt: skip
    return out


def sanitized_env(runtime: str) -> dict[str, str]:
    """The environment of a python that runs sanitized extensions."""
    return {
        **os.environ,
        "LD_PRELOAD": runtime,
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",  # CPython leaks at exit
        "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
        "PYTHONMALLOC": "malloc",  # every object its own allocation, with ASan redzones
    }


def check_reports_fail(cc: str, runtime: str, tmp: Path) -> None:
    """Assert that an in-bounds read passes and an out-of-bounds one fails the process."""
    src = tmp / "canary.c"
    src.write_text(_CANARY)
    subprocess.run([cc, *SHARED_FLAGS, str(src), "-o", str(tmp / "canary.so")], check=True)
    code = f"import ctypes; ctypes.CDLL({str(tmp / 'canary.so')!r}).canary(%d)"
    env = sanitized_env(runtime)
    ok = subprocess.run([sys.executable, "-c", code % 3], env=env, capture_output=True, check=False)
    assert ok.returncode == 0, ok.stderr[-2000:]
    bad = subprocess.run(
        [sys.executable, "-c", code % 9], env=env, capture_output=True, text=True, check=False
    )
    assert bad.returncode != 0
    # UBSan's object-size check or ASan's redzone, whichever sees it first
    assert "runtime error: load of address" in bad.stderr or "heap-buffer-overflow" in bad.stderr


def load_extension(name: str, path: str | Path) -> ModuleType:
    """Import the extension module ``name`` (dotted) from ``path``, in place of the installed
    one (call it in the driver before anything imports ``name``)."""
    spec = importlib.util.spec_from_file_location(name, str(path))
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules[name] = mod
    return mod


def run_driver(runtime: str, driver: Path, *args: str, seconds: float) -> str:
    """Run ``python driver *args`` with the sanitized environment; assert it ended cleanly
    (exit 0, ``fuzz ok`` printed, no sanitizer report) and return its output."""
    run = subprocess.run(
        [sys.executable, str(driver), *args],
        env=sanitized_env(runtime),
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-6000:]
    assert "fuzz ok" in run.stdout
    assert "ERROR: AddressSanitizer" not in run.stderr
    assert "runtime error:" not in run.stderr
    return run.stdout
