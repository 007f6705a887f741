"""JSON-RPC 2.0 dispatch: standard error codes and messages a user can act on."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from otus._control.jsonrpc import Dispatcher, RpcError
from otus.errors import ConfigError, OtusError


async def _echo(value: Any = None) -> Any:
    return {"echo": value}


async def _fails(kind: str) -> Any:
    if kind == "config":
        raise ConfigError("bad thing", source="<rpc>", path="capture.name")
    if kind == "otus":
        raise OtusError("no task 'x'")
    if kind == "rpc":
        raise RpcError(-32602, "invalid params: nope")
    raise RuntimeError("boom")


def _call(line: bytes | str) -> Any:
    d = Dispatcher({"echo": _echo, "fails": _fails})
    raw = line.encode() if isinstance(line, str) else line
    out = asyncio.run(d.handle_line(raw))
    return None if out is None else json.loads(out)


def test_result_and_id_round_trip() -> None:
    ans = _call('{"jsonrpc":"2.0","method":"echo","params":{"value":3},"id":7}')
    assert ans == {"jsonrpc": "2.0", "result": {"echo": 3}, "id": 7}


def test_parse_error() -> None:
    assert _call(b"{nope")["error"]["code"] == -32700


def test_deeply_nested_json_is_a_parse_error() -> None:
    """A line nested past the decoder's recursion limit is answered, not a dropped connection."""
    err = _call(b"[" * 100_000)["error"]
    assert err["code"] == -32700
    assert "nested too deeply" in err["message"]


def test_invalid_requests() -> None:
    assert _call("[]")["error"]["code"] == -32600
    assert _call("3")["error"]["code"] == -32600
    assert _call('{"method":"echo","id":1}')["error"]["code"] == -32600
    assert _call('{"jsonrpc":"2.0","method":5,"id":1}')["error"]["code"] == -32600


def test_unknown_method_lists_known_ones() -> None:
    err = _call('{"jsonrpc":"2.0","method":"tsak_list","id":1}')["error"]
    assert err["code"] == -32601
    assert "echo" in err["message"]


def test_invalid_params() -> None:
    assert _call('{"jsonrpc":"2.0","method":"echo","params":[1],"id":1}')["error"]["code"] == -32602
    err = _call('{"jsonrpc":"2.0","method":"echo","params":{"bogus":1},"id":1}')["error"]
    assert err["code"] == -32602
    assert err["message"] == "invalid params for echo: unknown parameter 'bogus'; known: value"
    err = _call('{"jsonrpc":"2.0","method":"fails","params":{},"id":1}')["error"]
    assert err["message"] == "invalid params for fails: missing parameter 'kind'"


def test_a_type_error_inside_a_method_is_an_internal_error_not_bad_params() -> None:
    async def buggy() -> Any:
        return len(None)  # type: ignore[arg-type]

    out = asyncio.run(
        Dispatcher({"buggy": buggy}).handle_line(b'{"jsonrpc":"2.0","method":"buggy","id":1}')
    )
    assert out is not None
    assert json.loads(out)["error"]["code"] == -32603


def test_errors_map_to_codes() -> None:
    def code(kind: str) -> int:
        req = {"jsonrpc": "2.0", "method": "fails", "params": {"kind": kind}, "id": 1}
        return int(_call(json.dumps(req))["error"]["code"])

    assert code("config") == -32001
    assert code("otus") == -32000
    assert code("rpc") == -32602
    assert code("crash") == -32603


def test_notification_gets_no_answer_and_batches_work() -> None:
    assert _call('{"jsonrpc":"2.0","method":"echo"}') is None
    out = _call('[{"jsonrpc":"2.0","method":"echo","id":1},{"jsonrpc":"2.0","method":"echo"}]')
    assert [a["id"] for a in out] == [1]
