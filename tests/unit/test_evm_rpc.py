"""The Ethereum JSON-RPC (evm/rpc.py) over one validator's ChainNode, no Ray: requests in
as JSON, Geth's answers and errors out, blocks committed in between."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import rlp
from eth_account import Account as EthAccount
from eth_utils import to_checksum_address

from zg_actors.chain.tx import decode_tx
from zg_actors.config import Config
from zg_actors.evm.rpc import EthApi, revert_reason
from zg_actors.rpc.jsonrpc import Registry

from ..evm_contract import GWEI, INIT, RUNTIME, Wallet, store_call
from .test_evm import Net

TOPIC_AA = (0xAA).to_bytes(32, "big")


class NodeChain:
    """The API's Chain over one ChainNode (what ChainClient gives it over Ray)."""

    def __init__(self, net: Net) -> None:
        self.net = net

    async def committed_height(self) -> int:
        return self.net.node.committed.height

    async def query(self, module: str, method: str, *args: Any) -> Any:
        return self.net.node.machine.query(self.net.node.state_get, module, method, args)

    async def query_at(self, height: int, module: str, method: str, *args: Any) -> Any:
        return self.net.node.machine.query(self.net.node.state_get_at(height), module,
                                           method, args)

    async def blocks(self, start: int, limit: int) -> list[tuple[bytes, bytes]]:
        return self.net.node.blocks_range(start, limit)

    async def receipts_at(self, height: int) -> list[bytes]:
        return self.net.node.receipts_at(height)

    async def submit(self, raw_txs: list[bytes]) -> list[str | None]:
        return self.net.node.add_txs(raw_txs)


class PreBloomChain(NodeChain):
    """A chain whose block records predate the stored logs bloom (`block_gas` without it),
    as a store written before blooms were recorded reads."""

    async def query(self, module: str, method: str, *args: Any) -> Any:
        answer = await super().query(module, method, *args)
        if (module, method) == ("evm", "block_gas") and answer is not None:
            answer = {k: v for k, v in answer.items() if k != "bloom"}
        return answer


class Rpc:
    def __init__(self, net: Net, chain: NodeChain | None = None) -> None:
        self.registry: Registry = EthApi(chain or NodeChain(net), net.config.networks.evm,
                                         net.network_id).registry()

    def raw(self, body: str | bytes) -> Any:
        answer = asyncio.run(self.registry.handle(body))
        return None if answer is None else json.loads(answer)

    def answer(self, method: str, *params: Any) -> dict:
        return self.raw(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                                    "params": list(params)}))

    def __call__(self, method: str, *params: Any) -> Any:
        answer = self.answer(method, *params)
        assert "error" not in answer, answer
        return answer["result"]


@pytest.fixture
def net(tmp_path: Path):
    network = Net(tmp_path)
    yield network
    network.node.close()


def hexed(raw: bytes) -> str:
    return "0x" + raw.hex()


def test_a_contract_deployed_called_and_logged_through_the_rpc(net: Net) -> None:
    rpc = Rpc(net)
    wallet = Wallet(0, net.chain_id)
    assert rpc("eth_chainId") == hex(net.chain_id)
    assert rpc("net_version") == str(net.chain_id)
    assert rpc("eth_accounts") == [] and rpc("eth_syncing") is False
    create = wallet.sign(data=INIT, gas=200_000)
    tx_hash = rpc("eth_sendRawTransaction", hexed(create))
    assert tx_hash == hexed(decode_tx(create).hash)
    assert rpc("eth_getTransactionReceipt", tx_hash) is None  # not committed yet
    net.commit_block()
    receipt = rpc("eth_getTransactionReceipt", tx_hash)
    assert receipt["status"] == "0x1" and receipt["blockNumber"] == "0x1"
    contract = receipt["contractAddress"]
    assert rpc("eth_getCode", contract, "latest") == hexed(RUNTIME)
    assert rpc("eth_getCode", contract, "0x0") == "0x"  # before the deploying block

    store = wallet.sign(to=bytes.fromhex(contract[2:]), data=store_call(7))
    legacy = wallet.sign(to=bytes.fromhex(contract[2:]), data=store_call(8), kind=0)
    assert rpc("eth_sendRawTransaction", hexed(store))
    assert rpc("eth_sendRawTransaction", hexed(legacy))
    block = net.commit_block()
    assert block.height == 2 and len(block.txs) == 2
    by_number = rpc("eth_getBlockByNumber", "0x2", True)
    assert [t["hash"] for t in by_number["transactions"]] == [
        hexed(decode_tx(store).hash), hexed(decode_tx(legacy).hash)]
    assert by_number["transactions"][1]["type"] == "0x0"
    # The block's logs bloom, from its own record (a fresh API reads no receipts for a
    # block without full txs), is its receipts' blooms ORed.
    light = Rpc(net)("eth_getBlockByNumber", "0x2", False)
    bloom = 0
    for t in by_number["transactions"]:
        bloom |= int(rpc("eth_getTransactionReceipt", t["hash"])["logsBloom"], 16)
    assert int(light["logsBloom"], 16) == int(by_number["logsBloom"], 16) == bloom != 0
    assert light["transactions"] == [t["hash"] for t in by_number["transactions"]]
    assert rpc("eth_getBlockByHash", by_number["hash"], False)["transactions"] == [
        t["hash"] for t in by_number["transactions"]]
    assert rpc("eth_getBlockByNumber", "0x1", False)["hash"] == by_number["parentHash"]
    tx = rpc("eth_getTransactionByHash", hexed(decode_tx(store).hash))
    assert tx["blockNumber"] == "0x2" and tx["transactionIndex"] == "0x0"
    assert tx["from"] == to_checksum_address(wallet.address)

    logs = rpc("eth_getLogs", {"fromBlock": "0x1", "toBlock": "latest", "address": contract,
                               "topics": [hexed(TOPIC_AA)]})
    assert [int(log["data"], 16) for log in logs] == [7, 8]
    assert [log["logIndex"] for log in logs] == ["0x0", "0x1"]
    assert rpc("eth_getLogs", {"fromBlock": "0x1", "topics": [hexed(bytes(32))]}) == []
    assert rpc("eth_getStorageAt", contract, "0x0", "latest") == hexed((8).to_bytes(32, "big"))
    # eth_call at an older block sees the state of then
    load = {"to": contract, "data": "0x02"}
    assert int(rpc("eth_call", load, "latest"), 16) == 8
    assert int(rpc("eth_call", load, "0x1"), 16) == 0

    filter_id = rpc("eth_newFilter", {"address": contract})
    assert rpc("eth_getFilterChanges", filter_id) == []
    assert rpc("eth_sendRawTransaction", hexed(
        wallet.sign(to=bytes.fromhex(contract[2:]), data=store_call(9))))
    net.commit_block()
    assert [int(log["data"], 16) for log in rpc("eth_getFilterChanges", filter_id)] == [9]
    assert rpc("eth_getFilterChanges", filter_id) == []
    assert rpc("eth_uninstallFilter", filter_id) is True
    assert Rpc(net).answer("eth_getFilterChanges", filter_id)["error"]["message"] == \
        "filter not found"


def test_a_block_recorded_before_blooms_gets_its_bloom_from_its_receipts(net: Net) -> None:
    rpc = Rpc(net)
    wallet = Wallet(0, net.chain_id)
    deploy_hash = rpc("eth_sendRawTransaction", hexed(wallet.sign(data=INIT, gas=200_000)))
    net.commit_block()
    contract = bytes.fromhex(rpc("eth_getTransactionReceipt", deploy_hash)["contractAddress"][2:])
    rpc("eth_sendRawTransaction", hexed(wallet.sign(to=contract, data=store_call(7))))
    net.commit_block()
    stored = int(rpc("eth_getBlockByNumber", "0x2", False)["logsBloom"], 16)
    assert stored != 0  # the store call logged
    # The same blocks through a chain whose records lack the bloom: read from receipts.
    old = Rpc(net, PreBloomChain(net))
    assert int(old("eth_getBlockByNumber", "0x2", False)["logsBloom"], 16) == stored
    assert int(old("eth_getBlockByNumber", "0x1", False)["logsBloom"], 16) == 0


def test_reverts_estimates_fees_and_batches(net: Net) -> None:
    rpc = Rpc(net)
    wallet = Wallet(1, net.chain_id)
    tx_hash = rpc("eth_sendRawTransaction", hexed(wallet.sign(data=INIT, gas=200_000)))
    net.commit_block()
    contract = rpc("eth_getTransactionReceipt", tx_hash)["contractAddress"]
    error = rpc.answer("eth_call", {"to": contract, "data": "0x03"})["error"]
    assert error == {"code": 3, "message": "execution reverted", "data": "0xdeadbeef"}
    error = rpc.answer("eth_estimateGas", {"to": contract, "data": "0x03"})["error"]
    assert error["code"] == 3 and error["data"] == "0xdeadbeef"
    gas = int(rpc("eth_estimateGas", {"from": hexed(wallet.address), "to": contract,
                                      "data": hexed(store_call(5))}), 16)
    assert 21_000 < gas < 100_000
    base_fee = net.query("base_fee")
    assert int(rpc("eth_gasPrice"), 16) == base_fee + GWEI
    assert rpc("eth_maxPriorityFeePerGas") == hex(GWEI)
    history = rpc("eth_feeHistory", "0x2", "latest", [50])
    assert history["oldestBlock"] == hex(net.node.committed.height - 1)
    assert len(history["baseFeePerGas"]) == 3 and len(history["reward"]) == 2
    assert history["baseFeePerGas"][-1] == hex(base_fee)
    batch = rpc.raw(json.dumps([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_nope"},
        {"jsonrpc": "2.0", "id": 3, "method": "eth_getBalance",
         "params": [hexed(wallet.address), "latest"]}]))
    assert batch[0]["result"] == hex(net.node.committed.height)
    assert batch[1]["error"]["code"] == -32601
    assert int(batch[2]["result"], 16) == net.node.balance(wallet.address)


def test_revert_reason_decodes_error_string() -> None:
    reason = b"not enough"
    data = (bytes.fromhex("08c379a0") + (32).to_bytes(32, "big")
            + len(reason).to_bytes(32, "big") + reason.ljust(32, b"\0"))
    assert revert_reason(data) == "execution reverted: not enough"
    assert revert_reason(b"\xde\xad") == "execution reverted"


def bad_inputs(config: Config, wallet: Wallet) -> dict[str, tuple[str, int, str]]:
    """Per class of bad input from `wallet` (its next nonce is 1): (request body, JSON-RPC
    code, Geth's words in the message). The integration test sends the same over HTTP."""
    limit = config.networks.evm.block_gas_limit
    to = bytes(19) + b"\x01"

    def send(raw: bytes) -> str:
        return json.dumps({"jsonrpc": "2.0", "id": 7, "method": "eth_sendRawTransaction",
                           "params": [hexed(raw)]})

    fields = rlp.decode(wallet.sign(to=to, value=1, nonce=1)[1:])  # EIP-1559 envelope
    fields[10] = b""  # r = 0: no public key recovers from it
    signed = b"\x02" + rlp.encode(fields)
    # An envelope that parses (type 2, 12 RLP items) with a 5-byte `to`: the validators'
    # decoding refuses it, not the JSON-RPC front.
    short_to = rlp.decode(wallet.sign(to=to, value=1, nonce=1)[1:])
    short_to[5] = b"\x01" * 5
    unprotected = EthAccount.from_key(wallet.account.secret).sign_transaction(
        {"nonce": 1, "gasPrice": 2 * GWEI, "gas": 21_000, "to": to_checksum_address(to),
         "value": 1, "data": b""}).raw_transaction
    return {
        "malformed rlp": (send(b"\xf8\xff\x00"), -32000, "rlp:"),
        "malformed field": (send(b"\x02" + rlp.encode(short_to)), -32000, "rlp:"),
        "wrong chain id": (send(wallet.sign(to=to, nonce=1, chain_id=wallet.chain_id + 1)),
                           -32000, "invalid chain id for signer"),
        "missing chain id": (send(bytes(unprotected)), -32000,
                             "only replay-protected (EIP-155) transactions allowed"),
        "bad signature": (send(signed), -32000, "invalid sender"),
        "nonce too low": (send(wallet.sign(to=to, nonce=0)), -32000, "nonce too low"),
        "nonce too high": (send(wallet.sign(to=to, nonce=500)), -32000, "nonce too high"),
        "insufficient funds": (send(wallet.sign(to=to, nonce=1, value=10**30)), -32000,
                               "insufficient funds for gas * price + value"),
        "intrinsic gas too low": (send(wallet.sign(to=to, nonce=1, gas=20_000)), -32000,
                                  "intrinsic gas too low"),
        "gas above block limit": (send(wallet.sign(to=to, nonce=1, gas=limit + 1)), -32000,
                                  "exceeds block gas limit"),
        "unknown tx type": (send(b"\x05" + wallet.sign(to=to, nonce=1)[1:]), -32000,
                            "transaction type not supported"),
        "oversized tx": (send(wallet.sign(to=to, nonce=1, gas=5_000_000, data=b"\x01" * (
            config.networks.max_tx_bytes + 1))), -32000, "oversized data"),
        "unknown method": (json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_mine",
                                       "params": []}), -32601,
                           "the method eth_mine does not exist/is not available"),
        "malformed json": ('{"jsonrpc": "2.0", "id": 1, "method": ', -32700, "parse error"),
        "not a request": ('{"jsonrpc": "1.0", "id": 1}', -32600, "invalid request"),
        "wrong param type": (json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance",
                                         "params": [12, "latest"]}), -32602,
                             "invalid argument 0"),
        "address without 0x": (json.dumps({"jsonrpc": "2.0", "id": 1,
                                           "method": "eth_getBalance",
                                           "params": ["ab" * 20, "latest"]}), -32602,
                               "hex string without 0x prefix"),
    }


@pytest.mark.parametrize("case", ["malformed rlp", "malformed field", "wrong chain id",
                                        "missing chain id", "bad signature", "nonce too low",
                                        "nonce too high",
                                        "insufficient funds", "intrinsic gas too low",
                                        "gas above block limit", "unknown tx type",
                                        "oversized tx", "duplicate", "unknown method",
                                        "malformed json", "not a request", "wrong param type",
                                        "address without 0x"])
def test_bad_input_gets_geths_error_and_changes_nothing(net: Net, case: str) -> None:
    rpc = Rpc(net)
    wallet = Wallet(2, net.chain_id)
    rpc("eth_sendRawTransaction", hexed(wallet.sign(to=bytes(20), value=5)))  # nonce 0
    net.commit_block()
    if case == "duplicate":
        pending = wallet.sign(to=bytes(20), value=5, nonce=1)
        rpc("eth_sendRawTransaction", hexed(pending))
        body, code, words = json.dumps({"jsonrpc": "2.0", "id": 7, "method":
                                        "eth_sendRawTransaction",
                                        "params": [hexed(pending)]}), -32000, "already known"
    else:
        body, code, words = bad_inputs(net.config, wallet)[case]
    before = (rpc("eth_getBalance", hexed(wallet.address), "latest"),
              rpc("eth_getTransactionCount", hexed(wallet.address), "latest"),
              rpc("eth_blockNumber"), len(net.node.mempool))
    error = rpc.raw(body)["error"]
    assert error["code"] == code and words in error["message"], error
    after = (rpc("eth_getBalance", hexed(wallet.address), "latest"),
             rpc("eth_getTransactionCount", hexed(wallet.address), "latest"),
             rpc("eth_blockNumber"), len(net.node.mempool))
    assert after == before
    block = net.commit_block()  # and no block takes it
    assert len(block.txs) == (1 if case == "duplicate" else 0)


def test_sends_of_one_turn_reach_the_validator_in_one_call_in_arrival_order() -> None:
    import asyncio

    from zg_actors.evm.rpc import SubmitCoalescer

    calls: list[list[bytes]] = []

    async def submit(raw_txs: list[bytes]) -> list[str | None]:
        calls.append(list(raw_txs))
        return [None if raw != b"bad" else "NonceError: nonce too low" for raw in raw_txs]

    async def main() -> list[str | None]:
        coalescer = SubmitCoalescer(submit)
        first = await asyncio.gather(*(coalescer.submit(raw) for raw in
                                       [b"a", b"bad", b"c"]))
        return [*first, await coalescer.submit(b"d")]

    assert asyncio.run(main()) == [None, "NonceError: nonce too low", None, None]
    assert calls == [[b"a", b"bad", b"c"], [b"d"]]

    async def failing(raw_txs: list[bytes]) -> list[str | None]:
        raise RuntimeError("validator gone")

    async def both_fail() -> list[BaseException | str | None]:
        coalescer = SubmitCoalescer(failing)
        return await asyncio.gather(coalescer.submit(b"a"), coalescer.submit(b"b"),
                                    return_exceptions=True)

    assert [str(e) for e in asyncio.run(both_fail())] == ["validator gone"] * 2
