"""The KV layer on a real local Ray cluster: KV nodes follow the flow, download and
verify entries from the miners, replay them into LMDB, and answer kv_* JSON-RPC over
Ray Serve's HTTP; the SDK's Batcher and Iterator, the CLI, transactions and faults."""

from __future__ import annotations

import base64
import json
import socket
import threading
import urllib.request

import pytest
import ray
from ray import serve

from zg_actors import runtime
from zg_actors.cli import main
from zg_actors.crypto.accounts import Account
from zg_actors.errors import InvalidInput
from zg_actors.rpc.jsonrpc import INVALID_PARAMS, SERVER_ERROR
from zg_actors.storage.actors import miner_name, stop_miners
from zg_actors.storage.kv.actors import (
    find_kv_nodes,
    kv_rpc_url,
    kv_statuses,
    start_kv_nodes,
    start_kv_rpc,
    stop_kv,
)
from zg_actors.storage.kv.client import Batcher, KvClient
from zg_actors.storage.kv.encoding import stream_id_from_name
from zg_actors.storage.sdk import StorageClient

from .conftest import cli_json

pytestmark = pytest.mark.integration
NOTES, OTHER = stream_id_from_name("notes"), stream_id_from_name("other")
FUNDING = 10**21  # network tokens a second writer gets: storage fees of many small txs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def kv(deployment, tmp_path):
    """One network, the miners, two KV nodes following "notes" and "other", the RPC."""
    d, config = deployment
    config = config.replace(**{"kv.nodes": 2, "kv.streams": "notes,other",
                               "kv.rpc_port": free_port()})
    config_file = tmp_path / "zg.yaml"
    config_file.write_text(json.dumps(config.to_dict()))  # JSON is YAML
    network_id = ray.get(d.manager.launch_network.remote(4))["network_id"]
    storage = StorageClient(config)
    nodes = start_kv_nodes(config)  # held: a non-detached actor lives while a handle does
    url = start_kv_rpc(config)
    yield KvClient(url), storage, config, network_id, str(config_file)
    del nodes
    stop_kv(config)
    serve.shutdown()
    stop_miners(config)


def post(url: str, body: object) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def digests(config) -> list[str]:
    return [s["digest"] for s in kv_statuses(config)]


def caught_up(config, tx_seq: int) -> bool:
    return all(s.get("applied_seq") is not None and s["applied_seq"] >= tx_seq
               for s in kv_statuses(config))


def funded_writer(storage: StorageClient, config, network_id: int, name: str) -> StorageClient:
    """A storage client of a new account, funded by the devnet storage client."""
    account = Account.from_seed(name.encode())
    storage.chain(network_id).send_and_wait(storage.account, "token", "transfer",
                                            [account.address, FUNDING])
    writer = StorageClient(config, start=False)
    writer.account = account
    return writer


def test_nodes_replay_serve_0g_rpc_resume_and_a_late_node_reaches_the_same_digest(
        kv, capsys) -> None:
    client, storage, config, network_id, config_file = kv
    batcher = Batcher(client, storage, network_id)
    batcher.set(NOTES, b"a", b"1")
    batcher.set(NOTES, b"big", bytes(range(256)) * 1200)  # 300 KiB: two RPC pages
    batcher.set(OTHER, b"x", b"y")
    first = batcher.exec(wait=True)
    assert first["result"] == "Commit"
    # Read through the real HTTP endpoint, in 0G's shapes.
    url = kv_rpc_url(config)
    sid = "0x" + NOTES.hex()
    answer = post(url, {"jsonrpc": "2.0", "id": 1, "method": "kv_getValue",
                        "params": [sid, base64.b64encode(b"a").decode(), 0, 100]})
    assert answer == {"jsonrpc": "2.0", "id": 1, "result": {
        "version": first["tx_seq"], "data": base64.b64encode(b"1").decode(), "size": 1}}
    assert client.get_value(NOTES, b"big").data == bytes(range(256)) * 1200
    batch = post(url, [{"jsonrpc": "2.0", "id": 1, "method": "kv_getHoldingStreamIds"},
                       {"jsonrpc": "2.0", "id": 2, "method": "kv_getTransactionResult",
                        "params": [first["tx_seq"]]}])
    assert batch[0]["result"] == [sid, "0x" + OTHER.hex()] and batch[1]["result"] == "Commit"
    # Bad input: errors naming the value, state unchanged.
    before = digests(config)
    for params, code, named in (
            ([sid, "%%%", 0, 10], INVALID_PARAMS, "%%%"),
            ([sid, "YQ==", 0, 262_145], INVALID_PARAMS, "262145"),
            (["0x" + "cd" * 32, "YQ==", 0, 10], SERVER_ERROR, "0x" + "cd" * 32),
            ([sid, "YQ=="], INVALID_PARAMS, "kv_getValue")):
        error = post(url, {"jsonrpc": "2.0", "id": 9, "method": "kv_getValue",
                           "params": params})["error"]
        assert error["code"] == code and named in error["message"], error
    assert post(url, {"jsonrpc": "2.0", "id": 9, "method": "kv_nope"})["error"][
        "code"] == -32601
    with pytest.raises(InvalidInput, match="not base64"):
        client.rpc.call("kv_isSpecialKey", sid, "!!")
    assert digests(config) == before
    # The CLI: write, read, list, result, status.
    cfg = ("--config", config_file, "--json")
    assert main(["kv", "write", "notes", "b", "2", *cfg]) == 0
    wrote = cli_json(capsys)
    assert wrote["result"] == "Commit"
    assert main(["kv", "read", "notes", "b", *cfg]) == 0
    assert cli_json(capsys)["value"] == "2"
    assert main(["kv", "read", "notes", "b", "--version", str(first["tx_seq"]), *cfg]) == 0
    assert cli_json(capsys)["found"] is False
    assert main(["kv", "list", "notes", "--from", "b", "--limit", "1", *cfg]) == 0
    listed = cli_json(capsys)
    assert [p["key"] for p in listed["pairs"]] == ["b"] and listed["more"] is True
    assert main(["kv", "result", str(wrote["tx_seq"]), *cfg]) == 0
    assert cli_json(capsys)["result"] == "Commit"
    assert runtime.wait_for(lambda: caught_up(config, wrote["tx_seq"]), 60)
    assert main(["kv", "status", *cfg]) == 0
    status = cli_json(capsys)
    assert len({n["digest"] for n in status["nodes"]}) == 1
    # A killed node resumes from its LMDB progress; one started later replays from the
    # start; both reach the same digest as the node that never stopped.
    runtime.kill_actor(find_kv_nodes(config)[1], restart=True)
    third = Batcher(client, storage, network_id)
    third.delete(NOTES, b"a")
    deleted = third.exec(wait=True)
    later = config.replace(**{"kv.nodes": 3})
    nodes = start_kv_nodes(later)
    assert runtime.wait_for(lambda: caught_up(later, deleted["tx_seq"]), 90)
    assert len(set(digests(later))) == 1
    assert client.get_value(NOTES, b"a").data == b""
    ray.kill(nodes[2], no_restart=True)


def test_two_writers_at_one_version_one_commits_and_permissions_are_granted_and_revoked(
        kv) -> None:
    client, storage, config, network_id, _ = kv
    setup = Batcher(client, storage, network_id)
    setup.set(NOTES, b"k", b"v0")  # the first tx makes the storage client admin
    base = setup.exec(wait=True)
    assert base["result"] == "Commit"
    bob = funded_writer(storage, config, network_id, "kv-test/bob")
    # Two writers read k at one version and both write it: one commits.
    w1, w2 = Batcher(client, storage, network_id), Batcher(client, storage, network_id)
    assert w1.get(NOTES, b"k") == w2.get(NOTES, b"k") == b"v0"
    assert w1.version == w2.version
    w1.set(NOTES, b"k", b"one")
    w2.set(NOTES, b"k", b"two")
    r1, r2 = w1.exec(wait=True), w2.exec(wait=True)
    assert (r1["result"], r2["result"]) == ("Commit", "VersionConfliction")
    assert client.get_value(NOTES, b"k").data == b"one"
    assert client.get_value(NOTES, b"k", base["tx_seq"]).data == b"v0"
    assert client.get_value(NOTES, b"k", r1["tx_seq"]).data == b"one"
    it = client.iterator(NOTES, base["tx_seq"])
    it.seek_to_first()
    assert (it.key, it.data) == (b"k", b"v0")
    # Bob may not write; a grant lets him; a revoke stops him again.
    def bob_writes(value: bytes) -> str:
        batch = Batcher(client, bob, network_id)
        batch.set(NOTES, b"k", value)
        return batch.exec(wait=True)["result"]

    assert bob_writes(b"b1") == "SenderNoWritePermission"
    grant = Batcher(client, storage, network_id)
    grant.grant_writer_role(NOTES, bob.account.address)
    assert grant.exec(wait=True)["result"] == "Commit"
    assert client.rpc.call("kv_isWriterOfStream", "0x" + bob.account.address.hex(),
                           "0x" + NOTES.hex()) is True
    assert bob_writes(b"b2") == "Commit"
    assert client.get_value(NOTES, b"k").data == b"b2"
    revoke = Batcher(client, storage, network_id)
    revoke.revoke_writer_role(NOTES, bob.account.address)
    assert revoke.exec(wait=True)["result"] == "Commit"
    assert bob_writes(b"b3") == "SenderNoWritePermission"
    assert client.get_value(NOTES, b"k").data == b"b2"
    # A special key: only its special writer (or the admin) may write it.
    special = Batcher(client, storage, network_id)
    special.set_key_to_special(NOTES, b"s")
    special.grant_writer_role(NOTES, bob.account.address)
    assert special.exec(wait=True)["result"] == "Commit"
    batch = Batcher(client, bob, network_id)
    batch.set(NOTES, b"s", b"no")
    denied = batch.exec(wait=True)["result"]
    assert denied.startswith("WritePermissionDenied") and "key: s" in denied


def test_a_kv_node_killed_mid_replay_and_a_miner_killed_mid_upload_lose_and_repeat_nothing(
        kv) -> None:
    client, storage, config, network_id, _ = kv
    nodes = find_kv_nodes(config)
    receipts = []
    for i in range(6):  # node 1 is killed (Ray restarts it) after each tx node 0 replayed
        batch = Batcher(client, storage, network_id)
        batch.set(NOTES, b"counter", str(i).encode())
        batch.set(NOTES, f"key-{i}".encode(), b"x" * (i * 1000 + 1))
        receipts.append(batch.exec(wait=True))
        runtime.kill_actor(nodes[1], restart=True)
    last = receipts[-1]["tx_seq"]
    assert runtime.wait_for(lambda: caught_up(config, last), 120)
    assert len(set(digests(config))) == 1
    assert [client.transaction_result(r["tx_seq"]) for r in receipts] == ["Commit"] * 6
    assert client.get_value(NOTES, b"counter").data == b"5"
    # A miner crashes once the KV tx's entry is on chain, while its shards are in flight:
    # the upload re-sends them, the entry becomes FINALIZED, the tx replays once.
    entries = storage._query(network_id, "flow")["entries"]

    def crash_when_submitted() -> None:
        runtime.wait_for(lambda: storage._query(network_id, "flow")["entries"] > entries,
                         120, 0.02)
        runtime.kill_actor(ray.get_actor(miner_name(1)), restart=True)

    crasher = threading.Thread(target=crash_when_submitted)
    crasher.start()
    batch = Batcher(client, storage, network_id)
    batch.set(NOTES, b"large", bytes(range(256)) * 8 * 1024)  # 2 MiB: 8 segments
    receipt = batch.exec(wait=True)
    crasher.join()
    assert receipt["result"] == "Commit"
    assert client.get_value(NOTES, b"large").data == bytes(range(256)) * 8 * 1024
    assert runtime.wait_for(lambda: caught_up(config, receipt["tx_seq"]), 60)
    assert len(set(digests(config))) == 1
