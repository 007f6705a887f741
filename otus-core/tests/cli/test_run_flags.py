"""``otus run`` flags → task data: what the command validates and runs."""

from __future__ import annotations

import argparse

import pytest

from otus.cli.main import build_parser
from otus.cli.run import apply_overrides, task_from_flags
from otus.errors import ConfigError


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["run", *argv])


def test_pcap_flags_make_a_pcap_task_with_console_by_default() -> None:
    task = task_from_flags(parse("--pcap", "calls.pcap", "--parser", "sip", "--speed", "2"))
    assert task == {
        "id": "run",
        "capture": {"name": "pcap", "config": {"path": "calls.pcap", "speed": 2.0}},
        "parsers": [{"name": "sip", "config": {}}],
        "processors": [],
        "reporters": [{"name": "console", "config": {}}],
    }


def test_interface_flags_make_an_afpacket_task() -> None:
    task = task_from_flags(
        parse(
            "-i", "eth0", "--bpf", "udp port 5060", "--reporter", "kafka", "--reporter", "console"
        )
    )
    assert task["capture"] == {
        "name": "afpacket",
        "config": {"interface": "eth0", "bpf": "udp port 5060"},
    }
    assert [r["name"] for r in task["reporters"]] == ["kafka", "console"]


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["-i", "eth0", "--speed", "1"], "--speed and --loop apply to --pcap"),
        (["--pcap", "x.pcap", "--bpf", "udp"], "--bpf applies to -i"),
    ],
)
def test_flags_that_do_not_fit_the_source_are_refused(argv: list[str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        task_from_flags(parse(*argv))


def test_source_flags_are_mutually_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--pcap", "x.pcap", "-i", "eth0")
    assert "not allowed with" in capsys.readouterr().err


def test_set_parses_json_values_and_nested_keys() -> None:
    task = task_from_flags(parse("--pcap", "x.pcap", "--parser", "sip"))
    apply_overrides(
        task,
        ["sip.ports=[5060,5080]", "console.format=json", "decoder.tunnels.vxlan=false",
         "pcap.loop=2"],
        [],
    )  # fmt: skip
    assert task["parsers"][0]["config"] == {"ports": [5060, 5080]}
    assert task["reporters"][0]["config"] == {"format": "json"}  # not JSON: kept as a string
    assert task["decoder"] == {"tunnels": {"vxlan": False}}
    assert task["capture"]["config"]["loop"] == 2


def test_options_json_is_merged_before_set() -> None:
    task = task_from_flags(parse("--pcap", "x.pcap"))
    apply_overrides(
        task, ["console.format=text"], ['console={"format": "json", "include_raw": true}']
    )
    assert task["reporters"][0]["config"] == {"format": "text", "include_raw": True}


@pytest.mark.parametrize(
    ("sets", "options", "problem"),
    [
        (
            ["nosuch.x=1"],
            [],
            "no plugin named 'nosuch' in this run; use one of console, decoder, pcap",
        ),
        (["console=1"], [], "use NAME.KEY=VALUE"),
        ([], ["console=[1]"], "JSON object"),
        ([], ["console={bad"], "not JSON"),
    ],
)
def test_bad_overrides_name_the_flag(sets: list[str], options: list[str], problem: str) -> None:
    task = task_from_flags(parse("--pcap", "x.pcap"))
    with pytest.raises(ConfigError, match=problem.replace("(", r"\(")):
        apply_overrides(task, sets, options)


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
def test_a_flush_timeout_that_is_not_a_non_negative_number_is_bad_usage(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        parse("--pcap", "x.pcap", "--flush-timeout", value)
    assert info.value.code == 2
    assert "--flush-timeout" in capsys.readouterr().err


def test_a_zero_flush_timeout_is_accepted() -> None:
    assert parse("--pcap", "x.pcap", "--flush-timeout", "0").flush_timeout == 0.0
