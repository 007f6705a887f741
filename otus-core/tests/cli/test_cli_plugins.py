"""``otus plugins list``: table and JSON, failed plugins shown, no cffi extension imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from otus.cli.main import main

LIST_AND_CHECK_NATIVE = """
import sys
from otus.cli.main import main
rc = main(sys.argv[1:])
assert "otus._native._otus_native" not in sys.modules, "listing imported the cffi extension"
sys.exit(rc)
"""


def _otus(args: list[str], pythonpath: Path | None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "OTUS_STRICT_PLUGINS"}
    if pythonpath is not None:
        environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(pythonpath), environ.get("PYTHONPATH")) if p
        )
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", LIST_AND_CHECK_NATIVE, *args],
        check=False,
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )


def test_json_lists_failed_plugins_while_others_load(fake_plugins_path: Path) -> None:
    result = _otus(["plugins", "list", "--json"], fake_plugins_path)
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    by_entry_point = {(e["distribution"], e["entry_point"], e["name"]): e for e in entries}
    broken = by_entry_point[("otus-fake-plugins", "broken", "broken")]
    assert broken["status"] == "failed"
    assert "otus_fake_dependency_that_is_not_installed" in broken["error"]
    good = by_entry_point[("otus-fake-plugins", "fakes", "fakeport")]
    assert good == {
        "name": "fakeport", "kind": "processor", "distribution": "otus-fake-plugins",
        "version": "0.1.0", "summary": "By port", "status": "loaded", "error": None,
        "entry_point": "fakes",
    }  # fmt: skip
    pcap = by_entry_point[("otus-core", "pcap", "pcap")]
    assert (pcap["kind"], pcap["status"]) == ("capturer", "loaded")
    assert {e["name"] for e in entries if e["status"] == "failed"} >= {"broken", "twin"}


def test_kind_filter(fake_plugins_path: Path) -> None:
    result = _otus(["plugins", "list", "--json", "--kind", "processor"], fake_plugins_path)
    entries = json.loads(result.stdout)
    assert {e["kind"] for e in entries} <= {"processor", None}
    assert "fakeport" in {e["name"] for e in entries}
    assert "fakelist" not in {e["name"] for e in entries}


def test_table_on_a_terminal(fake_plugins: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "DISTRIBUTION", "VERSION", "STATUS", "SUMMARY"]
    fakeport = next(line for line in lines if line.startswith("fakeport "))
    assert fakeport.split()[:5] == ["fakeport", "processor", "otus-fake-plugins", "0.1.0", "loaded"]
    broken = next(line for line in lines if line.startswith("broken "))
    assert "failed  error: ModuleNotFoundError" in broken
    assert lines[-1].endswith("failed")


def test_strict_mode_makes_listing_fail(fake_plugins_path: Path) -> None:
    result = _otus(["plugins", "list"], fake_plugins_path, OTUS_STRICT_PLUGINS="1")
    assert result.returncode == 1
    assert result.stderr.startswith("otus: plugins failed to load (OTUS_STRICT_PLUGINS=1)")
    assert result.stderr.count("\n") == 1
