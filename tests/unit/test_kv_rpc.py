"""kv_* methods (storage/kv/rpc.py) over a replayed state, through the JSON-RPC
dispatcher as the Serve app runs them; and the Follower over a flow without Ray."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from tests.unit.test_kv_replay import ALICE, BOB, SKIP, UNFOLLOWED, S, node, put, send
from zg_actors.rpc.jsonrpc import INVALID_PARAMS, SERVER_ERROR
from zg_actors.storage.constants import STATUS_FINALIZED, STATUS_UPLOADING
from zg_actors.storage.kv.encoding import AccessControl, AclOp, KVTx, encode_tx, stream_tags
from zg_actors.storage.kv.follow import Follower
from zg_actors.storage.kv.replay import Replayer
from zg_actors.storage.kv.rpc import MAX_QUERY_LEN_BYTES, KvApi
from zg_actors.storage.kv.state import KVState
from zg_actors.storage.kv.store import MemoryStore


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


SID = "0x" + S.hex()


def api_after_history() -> KvApi:
    """tx 0: alice writes a=1 (admin); tx 1: a=22, b=big; tx 2: deletes b; tx 3: bob
    refused."""
    replayer = node(S)
    assert send(replayer, ALICE, put(S, b"a", b"1")) == "Commit"
    assert send(replayer, ALICE, KVTx(SKIP, writes=put(S, b"a", b"22").writes
                                      + put(S, b"b", b"x" * 300_000).writes)) == "Commit"
    assert send(replayer, ALICE, put(S, b"b", b"")) == "Commit"
    assert send(replayer, BOB, put(S, b"a", b"bob")) == "SenderNoWritePermission"
    return KvApi(replayer.state, [S])


def call(api: KvApi, method: str, *params: object) -> dict:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    return json.loads(asyncio.run(api.registry().handle(body)))


def result(api: KvApi, method: str, *params: object) -> object:
    answer = call(api, method, *params)
    assert "error" not in answer, answer
    return answer["result"]


def test_values_at_versions_and_missing_keys_in_0g_shapes() -> None:
    api = api_after_history()
    assert result(api, "kv_getValue", SID, b64(b"a"), 0, 100) == {
        "version": 1, "data": b64(b"22"), "size": 2}
    assert result(api, "kv_getValue", SID, b64(b"a"), 0, 100, 0) == {
        "version": 0, "data": b64(b"1"), "size": 1}
    assert result(api, "kv_getValue", SID, b64(b"zz"), 0, 100) == {
        "version": 0, "data": "", "size": 0}
    page = result(api, "kv_getValue", SID, b64(b"b"), 262_144, MAX_QUERY_LEN_BYTES, 1)
    assert page["size"] == 300_000 and base64.b64decode(page["data"]) == b"x" * 37_856


def test_iteration_skips_deleted_keys_and_reads_at_a_version() -> None:
    api = api_after_history()
    assert result(api, "kv_getFirst", SID, 0, 10)["key"] == b64(b"a")
    assert result(api, "kv_getLast", SID, 0, 10)["key"] == b64(b"a")  # b is deleted at 2
    assert result(api, "kv_getLast", SID, 0, 10, 1)["key"] == b64(b"b")
    assert result(api, "kv_getNext", SID, b64(b"a"), 0, 10, False) is None
    assert result(api, "kv_getNext", SID, b64(b"a"), 0, 10, True)["data"] == b64(b"22")
    assert result(api, "kv_getPrev", SID, b64(b"b"), 0, 1, False, 1) == {
        "version": 1, "key": b64(b"a"), "data": b64(b"2"), "size": 2}


def test_results_roles_streams_and_progress() -> None:
    api = api_after_history()
    assert result(api, "kv_getTransactionResult", 3) == "SenderNoWritePermission"
    assert result(api, "kv_getTransactionResult", 9) is None
    assert result(api, "kv_getHoldingStreamIds") == [SID]
    assert result(api, "kv_getReplayProgress") == {"appliedSeq": 3}
    alice, bob = "0x" + ALICE.hex(), "0x" + BOB.hex()
    assert result(api, "kv_isAdmin", alice, SID) is True
    assert result(api, "kv_isAdmin", bob, SID) is False
    assert result(api, "kv_hasWritePermission", bob, SID, b64(b"a")) is False
    assert result(api, "kv_isSpecialKey", SID, b64(b"a")) is False
    assert result(api, "kv_isWriterOfKey", bob, SID, b64(b"a")) is False
    assert result(api, "kv_isWriterOfStream", alice, SID) is False
    assert result(api, "kv_getStatus") is True
    assert KvApi(KVState(MemoryStore()), [S]).get_replay_progress() == {"appliedSeq": None}


@pytest.mark.parametrize(("method", "params", "code", "named"), [
    ("kv_getValue", [SID, "not base64!", 0, 10], INVALID_PARAMS, "not base64!"),
    ("kv_getValue", [SID, b64(b"a"), 0, MAX_QUERY_LEN_BYTES + 1], INVALID_PARAMS,
     str(MAX_QUERY_LEN_BYTES + 1)),
    ("kv_getValue", ["0x" + UNFOLLOWED.hex(), b64(b"a"), 0, 10], SERVER_ERROR,
     "0x" + UNFOLLOWED.hex()),
    ("kv_getValue", ["0x12", b64(b"a"), 0, 10], INVALID_PARAMS, "0x12"),
    ("kv_getValue", [SID, b64(b"a"), -1, 10], INVALID_PARAMS, "-1"),
    ("kv_getValue", [SID, b64(b"a"), 5, 10], INVALID_PARAMS, "5"),
    ("kv_getValue", [SID, b64(b"a"), 0, 10, "latest"], INVALID_PARAMS, "latest"),
    ("kv_getNext", [SID, b64(b"a"), 0, 10, "yes"], INVALID_PARAMS, "yes"),
    ("kv_isAdmin", ["0xzz", SID], INVALID_PARAMS, "0xzz"),
    ("kv_getValue", [SID], INVALID_PARAMS, "kv_getValue"),
])
def test_bad_params_are_errors_naming_the_value_and_change_nothing(
        method: str, params: list, code: int, named: str) -> None:
    api = api_after_history()
    before = api.state.digest([S])
    error = call(api, method, *params)["error"]
    assert error["code"] == code
    assert named in error["message"]
    assert api.state.digest([S]) == before


class Flow:
    """A flow in memory: entries (sender, tags, body, status) in tx_seq order."""

    def __init__(self) -> None:
        self.entries: list[dict] = []
        self.fetched: list[int] = []

    def add(self, sender: bytes, tx: KVTx, status: str = STATUS_FINALIZED) -> None:
        self.entries.append({"tx_seq": len(self.entries), "sender": sender, "status": status,
                             "tags": stream_tags([S]), "body": encode_tx(tx)})

    def entry_count(self) -> int:
        return len(self.entries)

    def entry(self, tx_seq: int) -> dict:
        return self.entries[tx_seq]

    def fetch(self, info: dict) -> bytes:
        self.fetched.append(info["tx_seq"])
        return info["body"]


def test_the_follower_waits_at_an_entry_not_finalized_and_never_skips_it() -> None:
    flow = Flow()
    flow.add(ALICE, put(S, b"a", b"1"))
    flow.add(ALICE, put(S, b"a", b"2"), STATUS_UPLOADING)
    flow.add(ALICE, put(S, b"a", b"3"))
    follower = Follower(Replayer(KVState(MemoryStore()), [S]), flow)
    assert follower.catch_up() == 1 and follower.waiting_for == 1
    assert follower.catch_up() == 0  # still not held by the miners
    flow.entries[1]["status"] = STATUS_FINALIZED
    assert follower.catch_up() == 2 and follower.waiting_for is None
    assert follower.replayer.state.get_value(S, b"a").data == b"3"
    assert flow.fetched == [0, 1, 2]


def test_the_follower_tells_each_replayed_entry_its_result_and_the_lag() -> None:
    """What a KV node records as metrics: every entry replayed, its result, the entries the
    flow has beyond it; the lag stays while an entry waits for its data."""
    flow = Flow()
    flow.add(ALICE, put(S, b"a", b"1"))
    flow.add(BOB, put(S, b"a", b"2"))
    flow.add(ALICE, put(S, b"a", b"3"), STATUS_UPLOADING)
    flow.add(ALICE, put(S, b"b", b"4"))
    told: list[tuple[int, str | None, int]] = []
    follower = Follower(Replayer(KVState(MemoryStore()), [S]), flow,
                        lambda entry, result, lag: told.append((entry.tx_seq, result, lag)))
    assert follower.catch_up() == 2
    assert told == [(0, "Commit", 3), (1, "SenderNoWritePermission", 2)]
    assert follower.lag_entries == 2 and follower.waiting_for == 2
    flow.entries[2]["status"] = STATUS_FINALIZED
    assert follower.catch_up() == 2 and follower.lag_entries == 0
    assert told[2:] == [(2, "Commit", 1), (3, "Commit", 0)]


def test_the_follower_fetches_nothing_for_a_sender_without_permission() -> None:
    flow = Flow()
    flow.add(ALICE, KVTx(SKIP, controls=(AccessControl(AclOp.RENOUNCE_ADMIN_ROLE, S),)))
    flow.add(BOB, put(S, b"a", b"1"), STATUS_UPLOADING)  # never needed: no permission
    follower = Follower(Replayer(KVState(MemoryStore()), [S]), flow)
    assert follower.catch_up() == 2
    assert follower.replayer.state.tx_result(1) == "SenderNoWritePermission"
    assert flow.fetched == [0]
