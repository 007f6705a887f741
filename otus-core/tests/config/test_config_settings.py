"""The global configuration: defaults, the committed reference, environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from otus._config import docs
from otus._config.env import resolve_name
from otus._config.settings import Settings, load_settings
from otus.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]


def test_no_file_means_defaults() -> None:
    settings = load_settings(None, environ={})
    assert settings == Settings()
    assert settings.metrics.listen == ":9091"
    assert settings.command_channel.topic == "otus-commands"
    assert settings.node.hostname


def test_the_committed_otus_toml_is_the_defaults() -> None:
    assert load_settings(REPO / "configs" / "otus.toml", environ={}) == Settings()


@pytest.mark.parametrize("rel", [docs.TOML_PATH, docs.MARKDOWN_PATH])
def test_generated_reference_files_are_current(rel: str) -> None:
    rendered = docs.render_toml() if rel == docs.TOML_PATH else docs.render_markdown()
    current = (REPO / rel).read_text(encoding="utf-8")
    assert current == rendered, f"{rel} is stale: run python -m otus._config.docs --root ."


def test_every_key_of_the_models_appears_in_the_reference() -> None:
    text = (REPO / "configs" / "otus.toml").read_text(encoding="utf-8")

    def keys(model: type[Settings] | type, prefix: str) -> list[str]:
        out = []
        for name, field in model.model_fields.items():
            sub = field.annotation
            if isinstance(sub, type) and hasattr(sub, "model_fields"):
                out += keys(sub, f"{prefix}.{name}")
            else:
                out.append(name)
        return out

    missing = [k for k in keys(Settings, "otus") if f"{k} = " not in text]
    assert missing == []


def test_environment_overrides() -> None:
    env = {
        "OTUS_LOG_LEVEL": "DEBUG",
        "OTUS_METRICS_LISTEN": ":9100",
        "OTUS_COMMAND_CHANNEL_HEARTBEAT_INTERVAL": "1m",
        "OTUS_KAFKA_BROKERS": "k1:9092, k2:9092",
        "OTUS_NODE_TAGS_SITE_NAME": "lab",
        "OTUS_LOG__FILE__MAX_SIZE": "2MiB",
        "OTUS_CORE_DECODER_IP_REASSEMBLY_MAX_MEMORY": "1MiB",
        "OTUS_CORE_DECODER_TUNNELS_VXLAN_PORTS": "[4789, 8472]",
        "OTUS_COMMAND_CHANNEL_ENABLED": "true",
        "OTUS_STRICT_PLUGINS": "1",  # not a config key: ignored
        "OTHER_LOG_LEVEL": "error",
    }
    s = load_settings(None, environ=env)
    assert s.log.level == "debug"
    assert s.metrics.listen == ":9100"
    assert s.command_channel.heartbeat.interval == 60.0
    assert s.command_channel.enabled is True
    assert s.kafka.brokers == ["k1:9092", "k2:9092"]
    assert s.node.tags == {"site_name": "lab"}
    assert s.log.file.max_size == 2 * 1024 * 1024
    assert s.core.decoder.ip_reassembly.max_memory == 1024 * 1024
    assert s.core.decoder.tunnels.vxlan_ports == [4789, 8472]


def test_environment_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "otus.toml"
    path.write_text('[otus.log]\nlevel = "error"\nformat = "json"\n')
    s = load_settings(path, environ={"OTUS_LOG_LEVEL": "warning"})
    assert (s.log.level, s.log.format) == ("warning", "json")


def test_a_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={"OTUS_METRICS_INTERVAL": "soon"})
    assert str(caught.value).startswith(
        "environment variable OTUS_METRICS_INTERVAL: otus.metrics.interval: bad duration 'soon'"
    )


def test_a_typo_in_a_section_variable_is_an_error() -> None:
    with pytest.raises(ConfigError, match="OTUS_LOG_LEVLE: names no configuration key"):
        load_settings(None, environ={"OTUS_LOG_LEVLE": "debug"})


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("LOG_FILE_MAX_SIZE", ("log", "file", "max_size")),
        ("TASK_PERSISTENCE_MAX_TASK_HISTORY", ("task_persistence", "max_task_history")),
        ("COMMAND_CHANNEL_HMAC_KEY_FILE", ("command_channel", "hmac_key_file")),
        ("COMMAND_CHANNEL_HMAC_KEY", ("command_channel", "hmac_key")),
        ("control__socket", ("control", "socket")),
        ("DATA_DIR", ("data_dir",)),
    ],
)
def test_underscores_resolve_against_field_names(name: str, path: tuple[str, ...]) -> None:
    resolved = resolve_name(name, Settings)
    assert resolved is not None
    assert resolved[0] == path


def test_names_outside_the_config_are_not_resolved() -> None:
    assert resolve_name("STRICT_PLUGINS", Settings) is None
    assert resolve_name("CONFIG", Settings) is None


def test_a_command_channel_without_aiokafka_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """otus-core alone has no Kafka client: the channel would never connect, and say nothing."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "aiokafka" else real(name, *a)
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={"OTUS_COMMAND_CHANNEL_ENABLED": "true"})
    assert "otus.command_channel.enabled: the command channel needs aiokafka" in str(caught.value)
    assert "pip install 'otus-core[kafka]'" in str(caught.value)
    assert load_settings(None, environ={}).command_channel.enabled is False  # off: no need
