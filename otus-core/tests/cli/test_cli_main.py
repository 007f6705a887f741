"""``otus`` itself: version, usage errors, subcommand registration, exit codes."""

from __future__ import annotations

import argparse

import pytest

from otus import __version__
from otus.cli import validate
from otus.cli.main import build_parser, main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"otus {__version__}\n"


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: otus" in capsys.readouterr().err


def test_every_registered_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    (subparsers,) = [
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ]
    assert {"plugins", "validate"} <= set(subparsers.choices)
    for name in subparsers.choices:
        with pytest.raises(SystemExit) as exited:
            main([name, "--help"])
        assert exited.value.code == 0
        assert f"usage: otus {name}" in capsys.readouterr().out


def test_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(_args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(validate, "run", interrupted)
    assert main(["validate", "x.toml"]) == 130
