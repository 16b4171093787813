"""The generic JSON-RPC 2.0 dispatcher (rpc/jsonrpc.py): every error code of the spec,
batches, notifications, sync and async methods, typed errors as error objects."""

from __future__ import annotations

import asyncio
import json
import pickle

from zg_actors.errors import InvalidInput, NotFound
from zg_actors.rpc.jsonrpc import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    SERVER_ERROR,
    UNKNOWN_METHOD,
    Registry,
    RpcError,
)


def registry() -> Registry:
    async def add(a: int, b: int = 0) -> int:
        return a + b

    def fail(kind: str) -> None:
        if kind == "input":
            raise InvalidInput(f"value {kind!r} is bad", value=kind)
        if kind == "missing":
            raise NotFound("no such thing", thing="x")
        raise RuntimeError("secret internals")

    r = Registry()
    r.add("t_add", add)
    r.add("t_fail", fail)
    return r


def ask(body: object) -> object:
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    answer = asyncio.run(registry().handle(raw))
    return None if answer is None else json.loads(answer)


def test_a_call_answers_with_its_id_and_result_positional_or_named() -> None:
    assert ask({"jsonrpc": "2.0", "id": 7, "method": "t_add", "params": [2, 3]}) == {
        "jsonrpc": "2.0", "id": 7, "result": 5}
    assert ask({"jsonrpc": "2.0", "id": "x", "method": "t_add", "params": {"a": 4}})[
        "result"] == 4


def test_parse_error_invalid_request_and_method_not_found() -> None:
    assert ask(b"{not json")["error"]["code"] == PARSE_ERROR
    assert ask({"jsonrpc": "1.0", "id": 1, "method": "t_add"})["error"]["code"] == INVALID_REQUEST
    assert ask({"jsonrpc": "2.0", "id": 1, "method": 5})["error"]["code"] == INVALID_REQUEST
    assert ask({"jsonrpc": "2.0", "id": 1, "method": "t_add", "params": 3})["error"][
        "code"] == INVALID_REQUEST
    assert ask([])["error"]["code"] == INVALID_REQUEST
    missing = ask({"jsonrpc": "2.0", "id": 1, "method": "t_nope"})["error"]
    assert missing["code"] == METHOD_NOT_FOUND and missing["data"] == {"method": "t_nope"}


def test_params_that_do_not_fit_the_signature_are_invalid_params() -> None:
    error = ask({"jsonrpc": "2.0", "id": 1, "method": "t_add", "params": [1, 2, 3]})["error"]
    assert error["code"] == INVALID_PARAMS and "t_add" in error["message"]


def test_typed_errors_become_error_objects_naming_the_value() -> None:
    bad = ask({"jsonrpc": "2.0", "id": 1, "method": "t_fail", "params": ["input"]})["error"]
    assert bad["code"] == INVALID_PARAMS and bad["data"]["value"] == "input"
    missing = ask({"jsonrpc": "2.0", "id": 1, "method": "t_fail", "params": ["missing"]})
    assert missing["error"]["code"] == SERVER_ERROR
    assert missing["error"]["data"]["thing"] == "x"
    bug = ask({"jsonrpc": "2.0", "id": 1, "method": "t_fail", "params": ["bug"]})["error"]
    assert bug["code"] == SERVER_ERROR and "secret" not in json.dumps(bug)


def test_batches_answer_each_request_and_skip_notifications() -> None:
    answers = ask([{"jsonrpc": "2.0", "id": 1, "method": "t_add", "params": [1, 1]},
                   {"jsonrpc": "2.0", "method": "t_add", "params": [1, 1]},
                   {"jsonrpc": "2.0", "id": 2, "method": "t_nope"}, 5])
    assert [a.get("result") for a in answers] == [2, None, None]
    assert [a.get("error", {}).get("code") for a in answers] == [None, METHOD_NOT_FOUND,
                                                                 INVALID_REQUEST]
    assert ask({"jsonrpc": "2.0", "method": "t_add", "params": [1]}) is None
    assert ask([{"jsonrpc": "2.0", "method": "t_add", "params": [1]}]) is None


def test_an_rpc_error_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(RpcError(-32601, "m", {"method": "x"})))
    assert error.to_dict() == {"code": -32601, "message": "m", "data": {"method": "x"}}


def test_the_observer_is_told_each_request_with_its_error_code_and_no_made_up_method() -> None:
    told: list[tuple[str, int | None]] = []
    r = registry()
    r.observer = lambda method, seconds, code: told.append((method, code)) or None
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "t_add", "params": [1]},
             {"jsonrpc": "2.0", "id": 2, "method": "t_add", "params": [1, 2, 3]},
             {"jsonrpc": "2.0", "id": 3, "method": "t_fail", "params": ["other"]},
             {"jsonrpc": "2.0", "method": "t_add", "params": [1]},  # a notification
             {"jsonrpc": "2.0", "id": 4, "method": "made_up_42", "params": []}]
    asyncio.run(r.handle(json.dumps(batch)))
    assert told == [("t_add", None), ("t_add", INVALID_PARAMS), ("t_fail", SERVER_ERROR),
                    ("t_add", None), (UNKNOWN_METHOD, METHOD_NOT_FOUND)]
