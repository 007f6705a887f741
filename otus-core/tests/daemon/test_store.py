"""Task persistence: atomic files, safe ids, recovery from interrupted writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from otus._daemon.store import TaskStore, check_task_id
from otus.errors import ConfigError


@pytest.mark.parametrize("bad", ["../x", "a/b", "", ".hidden", "x" * 65, "a..b", "a b"])
def test_ids_that_could_escape_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        check_task_id(bad)


def test_save_load_delete(tmp_path: Path) -> None:
    store = TaskStore(tmp_path)
    store.save("sip-1", {"config": {"id": "sip-1"}, "state": "running"})
    assert (tmp_path / "tasks" / "sip-1.json").stat().st_mode & 0o777 == 0o600
    assert store.load_all() == {"sip-1": {"config": {"id": "sip-1"}, "state": "running"}}
    store.delete("sip-1")
    assert store.load_all() == {}


def test_leftovers_and_corrupt_files(tmp_path: Path) -> None:
    store = TaskStore(tmp_path)
    store.save("good", {"config": {"id": "good"}})
    (store.dir / ".good.json.123.tmp").write_text("{half")
    (store.dir / "bad.json").write_text("{not json")
    loaded = TaskStore(tmp_path)
    assert list(loaded.load_all()) == ["good"]
    assert not list(store.dir.glob(".*.tmp"))
    assert (store.dir / "bad.corrupt").exists()
    assert len(loaded.corrupt) == 1
    assert "bad.json" in loaded.corrupt[0]


@pytest.mark.parametrize(
    "record",
    [
        '{"config": "x", "state": "running"}',
        '{"config": {"id": "t"}, "state": "bogus"}',
        '{"config": {"id": "t"}, "state": "running", "expires_at": "tomorrow"}',
        '{"config": {"id": "t"}, "since": [1]}',
        '{"config": {"id": "t"}, "reason": 5}',
        "[1, 2]",
    ],
)
def test_a_record_of_the_wrong_shape_is_kept_aside_like_bad_json(
    tmp_path: Path, record: str
) -> None:
    """Before, these reached the daemon's restore and stopped it from starting (ValueError,
    TypeError tracebacks on every start until someone deleted the file)."""
    store = TaskStore(tmp_path)
    store.save("good", {"config": {"id": "good"}, "state": "stopped", "since": 1.0})
    (store.dir / "odd.json").write_text(record)
    loaded = TaskStore(tmp_path)
    assert list(loaded.load_all()) == ["good"]
    assert (store.dir / "odd.corrupt").exists()
    assert len(loaded.corrupt) == 1
    assert "odd.json" in loaded.corrupt[0]
