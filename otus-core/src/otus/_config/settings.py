"""The global configuration (root key ``otus``): one model per section, with documented defaults.

Every field has a default, so Otus runs with no file at all. Defaults that depend on the machine
(hostname, socket path, data directory) are computed and marked ``computed`` for the generated
reference (:mod:`otus._config.docs`).
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from otus._config.env import apply_env
from otus._config.loader import load_document
from otus._config.messages import config_error
from otus._config.types import ByteSize, Duration
from otus._decode.options import DecoderOptions
from otus.errors import ConfigError

__all__ = ["Settings", "SettingsFile", "load_settings"]


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are re-validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _computed(text: str) -> Any:
    return {"computed": text}


def default_socket_path() -> str:
    """``/run/otus/otus.sock`` for root, else under ``$XDG_RUNTIME_DIR`` (or ``/tmp``)."""
    if os.geteuid() == 0:
        return "/run/otus/otus.sock"
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/otus-{os.geteuid()}"
    return os.path.join(runtime, "otus", "otus.sock")


def default_data_dir() -> str:
    """``/var/lib/otus`` for root, else ``$XDG_DATA_HOME/otus`` (``~/.local/share/otus``)."""
    if os.geteuid() == 0:
        return "/var/lib/otus"
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return os.path.join(base, "otus")


class NodeSettings(Section):
    """Who this agent is: its name in records, heartbeats and command routing."""

    hostname: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        description="Node name: the agent id in records and the target of remote commands.",
        json_schema_extra=_computed("the machine's hostname"),
    )
    tags: dict[str, str] = Field(
        default_factory=dict,
        description="Free-form labels of this node (site, rack…); processors can add them to "
        "records.",
    )


class ControlSettings(Section):
    """The local control socket (JSON-RPC 2.0 over a Unix socket)."""

    socket: str = Field(
        default_factory=default_socket_path,
        description="Path of the Unix socket the daemon listens on and the CLI connects to.",
        json_schema_extra=_computed(
            "/run/otus/otus.sock as root, else $XDG_RUNTIME_DIR/otus/otus.sock"
        ),
    )
    group: str | None = Field(
        None,
        description="Group allowed to use the socket (mode 0660); unset: owner only (0600).",
    )
    max_request_size: ByteSize = Field(
        1024 * 1024, ge=1024, description="Largest accepted request line."
    )
    max_connections: int = Field(
        4096,
        ge=1,
        description="Concurrent client connections; beyond, new clients are told the daemon is "
        "busy. Idle clients cost one file descriptor each (the daemon raises its soft fd limit).",
    )
    request_timeout: Duration = Field(
        10.0, gt=0, description="A client that sends no complete request for this long is closed."
    )


class SaslSettings(Section):
    """Kafka SASL authentication (unset mechanism: none)."""

    mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism; unset disables SASL."
    )
    username: str | None = Field(None, description="SASL user name.")
    password: SecretStr | None = Field(None, description="SASL password.")

    @model_validator(mode="after")
    def _credentials(self) -> SaslSettings:
        if self.mechanism and not (self.username and self.password):
            raise ValueError(f"SASL {self.mechanism} needs username and password")
        return self


class TlsSettings(Section):
    """TLS towards Kafka."""

    enabled: bool = Field(False, description="Connect to the brokers over TLS.")
    ca_file: str | None = Field(None, description="CA bundle; unset: the system store.")
    cert_file: str | None = Field(None, description="Client certificate (mutual TLS).")
    key_file: str | None = Field(None, description="Private key of the client certificate.")
    check_hostname: bool = Field(True, description="Verify the broker's name in its certificate.")


class KafkaSettings(Section):
    """The Kafka cluster shared by the command channel and the Kafka reporter."""

    brokers: list[str] = Field(
        default_factory=lambda: ["localhost:9092"],
        min_length=1,
        description="Bootstrap brokers as host:port.",
    )
    client_id: str = Field("otus", description="Client id sent to the brokers.")
    sasl: SaslSettings = Field(default_factory=SaslSettings)
    tls: TlsSettings = Field(default_factory=TlsSettings)


class HeartbeatSettings(Section):
    """Periodic liveness messages of this node on Kafka."""

    enabled: bool = Field(True, description="Send heartbeats while the command channel runs.")
    topic: str = Field("otus-heartbeats", description="Topic of the heartbeats.")
    interval: Duration = Field(30.0, gt=0, description="Time between two heartbeats.")


class CommandChannelSettings(Section):
    """Remote control over Kafka: commands in, responses out, routed by hostname."""

    enabled: bool = Field(False, description="Consume commands from Kafka.")
    topic: str = Field("otus-commands", description="Topic the commands are read from.")
    response_topic: str = Field("otus-responses", description="Topic the responses go to.")
    group_id: str | None = Field(
        None,
        description="Consumer group; unset: otus-<hostname>, so every node sees every command.",
    )
    command_ttl: Duration = Field(
        300.0, gt=0, description="Commands older than this are dropped unanswered."
    )
    hmac_key: SecretStr | None = Field(
        None, description="Shared key; when set (or hmac_key_file), unsigned commands are refused."
    )
    hmac_key_file: str | None = Field(None, description="File holding the shared HMAC key.")
    allow_shutdown: bool = Field(False, description="Accept the remote daemon_shutdown command.")
    heartbeat: HeartbeatSettings = Field(default_factory=HeartbeatSettings)

    @field_validator("enabled")
    @classmethod
    def _client_installed(cls, value: bool) -> bool:
        # otus-core alone has no Kafka client: the channel would start, fail in the background
        # and never say so
        if value and importlib.util.find_spec("aiokafka") is None:
            raise ValueError("the command channel needs aiokafka: pip install 'otus-core[kafka]'")
        return value

    @model_validator(mode="after")
    def _one_key(self) -> CommandChannelSettings:
        if self.hmac_key is not None and self.hmac_key_file is not None:
            raise ValueError("set hmac_key or hmac_key_file, not both")
        return self


def loki_label_name(name: str) -> str:
    """``name`` as a Loki label name (letters, digits, ``_``; no leading digit): Loki refuses
    every push whose stream has another. Configured labels must already be one; node tags
    (free-form) are written this way into the streams (``_logging/loki.py``)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return f"_{name}" if name[:1].isdigit() or not name else name


_LISTEN = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[\w.-]*):(\d{1,5})$")


class MetricsSettings(Section):
    """The Prometheus endpoint."""

    enabled: bool = Field(True, description="Serve Prometheus metrics.")
    listen: str = Field(":9091", description="host:port to listen on; ':port' means all addresses.")
    path: str = Field("/metrics", pattern=r"^/", description="HTTP path of the metrics.")
    interval: Duration = Field(
        5.0, gt=0, description="How often worker counters are collected into the daemon."
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        m = _LISTEN.match(value)
        if not m or not 0 < int(m.group(2)) < 65536:
            raise ValueError(f"listen must be host:port or :port, got {value!r}")
        return value


class LogFileSettings(Section):
    """Optional rotating log file (in addition to stderr)."""

    path: str | None = Field(None, description="Log file; unset: no file.")
    max_size: ByteSize = Field(100 * 1024**2, ge=1024, description="Rotate beyond this size.")
    max_age: Duration = Field(
        7 * 86400.0, gt=0, description="Delete rotated files older than this."
    )
    backups: int = Field(5, ge=0, description="Rotated files kept.")
    compress: bool = Field(True, description="gzip rotated files.")


class LokiSettings(Section):
    """Optional log shipping to Grafana Loki (batched, bounded, never blocking)."""

    url: str | None = Field(
        None, description="Push URL, e.g. http://loki:3100/loki/api/v1/push; unset: off."
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Stream labels added to every line (job, env…); names as Loki takes them "
        "(letters, digits, '_'), not 'level' (set per line).",
    )
    batch_size: int = Field(1000, ge=1, description="Lines per push.")
    batch_wait: Duration = Field(1.0, gt=0, description="Longest wait before a partial push.")
    buffer: int = Field(10000, ge=1, description="Lines buffered; beyond, new lines are dropped.")
    timeout: Duration = Field(5.0, gt=0, description="HTTP timeout of a push.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"use an http:// or https:// URL, got {value!r}")
        return value

    @field_validator("labels")
    @classmethod
    def _label_names(cls, labels: dict[str, str]) -> dict[str, str]:
        # Loki answers 400 to every push whose stream has any other name: no line would arrive.
        for name in labels:
            if not name or loki_label_name(name) != name:
                raise ValueError(
                    f"{name!r} is not a Loki label name (letters, digits and '_', not starting"
                    " with a digit)"
                )
            if name == "level":
                raise ValueError("'level' is set per line to the log level; choose another name")
        return labels


class LogSettings(Section):
    """Structured logging (structlog)."""

    level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        "info", description="Lowest level logged."
    )
    format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: console on a terminal, JSON otherwise."
    )
    file: LogFileSettings = Field(default_factory=LogFileSettings)
    loki: LokiSettings = Field(default_factory=LokiSettings)

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class TaskPersistenceSettings(Section):
    """Tasks survive a restart: saved under ``data_dir`` and restored on start."""

    enabled: bool = Field(True, description="Save tasks (atomic write) under data_dir/tasks.")
    restore_on_start: bool = Field(
        True, description="Restart the saved tasks when the daemon starts."
    )
    max_task_history: int = Field(
        100, ge=0, description="Finished tasks remembered for task_list/task_status."
    )


class ResourceSettings(Section):
    """Limits that keep one task from taking the machine."""

    max_tasks: int = Field(32, ge=1, description="Tasks the daemon runs at once.")
    max_workers_per_task: int = Field(64, ge=1, description="Upper bound of a task's workers.")
    max_memory_per_worker: ByteSize = Field(
        0,
        description="Address-space limit of a worker process; 0: no limit. Threads reserve "
        "much of it: below about 128MiB a pipeline cannot start its reporters.",
    )
    restart_backoff: Duration = Field(
        1.0, gt=0, description="First delay before restarting a crashed worker (doubles)."
    )
    restart_backoff_max: Duration = Field(60.0, gt=0, description="Longest restart delay.")


class BackpressureSettings(Section):
    """Bounded queues between the stages; what is dropped when one is full is counted.

    Capture and processing share one thread per worker, so the kernel ring is the buffer in
    front of the decoder (its overruns are ``drops.kernel``); each reporter runs on its own
    thread behind a queue of record batches, so a slow destination never stalls capture.
    """

    reporter_queue: int = Field(
        256, ge=1, description="Record batches buffered in front of each reporter's thread."
    )
    policy: Literal["drop_newest", "drop_oldest"] = Field(
        "drop_newest", description="Which batch a full reporter queue drops (counted)."
    )


class CoreSettings(Section):
    """Defaults of the data plane that tasks may override."""

    decoder: DecoderOptions = Field(
        default_factory=DecoderOptions,
        description="Decoder defaults; a task's [decoder] table is merged over these.",
    )


class Settings(Section):
    """Everything under the root key ``otus``."""

    node: NodeSettings = Field(default_factory=NodeSettings)
    control: ControlSettings = Field(default_factory=ControlSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    command_channel: CommandChannelSettings = Field(default_factory=CommandChannelSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    data_dir: str = Field(
        default_factory=default_data_dir,
        description="Where tasks and state are kept.",
        json_schema_extra=_computed("/var/lib/otus as root, else ~/.local/share/otus"),
    )
    task_persistence: TaskPersistenceSettings = Field(default_factory=TaskPersistenceSettings)
    resources: ResourceSettings = Field(default_factory=ResourceSettings)
    backpressure: BackpressureSettings = Field(default_factory=BackpressureSettings)
    core: CoreSettings = Field(default_factory=CoreSettings)


class SettingsFile(BaseModel):
    """A global configuration file: a single root key ``otus``."""

    model_config = ConfigDict(extra="forbid")

    otus: Settings = Field(default_factory=Settings)


def load_settings(
    path: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None
) -> Settings:
    """The global configuration: the file at ``path`` (defaults when ``None``), then the
    ``OTUS_<PATH>`` environment overrides; :class:`ConfigError` names the culprit."""
    source = os.fspath(path) if path is not None else ""
    data: dict[str, Any] = load_document(path) if path is not None else {}
    if path is not None and "otus" not in data:
        hint = " (this looks like a task file)" if "capture" in data or "id" in data else ""
        raise ConfigError(f"a global config file has the root table [otus]{hint}", source=source)
    merged, origins = apply_env(data, SettingsFile, os.environ if environ is None else environ)
    try:
        return SettingsFile.model_validate(merged).otus
    except ValidationError as err:
        raise config_error(err, source=source, model=SettingsFile, sources=origins) from None
