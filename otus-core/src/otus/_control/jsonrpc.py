"""JSON-RPC 2.0 message handling, independent of the transport.

One request per line. Errors use the standard codes with messages a user can act on; an
``OtusError`` raised by a method becomes ``-32000`` ("server error") with its message.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from otus.errors import ConfigError, OtusError

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000  # an OtusError: the request was understood but could not be done
CONFIG_INVALID = -32001  # task or config validation failed
TASK_FAILED = -32002  # task_create: the task was created but failed to start (data: its summary)

Handler = Callable[..., Awaitable[Any]]
log = logging.getLogger("otus.control")


class RpcError(Exception):
    """An error to return to the client as a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def decode_json(data: bytes | str) -> Any:
    """``json.loads`` for input from outside: nesting past the decoder's recursion limit (a
    line of 100,000 ``[``) is a ``ValueError`` like any other malformed JSON."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _error(req_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "error": err, "id": req_id}


class Dispatcher:
    """Maps method names to async handlers taking keyword parameters."""

    def __init__(self, methods: Mapping[str, Handler]) -> None:
        self._methods = dict(methods)

    @property
    def methods(self) -> list[str]:
        return sorted(self._methods)

    async def handle_line(self, line: bytes) -> bytes | None:
        """Answer one newline-delimited message; ``None`` for a notification."""
        try:
            message = decode_json(line)
        except ValueError as exc:  # UnicodeDecodeError included
            return _encode(_error(None, PARSE_ERROR, f"parse error: not valid JSON ({exc})"))
        if isinstance(message, list):
            if not message:
                return _encode(_error(None, INVALID_REQUEST, "invalid request: empty batch"))
            answers = [a for a in [await self._handle(m) for m in message] if a is not None]
            return _encode(answers) if answers else None
        answer = await self._handle(message)
        return None if answer is None else _encode(answer)

    async def _handle(self, message: Any) -> dict[str, Any] | None:
        if not isinstance(message, dict):
            return _error(None, INVALID_REQUEST, "invalid request: expected a JSON object")
        req_id = message.get("id")
        is_notification = "id" not in message
        if message.get("jsonrpc") != "2.0":
            return _error(req_id, INVALID_REQUEST, 'invalid request: "jsonrpc" must be "2.0"')
        method = message.get("method")
        if not isinstance(method, str):
            return _error(req_id, INVALID_REQUEST, 'invalid request: "method" must be a string')
        params = message.get("params", {})
        if not isinstance(params, dict):
            return _error(req_id, INVALID_PARAMS, "invalid params: use named parameters (object)")
        handler = self._methods.get(method)
        if handler is None:
            known = ", ".join(self.methods)
            return _error(req_id, METHOD_NOT_FOUND, f"method not found: {method!r}; known: {known}")
        problem = _params_problem(handler, params)
        if problem is not None:
            return _error(req_id, INVALID_PARAMS, f"invalid params for {method}: {problem}")
        try:
            result = await handler(**params)
        except RpcError as exc:
            return _error(req_id, exc.code, exc.message, exc.data)
        except ConfigError as exc:
            return _error(req_id, CONFIG_INVALID, str(exc))
        except OtusError as exc:
            return _error(req_id, SERVER_ERROR, str(exc))
        except Exception as exc:
            log.exception("control method %s failed", method)
            return _error(req_id, INTERNAL_ERROR, f"internal error in {method}: {exc!r}")
        if is_notification:
            return None
        return {"jsonrpc": "2.0", "result": result, "id": req_id}


def _params_problem(handler: Handler, params: dict[str, Any]) -> str | None:
    """What is wrong with ``params`` for ``handler``, in the client's terms (names, not a
    Python ``TypeError``); ``None`` when they fit. A ``TypeError`` raised inside a method is
    then a bug of the method (internal error), not bad params."""
    signature = inspect.signature(handler)
    try:
        signature.bind(**params)
    except TypeError:
        named = [
            p
            for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        known = [p.name for p in named]
        unknown = sorted(set(params) - set(known))
        if unknown:
            return f"unknown parameter {unknown[0]!r}; known: {', '.join(known) or 'none'}"
        missing = [p.name for p in named if p.default is p.empty and p.name not in params]
        return f"missing parameter {missing[0]!r}" if missing else "parameters do not fit"
    return None


def _encode(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=str).encode() + b"\n"
