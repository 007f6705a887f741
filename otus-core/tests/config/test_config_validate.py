"""Task and config validation: every broken file gives exactly one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from otus._config.settings import load_settings
from otus._config.validate import check_unique_ids, load_task_file, validate_file, validate_task
from otus._decode.options import DecoderOptions
from otus._plugins.registry import PluginRegistry, load_registry
from otus.errors import ConfigError

DATA = Path(__file__).parents[1] / "data"
INVALID = DATA / "invalid"

#: file → the message after "<file>: " (a prefix; what follows may vary by pydantic version).
EXPECTED = {
    "task_unknown_key.toml": "wokers: unknown key (did you mean 'workers'?)",
    "task_wrong_type.toml": "workers: input should be a valid integer",
    "task_unknown_plugin.toml": "reporters[0].name: unknown reporter 'fakelst'; available: ",
    "task_plugin_option.toml": "processors[0].config.ports[1]: input should be a valid integer",
    "task_plugin_unknown_option.toml": (
        "processors[0].config.prots: unknown key (did you mean 'ports'?)"
    ),
    "task_bad_duration.toml": "duration: bad duration '10 parsecs'",
    "task_bad_id.toml": "id: bad task id '../etc'",
    "task_missing_reporters.toml": "reporters: required key is missing",
    "task_syntax.toml": "TOML syntax error: ",
    "task_syntax.yaml": "YAML syntax error: ",
    "task_syntax.json": "JSON syntax error: ",
    "task_decoder.yaml": "decoder.ip_reassembly.timeout: a duration cannot be negative",
    # The C decoder holds 8 ports per tunnel kind: checked at validation, not at worker start.
    "task_tunnel_ports.toml": "decoder.tunnels.vxlan_ports[0]: input should be greater than",
    "task_two_deadlines.toml": "set expires_at or duration, not both",
    # each worker would read the whole file: every record reported twice
    "task_pcap_workers.toml": "workers: the pcap capturer runs one pipeline a task, got 2",
    "task_clashing_plugin.toml": "processors[0].name: processor 'twin' failed to load: name clash",
    "config_unknown_section.toml": "otus.metrix: unknown key (did you mean 'metrics'?)",
    "config_bad_size.toml": "otus.log.file.max_size: bad size 'lots'",
    "config_bad_listen.json": "otus.metrics.listen: listen must be host:port or :port",
    "config_bad_level.yaml": "otus.log.level: input should be 'debug', 'info'",
    "config_extra_root.toml": "other: unknown key",
    "config_sasl.yaml": "otus.kafka.sasl: SASL PLAIN needs username and password",
    # the push thread died on it with a traceback at start-up and Loki got nothing
    "config_bad_loki_url.toml": (
        "otus.log.loki.url: use an http:// or https:// URL, got 'loki:3100'"
    ),
    # Loki refused every push (400 'error parsing labels'): the node's logs never arrived
    "config_bad_loki_label.toml": (
        "otus.log.loki.labels: 'k8s-cluster' is not a Loki label name (letters, digits and '_',"
    ),
}
#: Syntax errors name the line: "<file>:<line>: ...".
SYNTAX_LINES = {"task_syntax.toml": 3, "task_syntax.yaml": 4, "task_syntax.json": 3}


@pytest.fixture
def registry(fake_plugins: Path) -> PluginRegistry:
    return load_registry(strict=False)


def test_every_invalid_file_is_listed() -> None:
    assert sorted(p.name for p in INVALID.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_invalid_file_gives_one_line_naming_file_path_and_problem(
    name: str, registry: PluginRegistry
) -> None:
    path = INVALID / name
    with pytest.raises(ConfigError) as caught:
        validate_file(path, registry)
    message = str(caught.value)
    assert "\n" not in message
    where = f"{path}:{SYNTAX_LINES[name]}" if name in SYNTAX_LINES else str(path)
    assert message.startswith(f"{where}: {EXPECTED[name]}"), message


@pytest.mark.parametrize("name", ["task.toml", "task.yaml", "task.json"])
def test_the_same_task_in_every_format(name: str, registry: PluginRegistry) -> None:
    task = load_task_file(DATA / "valid" / name, registry)
    assert task.config.id == "fake-task"
    assert task.config.workers == 2
    assert task.config.duration == 5400.0
    assert task.config.decoder.ip_reassembly.timeout == 10.0
    assert task.capture[0].name == "fakecap"
    (spec, options), = task.processors  # fmt: skip
    assert spec.name == "fakeport"
    assert options.model_dump() == {"ports": [5060], "action": "keep"}
    assert [s.name for s, _ in task.reporters] == ["fakelist"]
    assert task.reporters[0][1].model_dump() == {"limit": 100}


def test_task_decoder_is_merged_over_the_global_defaults(registry: PluginRegistry) -> None:
    defaults = DecoderOptions.model_validate({"ip_reassembly": {"max_datagrams": 7}})
    task = load_task_file(DATA / "valid" / "task.toml", registry, decoder_defaults=defaults)
    assert task.config.decoder.ip_reassembly.max_datagrams == 7
    assert task.config.decoder.ip_reassembly.timeout == 10.0


def test_duplicate_task_ids_in_one_set(registry: PluginRegistry) -> None:
    a = validate_task(
        {"id": "x", "capture": {"name": "fakecap"}, "reporters": [{"name": "fakelist"}]},
        source="a.toml",
        registry=registry,
    )
    b = validate_task(dict(a.config.model_dump(mode="json")), source="b.toml", registry=registry)
    with pytest.raises(
        ConfigError, match=r"^b.toml: id: duplicate task id 'x' \(also in a.toml\)$"
    ):
        check_unique_ids([a, b])


def test_a_global_config_file_is_recognised(registry: PluginRegistry) -> None:
    result = validate_file(DATA / "valid" / "config.yaml", registry)
    assert result.kind == "config"
    assert result.settings is not None
    assert result.settings.log.level == "debug"
    assert result.settings.log.file.max_size == 10 * 1024 * 1024
    assert result.settings.core.decoder.ip_reassembly.timeout == 5.0


def test_loading_a_task_file_as_global_config_says_so() -> None:
    with pytest.raises(ConfigError, match=r"root table \[otus\] \(this looks like a task file\)"):
        load_settings(DATA / "valid" / "task.toml", environ={})


def test_a_missing_file_is_one_line(registry: PluginRegistry, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.toml: cannot read: No such file"):
        validate_file(tmp_path / "nope.toml", registry)


@pytest.mark.parametrize("suffix", [".toml", ".json", ".yaml"])
def test_a_byte_order_mark_from_a_windows_editor_is_ignored(
    tmp_path: Path, suffix: str, registry: PluginRegistry
) -> None:
    """Notepad saves UTF-8 with a BOM; before, TOML said 'invalid statement (column 1)' and
    JSON 'unexpected UTF-8 BOM'."""
    good = load_task_file(DATA / "valid" / "task.toml", registry)
    text = {
        ".toml": (DATA / "valid" / "task.toml").read_text(),
        ".json": (DATA / "valid" / "task.json").read_text(),
        ".yaml": (DATA / "valid" / "task.yaml").read_text(),
    }[suffix]
    path = tmp_path / f"task{suffix}"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert load_task_file(path, registry).config == good.config
