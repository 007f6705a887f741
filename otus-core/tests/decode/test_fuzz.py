"""A bounded fuzz run of the C decoder entry points under AddressSanitizer and UBSan."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

from otus.testing import need
from otus.testing.sanitizers import SANITIZE, fuzz_seconds, sanitizer_compiler

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"
NATIVE = Path(__file__).resolve().parents[2] / "src" / "otus" / "_native"
SECONDS = fuzz_seconds()


def test_fuzz_decoder_under_asan(tmp_path: Path) -> None:
    cc = sanitizer_compiler(tmp_path)
    need(cc is not None, "a C compiler with AddressSanitizer (gcc or clang) is needed")
    assert cc is not None
    binary = tmp_path / "fuzz_decode"
    sources = [FUZZ / "fuzz_decode.c", *(NATIVE / f for f in ("decode.c", "frag.c", "classify.c"))]
    subprocess.run(
        [
            cc,
            "-g",
            "-O1",
            "-std=c11",
            "-fno-omit-frame-pointer",
            f"-I{NATIVE}",
            *SANITIZE,
            *map(str, sources),
            "-o",
            str(binary),
        ],
        check=True,
    )
    spec = importlib.util.spec_from_file_location("make_corpus", FUZZ / "make_corpus.py")
    assert spec is not None
    assert spec.loader is not None
    corpus = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(corpus)
    corpus.main(str(tmp_path / "corpus"))
    run = subprocess.run(
        [str(binary), str(SECONDS), str(tmp_path / "corpus"), "12345"],
        capture_output=True,
        text=True,
        timeout=SECONDS + 60,
        env={**os.environ, "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1"},
        check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert "no crash" in run.stdout
