"""The Ethereum JSON-RPC on Ray Serve, used by web3.py as a dApp developer would: a Vyper
ERC-20 compiled in the test, deployed, transferred, its events read, a revert reason, gas
estimates, EIP-1559 and legacy txs; two networks with their own state; a contract that
outlives a validator restart; bad input refused in Geth's words, changing nothing."""

from __future__ import annotations

import json
import socket
import urllib.request
from typing import Any

import pytest
import ray
import vyper
from eth_account import Account as EthAccount
from ray import serve
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3RPCError

from zg_actors import runtime
from zg_actors.cli import main
from zg_actors.crypto.devkeys import load_account
from zg_actors.evm.serve import app_name, start_evm_rpc, stop_all_evm_rpc

from ..evm_contract import Wallet
from ..unit.test_evm_rpc import bad_inputs  # one list of bad input for both levels
from .conftest import cli_json
from .test_chain import handles_of, wait_height

pytestmark = pytest.mark.integration

SUPPLY = 10**24
ERC20 = """
# pragma version 0.4.3
# pragma evm-version cancun
event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

name: public(String[32])
symbol: public(String[8])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])

@deploy
def __init__(supply: uint256):
    self.name = "Test Token"
    self.symbol = "TST"
    self.decimals = 18
    self.totalSupply = supply
    self.balanceOf[msg.sender] = supply
    log Transfer(sender=empty(address), receiver=msg.sender, value=supply)

@external
def transfer(to: address, amount: uint256) -> bool:
    assert self.balanceOf[msg.sender] >= amount, "insufficient balance"
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount
    log Transfer(sender=msg.sender, receiver=to, value=amount)
    return True
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def evm(deployment, tmp_path):
    """The deployment with its EVM JSON-RPC on a free port; Serve removed afterwards."""
    d, config = deployment
    config = config.replace(**{"networks.evm.rpc_port": free_port()})
    config_file = tmp_path / "zg.yaml"
    config_file.write_text(json.dumps(config.to_dict()))  # JSON is YAML
    yield d, config, str(config_file)
    stop_all_evm_rpc()
    serve.shutdown()


def erc20() -> dict:
    return vyper.compile_code(ERC20, output_formats=["abi", "bytecode"])


class User:
    """A funded devnet account signing locally and sending raw txs, as dApps do."""

    def __init__(self, w3: Web3, index: int, seed: str) -> None:
        self.w3 = w3
        self.key = EthAccount.from_key(load_account(seed, index).secret)
        self.address = self.key.address

    def send(self, tx: dict, legacy: bool = False) -> dict:
        tx = {"from": self.address, "chainId": self.w3.eth.chain_id,
              "nonce": self.w3.eth.get_transaction_count(self.address), **tx}
        if "gas" not in tx:
            tx["gas"] = self.w3.eth.estimate_gas(tx)
        if legacy:
            tx["gasPrice"] = self.w3.eth.gas_price
        else:
            tip = self.w3.eth.max_priority_fee
            tx |= {"maxPriorityFeePerGas": tip,
                   "maxFeePerGas": 2 * self.w3.eth.get_block("latest")["baseFeePerGas"] + tip}
        tx.pop("from")
        tx_hash = self.w3.eth.send_raw_transaction(
            self.key.sign_transaction(tx).raw_transaction)
        return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=90, poll_latency=0.2)

    def deploy(self, compiled: dict) -> Any:
        factory = self.w3.eth.contract(abi=compiled["abi"], bytecode=compiled["bytecode"])
        receipt = self.send({"data": factory.constructor(SUPPLY).data_in_transaction})
        assert receipt["status"] == 1
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=compiled["abi"])


def launch(d, config, config_file: str, capsys) -> tuple[int, Web3]:
    """`zg network add`: a 4-validator network and its RPC URL; web3 on that URL."""
    assert main(["network", "add", "--validators", "4", "--json", "--config",
                 config_file]) == 0
    added = cli_json(capsys)
    net = added["network_id"]
    assert added["chain_id"] == config.networks.evm.chain_id(net)
    wait_height(list(handles_of(d, net).values()), 1)
    w3 = Web3(Web3.HTTPProvider(added["rpc"], request_kwargs={"timeout": 60}))
    assert w3.eth.chain_id == added["chain_id"]
    return net, w3


def test_web3_deploys_an_erc20_reads_events_sees_reverts_on_two_networks_and_after_restart(
        evm, capsys) -> None:
    d, config, config_file = evm
    seed = config.devnet.key_seed
    net_a, w3 = launch(d, config, config_file, capsys)
    alice, bob = User(w3, 0, seed), User(w3, 1, seed)
    compiled = erc20()
    token = alice.deploy(compiled)
    assert token.functions.symbol().call() == "TST"  # eth_call of a view
    assert token.functions.balanceOf(alice.address).call() == SUPPLY

    transfer = token.functions.transfer(bob.address, 1_000)
    estimate = transfer.estimate_gas({"from": alice.address})
    assert 21_000 < estimate < 100_000
    receipt = alice.send({"to": token.address, "data": transfer._encode_transaction_data()})
    assert receipt["status"] == 1 and receipt["type"] == 2 and receipt["gasUsed"] <= estimate
    legacy = alice.send({"to": token.address, "data": token.functions.transfer(
        bob.address, 500)._encode_transaction_data()}, legacy=True)
    assert legacy["status"] == 1 and legacy["type"] == 0
    assert token.functions.balanceOf(bob.address).call() == 1_500
    # eth_call at an older block: the state of then
    assert token.functions.balanceOf(bob.address).call(
        block_identifier=receipt["blockNumber"]) == 1_000

    events = token.events.Transfer.get_logs(from_block=0)
    assert [(e["args"]["receiver"], e["args"]["value"]) for e in events] == [
        (alice.address, SUPPLY), (bob.address, 1_000), (bob.address, 500)]
    to_bob = w3.eth.get_logs({"fromBlock": 0, "address": token.address, "topics": [
        None, None, "0x" + bytes.fromhex(bob.address[2:]).rjust(32, b"\0").hex()]})
    assert len(to_bob) == 2
    new_transfers = token.events.Transfer.create_filter(from_block="latest")
    alice.send({"to": token.address, "data": token.functions.transfer(
        bob.address, 7)._encode_transaction_data()})
    assert [e["args"]["value"] for e in new_transfers.get_new_entries()] == [7]
    assert new_transfers.get_new_entries() == []

    with pytest.raises(ContractLogicError, match="insufficient balance"):
        token.functions.transfer(alice.address, 10**30).call({"from": bob.address})
    block = w3.eth.get_block(receipt["blockNumber"], full_transactions=True)
    assert receipt["transactionHash"] in [t["hash"] for t in block["transactions"]]
    assert w3.eth.get_block(block["hash"])["number"] == receipt["blockNumber"]

    # The same contract on a second network: same address (same deployer and nonce),
    # its own state.
    net_b, w3_b = launch(d, config, config_file, capsys)
    token_b = User(w3_b, 0, seed).deploy(compiled)
    assert token_b.address == token.address
    assert token_b.functions.balanceOf(bob.address).call() == 0
    assert token.functions.balanceOf(bob.address).call() == 1_507

    # A validator restart (each reopens its LMDB store) keeps the contract and its storage.
    validators = list(handles_of(d, net_a).values())
    for victim in validators[:2]:
        runtime.kill_actor(victim, restart=True)
    wait_height(validators, w3.eth.block_number + 2, timeout=90, quorum=4)
    assert token.functions.balanceOf(bob.address).call() == 1_507
    assert alice.send({"to": token.address, "data": token.functions.transfer(
        bob.address, 3)._encode_transaction_data()})["status"] == 1
    assert token.functions.balanceOf(bob.address).call() == 1_510

    # `zg network remove` deletes that network's RPC app only.
    assert main(["network", "remove", str(net_b), "--json", "--config", config_file]) == 0
    assert cli_json(capsys)["rpc_removed"] == [app_name(net_b)]
    assert app_name(net_a) in serve.status().applications
    assert token.functions.balanceOf(bob.address).call() == 1_510


def post(url: str, body: str | bytes) -> Any:
    request = urllib.request.Request(url, body.encode() if isinstance(body, str) else body,
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_bad_input_over_http_gets_geths_errors_and_changes_nothing(evm) -> None:
    d, config, _ = evm
    net = ray.get(d.manager.launch_network.remote(4))["network_id"]
    validators = list(handles_of(d, net).values())
    wait_height(validators, 1)
    url = start_evm_rpc(config, net)
    w3 = Web3(Web3.HTTPProvider(url))
    wallet = Wallet(2, config.networks.evm.chain_id(net), config.devnet.key_seed)
    first = w3.eth.send_raw_transaction(wallet.sign(to=bytes(20), value=5))
    w3.eth.wait_for_transaction_receipt(first, timeout=60, poll_latency=0.2)
    cases = bad_inputs(config, wallet)
    queued = wallet.sign(to=bytes(20), value=5, nonce=3)  # waits in the pool for nonces 1-2
    assert w3.eth.send_raw_transaction(queued)
    cases["duplicate"] = (json.dumps({"jsonrpc": "2.0", "id": 1, "method":
                                      "eth_sendRawTransaction",
                                      "params": ["0x" + queued.hex()]}), -32000,
                          "already known")
    address = Web3.to_checksum_address(wallet.address)
    before = (w3.eth.get_balance(address), w3.eth.get_transaction_count(address))
    height = w3.eth.block_number
    for name, (body, code, words) in cases.items():
        error = post(url, body)["error"]
        assert error["code"] == code and words in error["message"], (name, error)
    with pytest.raises(Web3RPCError, match="nonce too low"):  # as web3.py shows it
        w3.eth.send_raw_transaction(wallet.sign(to=bytes(20), nonce=0))
    batch = [json.loads(body) for body, code, _ in cases.values() if code != -32700]
    answers = post(url, json.dumps(batch))  # the same requests as one batch
    assert len(answers) == len(batch) and all("error" in a for a in answers)
    wait_height(validators, height + 2)
    assert (w3.eth.get_balance(address), w3.eth.get_transaction_count(address)) == before
    for h in range(height + 1, w3.eth.block_number + 1):
        assert w3.eth.get_block(h)["transactions"] == []
