"""Plugin loading: entry points load in isolation, failures and clashes are recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from otus import ProcessorSpec, ReporterSpec
from otus._plugins.registry import PluginInfo, load_registry
from otus.errors import PluginError


def _entry(entries: list[PluginInfo], entry_point: str) -> list[PluginInfo]:
    return [e for e in entries if e.entry_point == entry_point]


@pytest.mark.usefixtures("fake_plugins")
def test_working_plugins_load_with_their_distribution() -> None:
    registry = load_registry(strict=False)
    assert isinstance(registry.get("processor", "fakeport"), ProcessorSpec)
    assert isinstance(registry.get("reporter", "fakelist"), ReporterSpec)
    assert "fakecap" in registry.names("capturer")
    (info,) = [e for e in registry.entries() if e.name == "fakelist"]
    assert (info.kind, info.distribution, info.version, info.status, info.error) == (
        "reporter", "otus-fake-plugins", "0.1.0", "loaded", None,
    )  # fmt: skip
    assert info.summary == "To a list"


@pytest.mark.usefixtures("fake_plugins")
def test_a_module_that_does_not_import_is_recorded_and_the_rest_load() -> None:
    registry = load_registry(strict=False)
    (info,) = _entry(registry.entries(), "broken")
    assert info.status == "failed"
    assert info.kind is None
    assert info.distribution == "otus-fake-plugins"
    assert info.error is not None
    assert "ModuleNotFoundError" in info.error
    assert "otus_fake_dependency_that_is_not_installed" in info.error
    assert registry.names("processor") >= ["fakeport"]


@pytest.mark.usefixtures("fake_plugins")
def test_a_registration_hook_that_raises_is_recorded() -> None:
    registry = load_registry(strict=False)
    (info,) = _entry(registry.entries(), "explodes")
    assert (info.kind, info.status) == ("reporter", "failed")
    assert info.error == "otus_reporters(): RuntimeError: boom while registering"


@pytest.mark.usefixtures("fake_plugins")
def test_a_name_clash_fails_both_providers_and_names_them() -> None:
    registry = load_registry(strict=False)
    twins = [e for e in registry.entries() if e.name == "twin"]
    assert sorted(e.entry_point for e in twins) == ["twin-a", "twin-b"]
    for info in twins:
        assert info.status == "failed"
        assert info.error is not None
        assert "'twin-a'" in info.error
        assert "'twin-b'" in info.error
    assert "twin" not in registry.names("processor")
    with pytest.raises(PluginError, match="processor 'twin' failed to load: name clash"):
        registry.get("processor", "twin")


@pytest.mark.usefixtures("fake_plugins")
def test_unknown_hooks_and_wrong_spec_types_are_failures() -> None:
    entries = load_registry(strict=False).entries()
    (unknown,) = _entry(entries, "unknownhook")
    assert unknown.error is not None
    assert "otus_parsrs" in unknown.error
    (wrong,) = _entry(entries, "wrongtype")
    assert wrong.error is not None
    assert "must return ReporterSpec objects" in wrong.error


@pytest.mark.usefixtures("fake_plugins")
def test_unknown_name_lists_what_exists() -> None:
    registry = load_registry(strict=False)
    with pytest.raises(PluginError, match=r"^unknown reporter 'nope'; available: .*fakelist"):
        registry.get("reporter", "nope")
    with pytest.raises(PluginError, match="unknown plugin kind 'exporter'"):
        registry.names("exporter")


@pytest.mark.usefixtures("fake_plugins")
def test_strict_mode_turns_failures_into_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PluginError, match=r"OTUS_STRICT_PLUGINS=1.*boom while registering"):
        load_registry(strict=True)
    monkeypatch.setenv("OTUS_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="name clash"):
        load_registry()
    monkeypatch.setenv("OTUS_STRICT_PLUGINS", "0")
    assert load_registry().failures


def test_the_registry_is_loaded_fresh_each_time(
    fake_plugins_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "fakeport" not in load_registry(strict=False).names("processor")
    monkeypatch.syspath_prepend(str(fake_plugins_path))
    assert "fakeport" in load_registry(strict=False).names("processor")


@pytest.mark.usefixtures("fake_plugins")
def test_lifecycle_hooks_reach_plugins() -> None:
    registry = load_registry(strict=False)
    from otus_fake_plugins import good  # type: ignore[import-not-found]

    good.EVENTS.clear()
    registry.hook.otus_task_started(task_id="t1", config={"id": "t1"})
    registry.hook.otus_task_stopped(task_id="t1", status="stopped", reason=None)
    assert good.EVENTS == [("started", "t1"), ("stopped", "t1")]


def test_the_builtin_pcap_capturer_registers_through_entry_points() -> None:
    registry = load_registry(strict=False)
    (info,) = [e for e in registry.entries() if e.entry_point == "pcap"]
    assert (info.distribution, info.status, info.kind) == ("otus-core", "loaded", "capturer")
