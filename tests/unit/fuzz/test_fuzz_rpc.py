"""JSON-RPC bodies from outside, through the dispatcher the Serve apps run: any bytes, any
JSON, and for every kv_* and eth_* method its valid params with values changed. An answer
is JSON with a result or an error object; a param decoder that raised another exception
shows as "internal error (TypeName)" (rpc/jsonrpc.error_of), which fails the test. Raw
Ethereum txs reach eth_sendRawTransaction mutated from valid signed ones."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from zg_actors.rpc.jsonrpc import Registry, RemoteError, remote_error, result_of

from ...evm_contract import INIT, Wallet, store_call
from ..test_evm import Net
from ..test_evm_rpc import Rpc
from ..test_kv_replay import ALICE, S
from ..test_kv_rpc import api_after_history
from .budget import fuzz
from .inputs import any_int, mutated, outcome
from .samples import txs

TAGS = ["latest", "pending", "earliest", "safe", "finalized", "0x0", "0x1", "0x2", "0x"]


def _hex(size: int | None = None) -> st.SearchStrategy[str]:
    raw = st.binary(max_size=40) if size is None else st.binary(min_size=size, max_size=size)
    return raw.map(lambda b: "0x" + b.hex())


# JSON values a client may send as a param: hex strings of the sizes the methods expect,
# numbers, tags, base64, and nested arrays and objects of them.
_scalars = st.one_of(st.none(), st.booleans(), any_int, st.floats(allow_nan=False,
                                                                 allow_infinity=False),
                     st.text(max_size=12), st.sampled_from(TAGS), _hex(), _hex(20), _hex(32),
                     any_int.map(lambda i: hex(i)), st.sampled_from(["0x", "0X1", "0x01",
                                                                     "0xg", "AAE=", "===="]))
json_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.sampled_from(["from", "to", "data", "input", "gas", "gasPrice",
                                     "value", "address", "topics", "fromBlock", "toBlock",
                                     "blockHash", "nonce", "x"]), inner, max_size=4)),
    max_leaves=10)


def answers(registry: Registry, body: bytes | str) -> list[dict]:
    answer = asyncio.run(registry.handle(body))
    if answer is None:
        return []
    decoded = json.loads(answer)
    out = decoded if isinstance(decoded, list) else [decoded]
    for item in out:
        assert ("result" in item) != ("error" in item), item
        if "error" in item:
            assert not item["error"]["message"].startswith("internal error"), item
    return out


def request(method: str, params: Any) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})


def changed(data: st.DataObject, valid: list) -> Any:
    """`valid` params with some values changed, some dropped or some added, or any JSON."""
    params = list(valid)
    kind = data.draw(st.sampled_from(["values", "drop", "add", "any"]))
    if kind == "values" and params:
        for i in range(len(params)):
            if data.draw(st.booleans()):
                params[i] = data.draw(json_values)
    elif kind == "drop" and params:
        params = params[:data.draw(st.integers(0, len(params) - 1))]
    elif kind == "add":
        params.append(data.draw(json_values))
    else:
        return data.draw(json_values)
    return params


# ---- any body ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kv_registry() -> Registry:
    return api_after_history().registry()


@fuzz()
@given(st.one_of(st.binary(max_size=200), json_values.map(json.dumps), st.lists(
    st.fixed_dictionaries({"jsonrpc": st.just("2.0"), "id": st.one_of(any_int, st.text(
        max_size=3)), "method": st.sampled_from(["kv_getValue", "kv_getStatus", "nope"]),
        "params": json_values}), max_size=3).map(json.dumps)))
def test_any_body_gets_a_json_rpc_answer(kv_registry: Registry, body: bytes | str) -> None:
    answers(kv_registry, body)


# ---- kv_* ----------------------------------------------------------------------------------
SID = "0x" + S.hex()
KV_VALID = {
    "kv_getStatus": [], "kv_getValue": [SID, "YQ==", 0, 100, 2],
    "kv_getNext": [SID, "YQ==", 0, 100, True, 3], "kv_getPrev": [SID, "Yg==", 0, 10, False],
    "kv_getFirst": [SID, 0, 100], "kv_getLast": [SID, 0, 100, 1],
    "kv_getTransactionResult": [1], "kv_getHoldingStreamIds": [],
    "kv_hasWritePermission": ["0x" + ALICE.hex(), SID, "YQ=="],
    "kv_isAdmin": ["0x" + ALICE.hex(), SID], "kv_isSpecialKey": [SID, "YQ=="],
    "kv_isWriterOfKey": ["0x" + ALICE.hex(), SID, "YQ==", 2],
    "kv_isWriterOfStream": ["0x" + ALICE.hex(), SID], "kv_getReplayProgress": [],
}


def test_the_kv_seeds_are_answered(kv_registry: Registry) -> None:
    for method, params in KV_VALID.items():
        [answer] = answers(kv_registry, request(method, params))
        assert "result" in answer, (method, answer)


@fuzz(2)
@given(st.sampled_from(sorted(KV_VALID)), st.data())
def test_kv_params_are_decoded_or_refused_by_name(kv_registry: Registry, method: str,
                                                  data: st.DataObject) -> None:
    answers(kv_registry, request(method, changed(data, KV_VALID[method])))


# ---- eth_* ---------------------------------------------------------------------------------
class EvmSeeds:
    def __init__(self, tmp_path: Path) -> None:
        self.net = Net(tmp_path)
        self.rpc = Rpc(self.net)
        wallet = Wallet(0, self.net.chain_id)
        self.raw = [wallet.sign(data=INIT, gas=200_000)]
        self.net.submit(*self.raw)
        block = self.net.commit_block()
        contract = self.rpc("eth_getTransactionReceipt", "0x" + block.txs[0].hash.hex()
                            )["contractAddress"]
        self.raw += [wallet.sign(to=bytes.fromhex(contract[2:]), data=store_call(7), kind=k)
                     for k in (0, 1, 2)]
        self.net.submit(*self.raw[1:])
        block = self.net.commit_block()
        self.raw.append(wallet.sign(to=bytes.fromhex(contract[2:]), value=1))  # not sent
        user = "0x" + wallet.address.hex()
        tx_hash = "0x" + block.txs[0].hash.hex()
        call = {"from": user, "to": contract, "data": "0x" + store_call(3).hex(),
                "gas": "0x30000"}
        log_filter = {"fromBlock": "0x1", "toBlock": "latest", "address": contract,
                      "topics": [None]}
        filter_id = self.rpc("eth_newFilter", log_filter)
        self.valid = {
            "web3_clientVersion": [], "net_version": [], "eth_chainId": [],
            "eth_blockNumber": [], "eth_getBalance": [user, "latest"],
            "eth_getTransactionCount": [user, "0x1"], "eth_getCode": [contract, "latest"],
            "eth_getStorageAt": [contract, "0x0", "latest"], "eth_gasPrice": [],
            "eth_maxPriorityFeePerGas": [], "eth_feeHistory": ["0x2", "latest", [25, 75]],
            "eth_estimateGas": [call], "eth_call": [call, "latest"],
            "eth_sendRawTransaction": ["0x" + self.raw[-1].hex()],
            "eth_getTransactionByHash": [tx_hash], "eth_getTransactionReceipt": [tx_hash],
            "eth_getBlockByNumber": ["0x2", True],
            "eth_getBlockByHash": ["0x" + block.hash.hex(), False],
            "eth_getLogs": [log_filter], "eth_newFilter": [log_filter],
            "eth_newBlockFilter": [], "eth_getFilterChanges": [filter_id],
            "eth_getFilterLogs": [filter_id], "eth_uninstallFilter": ["0x99"],
            "eth_syncing": [], "eth_accounts": [],
        }


@pytest.fixture(scope="module")
def evm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EvmSeeds]:
    seeds = EvmSeeds(Path(tmp_path_factory.mktemp("evm")))
    yield seeds
    seeds.net.node.close()


def test_the_eth_seeds_are_answered(evm: EvmSeeds) -> None:
    assert sorted(evm.valid) == evm.rpc.registry.names()
    for method, params in evm.valid.items():
        answer = evm.rpc.answer(method, *params)
        assert "result" in answer, (method, answer)


@fuzz(2)
@given(st.data())
def test_eth_params_are_decoded_or_refused_as_geth_does(evm: EvmSeeds, data: st.DataObject
                                                        ) -> None:
    method = data.draw(st.sampled_from(sorted(evm.valid)))
    answers(evm.rpc.registry, request(method, changed(data, evm.valid[method])))


@fuzz(2)
@given(st.data())
def test_raw_txs_are_admitted_or_refused_through_eth_send_raw_transaction(
        evm: EvmSeeds, data: st.DataObject) -> None:
    """The path a wallet's tx takes: hex param, decode, signature, then the validator's
    entry checks (nonce, funds, pool) at the node."""
    raw = data.draw(st.one_of(mutated(evm.raw), st.binary(max_size=300)))
    answers(evm.rpc.registry, request("eth_sendRawTransaction", ["0x" + raw.hex()]))



@fuzz()
@example(raws=[b"\x00"])  # raised py-evm's UnrecognizedTransactionType out of add_txs
@given(st.lists(st.one_of(st.binary(max_size=200), mutated([tx.encoded for tx in txs()])),
                min_size=1, max_size=4))
def test_a_batch_of_raw_txs_gets_one_answer_a_tx(evm: EvmSeeds, raws: list[bytes]) -> None:
    """What a validator's submit does with a batch (EthApi sends the raw txs of one turn as
    one batch): each tx is admitted or refused on its own, none fails the others."""
    results = evm.net.node.add_txs([*raws, evm.raw[-1]])
    assert len(results) == len(raws) + 1


_responses = st.one_of(json_values, st.fixed_dictionaries(
    {"jsonrpc": st.just("2.0"), "id": st.just(1)},
    optional={"result": json_values, "error": st.one_of(json_values, st.fixed_dictionaries(
        {}, optional={"code": st.one_of(st.just(-32602), any_int), "message": json_values,
                      "data": json_values}))}))


@fuzz()
@example({"jsonrpc": "2.0", "id": 1, "error": "boom"})  # remote_error: AttributeError
@example({"jsonrpc": "2.0", "id": 1, "error": {"data": {"rpc_code": 1}}})  # TypeError
@example([{"result": 1}])  # a batch answer to one call: "error" in a list, then TypeError
@given(_responses)
def test_an_endpoints_answer_is_its_result_or_a_typed_error(answer: Any) -> None:
    """What JsonRpcClient (the SDKs' and the CLI's client) makes of any JSON answer."""
    outcome(result_of, answer, "kv_getValue")
    if isinstance(answer, dict) and "error" in answer:
        assert isinstance(remote_error(answer["error"]), RemoteError)
