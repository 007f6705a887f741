"""A small synchronous JSON-RPC client for the CLI."""

from __future__ import annotations

import datetime
import itertools
import json
import os
import socket
from typing import Any

from otus.errors import ControlError

_ids = itertools.count(1)


class RpcCallError(ControlError):
    """The daemon answered with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.data = data


def _toml_value(value: Any) -> str:
    """A TOML/YAML date, time or datetime (``expires_at = 2030-01-01T00:00:00Z``) as ISO 8601,
    which the daemon validates back into the same value."""
    if isinstance(value, (datetime.date, datetime.time)):  # datetime is a date
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _check_directory(path: str) -> None:
    """Nothing is sent to a socket another user could have put in place (task files carry
    credentials): the rule the daemon listens by (``unsafe_directory``)."""
    from otus._control.server import unsafe_directory

    try:
        unsafe = unsafe_directory(os.path.dirname(os.path.abspath(path)))
    except OSError:
        return  # no such directory: connect() says so
    if unsafe:
        raise ControlError(f"not using the control socket {path}: {unsafe}")


def call(
    path: str, method: str, params: dict[str, Any] | None = None, timeout: float = 30.0
) -> Any:
    """Call ``method`` on the daemon listening at ``path`` and return its result."""
    _check_directory(path)
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(path)
    except FileNotFoundError:
        raise ControlError(
            f"no daemon is running (no control socket at {path}); start one with 'otus daemon'"
        ) from None
    except ConnectionRefusedError:
        raise ControlError(
            f"no daemon is listening on {path} (stale socket); start one with 'otus daemon'"
        ) from None
    except PermissionError:
        raise ControlError(
            f"permission denied on {path}: run as root, as the daemon's user, or as a member "
            "of the group set in otus.control.group"
        ) from None
    except OSError as exc:  # a path over 107 bytes, not a socket
        sock.close()
        raise ControlError(f"cannot connect to {path}: {exc.strerror or exc}") from None
    with sock:
        request = {"jsonrpc": "2.0", "method": method, "params": params or {}, "id": next(_ids)}
        sock.sendall(json.dumps(request, default=_toml_value).encode() + b"\n")
        buf = bytearray()
        try:
            while not buf.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
        except TimeoutError:
            raise ControlError(
                f"the daemon did not answer {method} within {timeout:.0f}s"
            ) from None
    if not buf:
        raise ControlError("the daemon closed the connection without an answer")
    answer = json.loads(buf)
    if "error" in answer:
        err = answer["error"]
        raise RpcCallError(err.get("code", 0), err.get("message", "error"), err.get("data"))
    return answer.get("result")
