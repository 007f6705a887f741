"""The deployment files under ``deploy/`` agree with systemd, Kubernetes and Otus's defaults.

systemd's own tools check the unit (``systemd-analyze verify`` and ``security`` in a scratch
root), the sysusers and tmpfiles entries (applied to that root), and the Kubernetes manifest is
checked for what makes capture work (host network, capabilities, probes on the metrics port)
and for files the daemon accepts; its task hook runs against a real daemon.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

from otus._config import settings as settings_module
from otus._config.loader import load_document
from otus._config.settings import Settings, load_settings
from otus._metrics.server import parse_listen
from otus.cli.main import DEFAULT_CONFIG, build_parser
from otus.testing import need_tool
from otus.testing.daemon import free_port

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy/systemd/otus.service"
TMPFILES = ROOT / "deploy/systemd/otus.tmpfiles.conf"
SYSUSERS = ROOT / "deploy/systemd/otus.sysusers.conf"
MANIFEST = ROOT / "deploy/kubernetes/otus-daemonset.yaml"
CAPS = {"CAP_NET_RAW", "CAP_NET_ADMIN"}


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """``{section: {key: [values...]}}``; repeated keys (``Environment=``) keep every value."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path}: key outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"{path}: not a key=value line: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def root_defaults() -> tuple[str, str]:
    """The socket path and data directory Otus uses when it runs as root."""
    with mock.patch.object(settings_module.os, "geteuid", return_value=0):
        return settings_module.default_socket_path(), settings_module.default_data_dir()


@pytest.fixture(scope="module")
def service() -> dict[str, list[str]]:
    return parse_unit(UNIT)["Service"]


def one(service: dict[str, list[str]], key: str) -> str:
    values = service.get(key)
    assert values is not None, f"{key}= missing in {UNIT}"
    assert len(values) == 1, f"{key}= must appear once in {UNIT}, got {values}"
    return values[0]


# -- systemd ----------------------------------------------------------------------------------


def test_unit_runs_the_daemon_unprivileged_with_only_the_capture_capabilities(
    service: dict[str, list[str]],
) -> None:
    exec_start = one(service, "ExecStart").split()
    assert exec_start[0] == "/usr/local/bin/otus"
    args = build_parser().parse_args(exec_start[1:])  # exits (fails the test) on bad usage
    assert args.command == "daemon"
    assert args.config == DEFAULT_CONFIG
    assert one(service, "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one(service, "Type") == "simple"
    assert one(service, "User") not in ("root", "0")
    assert set(one(service, "AmbientCapabilities").split()) == CAPS
    assert set(one(service, "CapabilityBoundingSet").split()) == CAPS
    assert one(service, "NoNewPrivileges") == "yes"
    assert one(service, "ProtectSystem") == "strict"
    families = set(one(service, "RestrictAddressFamilies").split())
    assert {"AF_PACKET", "AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"} <= families


def test_unit_paths_are_the_root_defaults(
    service: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The non-root service user is given the paths root would use, inside its directories."""
    socket_default, data_default = root_defaults()
    assert (socket_default, data_default) == ("/run/otus/otus.sock", "/var/lib/otus")
    for item in service.get("Environment", []):
        for assignment in item.split():
            name, _, value = assignment.partition("=")
            monkeypatch.setenv(name, value)
    settings = load_settings(None)
    assert settings.control.socket == socket_default
    assert settings.data_dir == data_default
    assert settings.control.group == one(service, "Group")
    runtime_dir = "/run/" + one(service, "RuntimeDirectory")
    state_dir = "/var/lib/" + one(service, "StateDirectory")
    assert os.path.dirname(settings.control.socket) == runtime_dir
    assert settings.data_dir == state_dir
    # The pid file sits next to the socket (otus._daemon.lifecycle).
    assert str(Path(settings.control.socket).with_suffix(".pid")).startswith(runtime_dir + "/")
    writable = one(service, "ReadWritePaths").split()
    assert runtime_dir in writable
    assert state_dir in writable


def _scratch_root(tmp_path: Path) -> Path:
    """A root with the unit, the commands it names and systemd's own units (for verify)."""
    root = tmp_path / "root"
    (root / "usr/local/bin").mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copytree("/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    otus = root / "usr/local/bin/otus"
    otus.write_text("#!/bin/sh\n")
    otus.chmod(0o755)
    shutil.copy2(shutil.which("kill") or "/bin/kill", root / "bin/kill")
    shutil.copy2(UNIT, root / "etc/systemd/system/otus.service")
    return root


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    tool = need_tool("systemd-analyze")
    root = _scratch_root(tmp_path)
    out = subprocess.run(
        [tool, f"--root={root}", "verify", str(root / "etc/systemd/system/otus.service")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    # Unknown keys and bad values are only warnings (exit 0): any output is a failure.
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip() == "", out.stderr
    assert out.stdout.strip() == "", out.stdout


def test_systemd_analyze_security_rates_the_unit_ok(tmp_path: Path) -> None:
    tool = need_tool("systemd-analyze")
    root = _scratch_root(tmp_path)
    out = subprocess.run(
        [tool, "--offline=yes", f"--root={root}", "security",
         str(root / "etc/systemd/system/otus.service")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    match = re.search(r"Overall exposure level for otus\.service: ([0-9.]+) (\w+)", out.stdout)
    assert match, out.stdout + out.stderr
    # systemd's scale: < 5 is "OK" or better, 5-7 "MEDIUM", above "EXPOSED"/"UNSAFE".
    assert float(match.group(1)) < 5.0, out.stdout


def test_sysusers_and_tmpfiles_create_the_user_and_directories(
    tmp_path: Path, service: dict[str, list[str]]
) -> None:
    sysusers = need_tool("systemd-sysusers")
    tmpfiles = need_tool("systemd-tmpfiles")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    subprocess.run([sysusers, f"--root={root}", str(SYSUSERS)], check=True, capture_output=True)
    passwd = {line.split(":")[0]: line.split(":") for line in (root / "etc/passwd").read_text()
              .splitlines()}  # fmt: skip
    user = one(service, "User")
    assert user in passwd
    uid, gid = int(passwd[user][2]), int(passwd[user][3])
    assert uid != 0
    subprocess.run([tmpfiles, f"--root={root}", "--create", str(TMPFILES)], check=True,
                   capture_output=True)  # fmt: skip
    socket_default, data_default = root_defaults()
    for directory in (os.path.dirname(socket_default), data_default):
        st = (root / directory.lstrip("/")).stat()
        assert (st.st_uid, st.st_gid) == (uid, gid), directory
        assert st.st_mode & 0o007 == 0, f"{directory} must not be world-accessible"


# -- Kubernetes -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    return {d["kind"]: d for d in docs}


def _container(manifest: dict[str, Any]) -> dict[str, Any]:
    containers = manifest["DaemonSet"]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def _config_files(manifest: dict[str, Any], tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, text in manifest["ConfigMap"]["data"].items():
        out[name] = tmp_path / name
        out[name].write_text(text)
    return out


def test_daemonset_captures_on_the_host_network_without_privilege(
    manifest: dict[str, Any],
) -> None:
    pod = manifest["DaemonSet"]["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert pod.get("tolerations"), "a capture agent belongs on every node"
    sc = _container(manifest)["securityContext"]
    assert sc.get("privileged", False) is False
    assert sc.get("allowPrivilegeEscalation") is False
    assert {f"CAP_{c}" for c in sc["capabilities"]["add"]} == CAPS
    assert sc["capabilities"]["drop"] == ["ALL"]
    resources = _container(manifest)["resources"]
    assert resources["requests"]
    assert resources["limits"]


def test_daemonset_probes_hit_the_metrics_endpoint_of_its_config(
    manifest: dict[str, Any], tmp_path: Path
) -> None:
    files = _config_files(manifest, tmp_path)
    settings = load_settings(str(files["otus.toml"]))
    default = Settings().metrics
    assert (settings.metrics.listen, settings.metrics.path) == (default.listen, default.path)
    port = parse_listen(settings.metrics.listen)[1]
    container = _container(manifest)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert (get["port"], get["path"]) == (port, settings.metrics.path), probe
    assert container["ports"][0]["containerPort"] == port
    annotations = manifest["DaemonSet"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)


def test_daemonset_config_and_mounts_agree(manifest: dict[str, Any], tmp_path: Path) -> None:
    files = _config_files(manifest, tmp_path)
    settings = load_settings(str(files["otus.toml"]))
    socket_default, data_default = root_defaults()
    assert (settings.control.socket, settings.data_dir) == (socket_default, data_default)
    container = _container(manifest)
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert data_default in mounts
    assert os.path.dirname(socket_default) in mounts
    args = build_parser().parse_args(container["command"][1:])
    assert container["command"][0] == "otus"
    assert (args.command, args.config) == ("daemon", DEFAULT_CONFIG)
    assert mounts[DEFAULT_CONFIG]["subPath"] == "otus.toml"
    volumes = {v["name"]: v for v in manifest["DaemonSet"]["spec"]["template"]["spec"]["volumes"]}
    assert "hostPath" in volumes[mounts[data_default]["name"]], "tasks must outlive the pod"
    # Every other ConfigMap entry is a task file mounted under /etc/otus/tasks.
    for name in files:
        if name != "otus.toml":
            assert mounts[f"/etc/otus/tasks/{name}"]["subPath"] == name


def test_daemonset_files_pass_otus_validate(manifest: dict[str, Any], tmp_path: Path) -> None:
    files = _config_files(manifest, tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "otus.cli.main", "validate", *map(str, files.values())],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.count(": ok:") == len(files)


# -- the postStart hook against a real daemon -------------------------------------------------


@pytest.fixture
def hook_env(manifest: dict[str, Any], tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The ConfigMap's files with their paths moved into ``tmp_path`` and the task's capture
    replaced by the bundled pcap (same task id), plus a daemon started on that config."""
    bindir = Path(sys.executable).parent
    if not (bindir / "otus").exists():
        bindir = Path(need_tool("otus")).parent  # the hook runs the `otus` command
    etc = tmp_path / "etc"
    (etc / "tasks").mkdir(parents=True)
    socket_path = str(tmp_path / "run/otus.sock")
    port = free_port()
    text = manifest["ConfigMap"]["data"]["otus.toml"]
    text = text.replace("/run/otus/otus.sock", socket_path)
    text = text.replace("/var/lib/otus", str(tmp_path / "data"))
    text = text.replace('listen = ":9091"', f'listen = "127.0.0.1:{port}"')
    (etc / "otus.toml").write_text(text)
    task_name = next(n for n in manifest["ConfigMap"]["data"] if n != "otus.toml")
    (etc / "tasks" / task_name).write_text(manifest["ConfigMap"]["data"][task_name])
    task_id = load_document(str(etc / "tasks" / task_name))["id"]
    out = tmp_path / "records.jsonl"
    (etc / "tasks" / task_name).write_text(
        f'id = "{task_id}"\n[capture]\nname = "pcap"\n'
        f'config = {{ path = "{ROOT / "samples/sip-calls.pcap"}", loop = 0 }}\n'
        '[[parsers]]\nname = "sip"\n[[reporters]]\nname = "console"\n'
        f'config = {{ output = "{out}", format = "json" }}\n'
    )
    hook = _container(manifest)["lifecycle"]["postStart"]["exec"]["command"]
    hook = [part.replace("/etc/otus/", f"{etc}/") for part in hook]
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}",
           "OTUS_LOG_FORMAT": "json"}  # fmt: skip
    log = (tmp_path / "daemon.log").open("wb")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "otus.cli.main", "--config", str(etc / "otus.toml"), "daemon"],
        stdout=log, stderr=log, env=env,
    )  # fmt: skip
    try:
        yield {"hook": hook, "env": env, "task_id": task_id, "socket": socket_path,
               "config": str(etc / "otus.toml"), "log": tmp_path / "daemon.log"}  # fmt: skip
    finally:
        if daemon.poll() is None:
            daemon.terminate()
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(5)
        log.close()


def test_poststart_hook_creates_the_task_once(hook_env: dict[str, Any]) -> None:
    """The hook waits for the socket, creates the task, and leaves an existing one alone."""
    env = hook_env["env"]
    first = subprocess.run(hook_env["hook"], capture_output=True, text=True, env=env, timeout=90)
    assert first.returncode == 0, first.stderr + hook_env["log"].read_text()
    created = json.loads(first.stdout)  # the CLI prints JSON when not on a terminal
    assert (created["id"], created["state"]) == (hook_env["task_id"], "running")
    second = subprocess.run(hook_env["hook"], capture_output=True, text=True, env=env, timeout=90)
    assert second.returncode == 0, second.stderr
    assert second.stdout == "", "an existing task must not be created again"
    listing = subprocess.run(
        [sys.executable, "-m", "otus.cli.main", "--config", hook_env["config"], "task", "list",
         "--json"], capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert listing.returncode == 0, listing.stderr
    ids = [t["id"] for t in json.loads(listing.stdout)]
    assert ids == [hook_env["task_id"]]
    # The task was persisted where the daemon restores it from.
    data_dir = Path(load_settings(hook_env["config"]).data_dir)
    deadline = time.monotonic() + 10
    while not (data_dir / "tasks" / f"{hook_env['task_id']}.json").exists():
        assert time.monotonic() < deadline, "task not persisted"
        time.sleep(0.1)
