"""A third-party plugin's mistakes, as an operator meets them through the CLI: each is one line
naming the plugin and its distribution, and every other plugin keeps working."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from otus.testing import ethernet_udp_frame, write_pcap

DIST = "otus-audit-broken"

#: entry-point name -> module source (module ``otus_audit_broken.<name>``).
MODULES = {
    "exits": "import sys\nsys.exit(3)\n",
    "asserts": "assert False, 'plugin asserted at import'\n",
    "missing": "import otus_audit_dependency_not_installed\n",
    "single": """
        import otus
        from pydantic import BaseModel, ConfigDict

        class O(BaseModel):
            model_config = ConfigDict(extra="forbid")

        @otus.hookimpl
        def otus_parsers():
            return otus.ParserSpec(name="single", factory=None, options_model=O, summary="s")
    """,
    "prints": """
        import otus

        print("debug: prints imported")

        @otus.hookimpl
        def otus_parsers():
            print("debug: prints registering")
            return []
    """,
    "factories": """
        import otus
        from pydantic import BaseModel, ConfigDict

        class O(BaseModel):
            model_config = ConfigDict(extra="forbid")

        def returns_int(options, context):
            return 42

        def raises(options, context):
            raise RuntimeError("boom in the factory")

        class Null(otus.Reporter):
            def report(self, records):
                pass

        def null_reporter(options, context):
            return Null()

        @otus.hookimpl
        def otus_parsers():
            return [
                otus.ParserSpec(name="intparser", factory=returns_int, options_model=O,
                                summary="i"),
                otus.ParserSpec(name="boomparser", factory=raises, options_model=O, summary="b"),
            ]

        @otus.hookimpl
        def otus_processors():
            return [otus.ProcessorSpec(name="intproc", factory=returns_int, options_model=O,
                                       summary="i")]

        @otus.hookimpl
        def otus_reporters():
            return [otus.ReporterSpec(name="intrep", factory=returns_int, options_model=O,
                                      summary="i"),
                    # a working reporter, so the cases above need no other distribution
                    otus.ReporterSpec(name="nullrep", factory=null_reporter, options_model=O,
                                      summary="n")]
    """,
}


@pytest.fixture(scope="module")
def broken_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A distribution ``otus-audit-broken`` (a dist-info directory and its package) on a path
    of its own: put it on PYTHONPATH to install it into a subprocess."""
    root = tmp_path_factory.mktemp("broken-dist")
    package = root / "otus_audit_broken"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, source in MODULES.items():
        (package / f"{name}.py").write_text(textwrap.dedent(source))
    info = root / "otus_audit_broken-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DIST}\nVersion: 0.0.1\n")
    (info / "top_level.txt").write_text("otus_audit_broken\n")
    entries = "".join(f"{name} = otus_audit_broken.{name}\n" for name in MODULES)
    (info / "entry_points.txt").write_text(f"[otus.plugins]\n{entries}")
    return root


def _otus(dist: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(dist))
    env.pop("OTUS_STRICT_PLUGINS", None)
    return subprocess.run(
        [sys.executable, "-m", "otus.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def _hello_pcap(tmp_path: Path) -> Path:
    path = tmp_path / "one.pcap"
    write_pcap(path, [ethernet_udp_frame(b"hello", dport=7777)])
    return path


def test_a_plugin_exiting_or_asserting_at_import_is_listed_as_failed(broken_dist: Path) -> None:
    done = _otus(broken_dist, "plugins", "list")
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    assert "SystemExit(3): the module exited the process while being imported" in lines["exits"]
    assert "AssertionError: plugin asserted at import" in lines["asserts"]
    assert "loaded" in lines["pcap"]  # the others still load


def test_a_hook_returning_one_spec_instead_of_a_list_says_so(broken_dist: Path) -> None:
    done = _otus(broken_dist, "plugins", "list")
    (line,) = [ln for ln in done.stdout.splitlines() if ln.startswith("single ")]
    expected = "otus_parsers() must return a list of ParserSpec objects, got ParserSpec 'single'"
    assert expected in line


def test_an_unknown_name_points_at_plugins_that_did_not_import(
    broken_dist: Path, tmp_path: Path
) -> None:
    done = _otus(broken_dist, "run", "--pcap", str(_hello_pcap(tmp_path)), "--parser", "missing")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "unknown parser 'missing'" in done.stderr
    assert (
        f"{DIST} (entry point 'missing'): ModuleNotFoundError: "
        "No module named 'otus_audit_dependency_not_installed'"
    ) in done.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--parser", "intparser"], "parser 'intparser' failed to start: its factory returned "
         "int, not an otus.Parser"),
        (["--parser", "intparser", "--processor", "intproc"], "parser 'intparser'"),
        (["--processor", "intproc"], "processor 'intproc' failed to start: its factory returned "
         "int, not an otus.Processor"),
        (["--reporter", "intrep"], "reporter 'intrep' failed to start: its factory returned int, "
         "not an otus.Reporter"),
        (["--parser", "boomparser"], "parser 'boomparser' failed to start: RuntimeError: boom in "
         "the factory"),
    ],
)  # fmt: skip
def test_a_factory_returning_the_wrong_thing_or_raising_names_its_distribution(
    broken_dist: Path, tmp_path: Path, args: list[str], expected: str
) -> None:
    if "--reporter" not in args:
        args = [*args, "--reporter", "nullrep"]
    done = _otus(broken_dist, "run", "--pcap", str(_hello_pcap(tmp_path)), *args)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert expected in done.stderr
    assert f"(factory of {DIST} (module otus_audit_broken.factories))" in done.stderr


def test_what_a_plugin_prints_while_loading_goes_to_stderr(
    broken_dist: Path, tmp_path: Path
) -> None:
    listing = _otus(broken_dist, "plugins", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    names = [e["name"] for e in json.loads(listing.stdout)]  # stdout is JSON, nothing else
    assert "pcap" in names
    assert "debug: prints imported" in listing.stderr
    assert "debug: prints registering" in listing.stderr
    run = _otus(broken_dist, "run", "--pcap", str(_hello_pcap(tmp_path)), "--parser", "intparser")
    assert "debug: prints" not in run.stdout
