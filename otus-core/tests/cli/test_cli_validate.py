"""``otus validate`` and the exit codes of ``otus``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from otus.cli.main import main

DATA = Path(__file__).parents[1] / "data"


def _otus(args: list[str], pythonpath: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTUS_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(pythonpath), env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "otus.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_broken_files_give_one_line_each_and_exit_1(fake_plugins_path: Path) -> None:
    files = sorted(str(p) for p in (DATA / "invalid").iterdir())
    result = _otus(["validate", *files], fake_plugins_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == len(files)
    for path, line in zip(files, lines, strict=True):
        assert line.startswith(f"{path}:"), line
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_valid_files_exit_0(fake_plugins_path: Path) -> None:
    result = _otus(
        ["validate", str(DATA / "valid" / "task.toml"), str(DATA / "valid" / "config.yaml")],
        fake_plugins_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{DATA / 'valid' / 'task.toml'}: ok: task 'fake-task' "
        "(capture fakecap, 1 processor(s), 1 reporter(s))",
        f"{DATA / 'valid' / 'config.yaml'}: ok: global config",
    ]


@pytest.mark.usefixtures("fake_plugins")
def test_duplicate_ids_across_files(capsys: pytest.CaptureFixture[str]) -> None:
    toml, yaml = DATA / "valid" / "task.toml", DATA / "valid" / "task.yaml"
    assert main(["validate", str(toml), str(yaml)]) == 1
    err = capsys.readouterr().err
    assert err == f"{yaml}: id: duplicate task id 'fake-task' (also in {toml})\n"


def test_a_config_named_with_the_flag_is_checked_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # before: `otus --config /missing validate TASK` said ok and exited 0 (the flag was ignored)
    missing = str(tmp_path / "missing.toml")
    assert main(["--config", missing, "validate", str(tmp_path / "also-missing.toml")]) == 1
    assert f"{missing}: cannot read" in capsys.readouterr().err
    good = tmp_path / "otus.toml"
    good.write_text("[otus]\n")
    assert main(["validate", "--config", str(good), str(good)]) == 0
    assert capsys.readouterr().out.count(": ok: global config") == 1  # checked once


def test_plugins_list_refuses_a_missing_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "missing.toml")
    assert main(["plugins", "list", "--config", missing]) == 1
    assert capsys.readouterr().err.startswith(f"otus: {missing}: cannot read")
