"""Starting a task: which errors are permanent, and the TaskManager's ``starting`` state with
real worker processes (a missing file fails the task at once; a good one runs). Here, not in
otus-core's own tests: the tasks report through the console reporter."""

from __future__ import annotations

import asyncio
import pickle
import struct
from pathlib import Path
from typing import Any

import pytest

from otus._capture_pcap.source import Source
from otus._control.jsonrpc import INVALID_PARAMS, RpcError
from otus._daemon.methods import _wait_seconds
from otus._daemon.states import TaskState
from otus._daemon.tasks import START_WAIT, TaskManager
from otus._daemon.workers import WorkerSpawner
from otus.errors import CaptureError, ConfigError, OtusError, PipelineError, PluginError
from otus.testing import need


def test_which_errors_are_permanent() -> None:
    assert ConfigError("x").permanent
    assert PluginError("x").permanent
    assert not OtusError("x").permanent
    assert not PipelineError("x").permanent
    assert not CaptureError("interface 'x' is down").permanent
    assert CaptureError("no such interface", permanent=True).permanent
    # the flag survives pickling (an error handed between processes)
    again = pickle.loads(pickle.dumps(CaptureError("gone", permanent=True)))
    assert (str(again), again.permanent) == ("gone", True)


def test_a_capture_file_that_cannot_be_opened_is_permanent(tmp_path: Path) -> None:
    for path, why in ((tmp_path / "nosuch.pcap", "No such file or directory"),
                      (tmp_path, "Is a directory"),
                      (tmp_path / "nosuch" / "x.pcap", "No such file or directory")):  # fmt: skip
        with pytest.raises(CaptureError) as err:
            Source(str(path))
        assert str(err.value) == f"{path}: cannot open capture file: {why}"
        assert err.value.permanent


def test_the_wait_parameter() -> None:
    assert _wait_seconds(None) == START_WAIT
    assert _wait_seconds(0) == 0.0
    assert _wait_seconds(2.5) == 2.5
    for bad in (-1, 121, "10", True, float("nan")):
        with pytest.raises(RpcError) as err:
            _wait_seconds(bad)
        assert err.value.code == INVALID_PARAMS


# -- the TaskManager with real workers -------------------------------------------------------


def _pcap(path: Path, count: int, step: int) -> Path:
    from otus.testing.packets import ethernet_udp_frame

    frame = ethernet_udp_frame(b"x" * 20)
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(count):
            f.write(struct.pack("<IIII", 1_700_000_000 + i * step, 0, len(frame), len(frame)))
            f.write(frame)
    return path


def _config(task_id: str, pcap: Path, out: Path, **capture: Any) -> dict[str, Any]:
    return {
        "id": task_id,
        "capture": {"name": "pcap", "config": {"path": str(pcap), **capture}},
        "reporters": [{"name": "console", "config": {"output": str(out)}}],
    }


def _manager() -> TaskManager:
    from otus._config.validate import validate_task
    from otus._plugins.registry import load_registry

    registry = load_registry()
    need("console" in registry.names("reporter"), "otus-reporter-console not installed")
    return TaskManager(
        validate=lambda config, source: validate_task(config, source=source, registry=registry),
        spawner=WorkerSpawner({}, 0.2),
        store=None,
        restart_backoff=0.1,
        stop_timeout=5.0,
    )


def test_a_missing_file_fails_the_task_at_once_and_a_good_one_runs(tmp_path: Path) -> None:
    async def scenario() -> None:
        tasks = _manager()
        missing = tmp_path / "nosuch.pcap"
        failed = await tasks.create(_config("bad", missing, tmp_path / "b.out"), wait=30)
        assert failed["state"] == "failed"
        assert failed["reason"] == (
            f"worker 0: {missing}: cannot open capture file: No such file or directory"
        )
        assert (failed["restarts"], tasks.worker_restarts_total) == (0, 0)

        pcap = _pcap(tmp_path / "slow.pcap", 5, 1)
        good = await tasks.create(_config("good", pcap, tmp_path / "g.out", speed=1.0), wait=30)
        assert (good["state"], good["workers_started"], good["restarts"]) == ("running", 1, 0)
        await tasks.stop_all()

    asyncio.run(scenario())


def test_without_waiting_the_task_is_starting_until_its_worker_reports(tmp_path: Path) -> None:
    async def scenario() -> None:
        tasks = _manager()
        pcap = _pcap(tmp_path / "slow.pcap", 5, 1)
        created = await tasks.create(_config("t", pcap, tmp_path / "t.out", speed=1.0))
        assert (created["state"], created["workers_started"]) == ("starting", 0)
        task = tasks.tasks["t"]
        for _ in range(600):  # what the daemon's supervision loop does every half second
            tasks.supervise()
            if task.state != TaskState.STARTING:
                break
            await asyncio.sleep(0.05)
        assert task.state == TaskState.RUNNING
        await tasks.stop_all()
        assert task.summary()["state"] == "stopped"

    asyncio.run(scenario())
