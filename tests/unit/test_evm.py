"""The `evm` module on py-evm: Ethereum txs through a validator's mempool, blocks and
LMDB store, one ZG balance and nonce, fees, the state root (docs/spec/evm.md)."""

from __future__ import annotations

from pathlib import Path

import coincurve
import pytest
import rlp
from eth.vm.forks.cancun.receipts import CancunReceiptBuilder
from eth_utils import to_checksum_address

from zg_actors.chain.block import Block
from zg_actors.chain.execution import StateMachine
from zg_actors.chain.modules.base import BlockInfo
from zg_actors.chain.network import build_state_machine
from zg_actors.chain.tx import Transaction, decode_tx, make_tx
from zg_actors.chain.validator_set import ValidatorInfo, ValidatorSet
from zg_actors.config import ZG, ConfigError
from zg_actors.crypto.devkeys import validator_identity
from zg_actors.errors import NotFound
from zg_actors.evm.params import next_base_fee
from zg_actors.store.overlay import Overlay

from ..evm_contract import (
    GWEI,
    INIT,
    PARENT_HASH_RECORDER,
    RUNTIME,
    Wallet,
    deployable,
    store_call,
)
from .helpers import make_node, sign_commit, small_config

SEED = "zg-devnet"

def genesis_set(n: int = 4) -> ValidatorSet:
    return ValidatorSet.from_list([
        ValidatorInfo(validator_identity(SEED, i).address, validator_identity(SEED, i).bls_pubkey,
                      100) for i in range(n)])


class Net:
    """One validator's ChainNode committing the blocks it builds (certificates signed by
    the genesis set), so each test reads as txs in, blocks out."""

    def __init__(self, tmp_path: Path, network_id: int = 1, name: str = "v0") -> None:
        self.config = small_config()
        self.vset = genesis_set()
        self.network_id = network_id
        self.tmp_path, self.name = tmp_path, name
        self.node = make_node(tmp_path, self.config, network_id, self.vset, 1, name)
        self.chain_id = self.config.networks.evm.chain_id(network_id)

    def reopen(self) -> None:
        self.node.close()
        self.node = make_node(self.tmp_path, self.config, self.network_id, self.vset, 1,
                              self.name)

    @property
    def proposer(self) -> bytes:
        height = self.node.committed.height + 1
        return self.vset.validators[self.vset.proposer(height, 0)].address

    def submit(self, *raws: bytes) -> list[str | None]:
        return self.node.add_txs(list(raws))

    def commit_block(self) -> Block:
        block = self.node.build_block(0, self.proposer, self.node.certificate_at(
            self.node.committed.height), 1)
        self.node.validate_block(block, self.proposer)
        cert = sign_commit(self.node, self.config, block.hash, block.header.height, [0, 1, 2])
        self.node.commit(block, cert)
        return block

    def query(self, method: str, *args: object) -> object:
        return self.node.machine.query(self.node.state_get, "evm", method, args)

    def receipt(self, raw: bytes) -> dict:
        found = self.query("receipt", decode_tx(raw).hash)
        assert found is not None, "tx has no receipt"
        found["eth"] = CancunReceiptBuilder.decode(found["receipt"])
        return found

    def supply_holds(self, holders: list[bytes]) -> bool:
        """The token invariant: the supply is genesis + minted - burned and equals the
        sum of all balances (genesis holders, validators, and `holders`)."""
        supply = self.node.machine.query(self.node.state_get, "token", "supply", ())
        config = self.config
        machine = build_state_machine(config, self.network_id)
        genesis_holders = list(machine.modules["token"].genesis_balances)
        everyone = set(genesis_holders) | {v.address for v in self.vset.validators} | set(holders)
        total = sum(self.node.balance(address) for address in everyone)
        return (supply["supply"] == supply["genesis"] + supply["minted"] - supply["burned"]
                == total)


@pytest.fixture
def net(tmp_path: Path):
    network = Net(tmp_path)
    yield network
    network.node.close()


def deploy(net: Net, wallet: Wallet) -> bytes:
    raw = wallet.sign(data=INIT, gas=200_000)
    assert net.submit(raw) == [None]
    net.commit_block()
    receipt = net.receipt(raw)
    assert receipt["eth"].state_root == b"\x01"
    return receipt["contract_address"]


def test_deploy_call_log_and_read_back(net: Net) -> None:
    wallet = Wallet(0, net.chain_id)
    contract = deploy(net, wallet)
    assert net.query("code", contract) == RUNTIME
    raw = wallet.sign(to=contract, data=store_call(42))
    assert net.submit(raw) == [None]
    net.commit_block()
    receipt = net.receipt(raw)
    [log] = receipt["eth"].logs
    assert (log.address, log.topics, int.from_bytes(log.data, "big")) == (contract, (0xAA,), 42)
    assert receipt["eth"].bloom != 0 and receipt["gas_used"] > 21_000
    assert net.query("storage", contract, 0) == 42
    call = net.query("call", wallet.address, contract, b"\x02")
    assert call["ok"] and int.from_bytes(call["output"], "big") == 42
    assert net.query("nonce", wallet.address) == 2


def test_revert_carries_its_data_and_still_pays(net: Net) -> None:
    wallet = Wallet(0, net.chain_id)
    contract = deploy(net, wallet)
    before = net.node.balance(wallet.address)
    raw = wallet.sign(to=contract, data=b"\x03", value=5)
    net.submit(raw)
    block = net.commit_block()
    receipt = net.receipt(raw)
    assert receipt["eth"].state_root == b"" and receipt["output"] == bytes.fromhex("deadbeef")
    [chain_receipt] = net.node.receipts_at(block.header.height)[1:]
    assert b"execution reverted" in chain_receipt
    fee = receipt["gas_used"] * receipt["effective_gas_price"]
    assert net.node.balance(wallet.address) == before - fee  # the value came back
    assert net.node.balance(contract) == 0
    call = net.query("call", wallet.address, contract, b"\x03")
    assert (call["ok"], call["error"], call["output"]) == (False, "execution reverted",
                                                           bytes.fromhex("deadbeef"))


def test_out_of_gas_burns_the_gas_limit_and_keeps_supply(net: Net) -> None:
    wallet = Wallet(0, net.chain_id)
    contract = deploy(net, wallet)
    raw = wallet.sign(to=contract, data=b"\x04", gas=60_000)
    net.submit(raw)
    net.commit_block()
    receipt = net.receipt(raw)
    assert receipt["eth"].state_root == b"" and receipt["gas_used"] == 60_000
    assert net.supply_holds([contract])


def test_value_transfer_and_native_transfer_move_one_balance_and_one_nonce(net: Net) -> None:
    sender, other = Wallet(0, net.chain_id), Wallet(1, net.chain_id)
    recipient = bytes.fromhex("11" * 20)
    start = net.node.balance(sender.address)
    raw = sender.sign(to=recipient, value=3 * ZG, gas=21_000)
    net.submit(raw)
    net.commit_block()
    fee = net.receipt(raw)["gas_used"] * net.receipt(raw)["effective_gas_price"]
    assert net.node.balance(recipient) == 3 * ZG == net.query("balance", recipient)
    assert net.node.balance(sender.address) == start - 3 * ZG - fee
    # The same account's next native tx takes the next nonce of the one account.
    native = make_tx(sender.account, net.network_id, 1, "token", "transfer", [recipient, ZG])
    assert net.submit(native.encoded) == [None]
    net.commit_block()
    assert net.node.balance(recipient) == 4 * ZG
    assert net.query("nonce", sender.address) == 2
    stale = sender.sign(to=recipient, value=1, gas=21_000, nonce=1)
    [error] = net.submit(stale)
    assert error is not None and "nonce too low" in error
    assert net.supply_holds([recipient]) and other.address != recipient


def test_fees_go_to_the_proposer_and_supply_holds_after_mixed_traffic(net: Net) -> None:
    wallet = Wallet(0, net.chain_id)
    contract = deploy(net, wallet)
    proposer = net.proposer
    before = net.node.balance(proposer)
    raws = [wallet.sign(to=contract, data=store_call(7)),
            wallet.sign(to=contract, data=b"\x03", value=9),
            wallet.sign(to=contract, data=b"\x04", gas=50_000),
            wallet.sign(to=bytes.fromhex("22" * 20), value=ZG, gas=21_000, kind=0),
            wallet.sign(to=bytes.fromhex("22" * 20), value=ZG, gas=30_000, kind=1)]
    assert net.submit(*raws) == [None] * 5
    block = net.commit_block()
    assert len(block.txs) == 5
    fees = sum(r["gas_used"] * r["effective_gas_price"] for r in map(net.receipt, raws))
    reward = net.config.networks.block_reward
    assert net.node.balance(proposer) - before == fees + reward
    assert net.supply_holds([contract, bytes.fromhex("22" * 20)])


def test_entry_checks_use_geths_words_and_change_nothing(net: Net) -> None:
    wallet = Wallet(0, net.chain_id)
    poor = Wallet(3, net.chain_id)
    gas_limit = net.config.networks.evm.block_gas_limit
    cases = {
        "invalid sender": wallet.sign(to=bytes(20), gas=21_000, chain_id=net.chain_id + 1,
                                      nonce=0),
        "intrinsic gas too low": wallet.sign(to=bytes(20), gas=20_999, nonce=0),
        "exceeds block gas limit": wallet.sign(to=bytes(20), gas=gas_limit + 1, nonce=0),
        "insufficient funds for gas * price + value": poor.sign(
            to=bytes(20), value=net.node.balance(poor.address), gas=21_000, nonce=0),
        "transaction type not supported": b"\x03" + wallet.sign(to=bytes(20), nonce=0)[1:],
        "nonce too high": wallet.sign(to=bytes(20), gas=21_000, nonce=10_000),
        "oversized data": wallet.sign(data=b"\x01" * net.config.networks.max_tx_bytes,
                                      gas=2_000_000, nonce=0),
        "only replay-protected (EIP-155) transactions allowed": bytes(
            wallet.key.sign_transaction({"nonce": 0, "to": to_checksum_address(bytes(20)),
                                         "value": 0, "gas": 21_000, "gasPrice": 2 * GWEI,
                                         "data": b""}).raw_transaction),
        "max fee per gas less than block base fee": wallet.sign(to=bytes(20), gas=21_000,
                                                                nonce=0, max_fee=1),
    }
    for words, raw in cases.items():
        [error] = net.submit(raw)
        assert error is not None and words in error, (words, error)
    good = wallet.sign(to=bytes(20), gas=21_000, nonce=0)
    assert net.submit(good) == [None]
    [again] = net.submit(good)
    assert again is not None and "already known" in again
    assert list(net.node.mempool) == [decode_tx(good).hash]
    fields = rlp.decode(good[1:])
    unsigned_r = good[:1] + rlp.encode([*fields[:10], b"", fields[11]])  # r = 0: no signer
    [error] = net.submit(unsigned_r)
    assert error is not None and "invalid sender" in error
    assert net.query("nonce", wallet.address) == 0 and net.node.committed.height == 0


def test_two_networks_have_distinct_chain_ids_and_refuse_each_others_txs(
        tmp_path: Path) -> None:
    one, two = Net(tmp_path, 1, "one"), Net(tmp_path, 2, "two")
    try:
        assert one.chain_id != two.chain_id
        assert one.query("chain_id") == one.chain_id
        raw = Wallet(0, one.chain_id).sign(to=bytes(20), gas=21_000)
        assert one.submit(raw) == [None]
        [error] = two.submit(raw)
        assert error is not None and "invalid chain id" in error
    finally:
        one.node.close()
        two.node.close()


def test_state_root_is_deterministic_and_covers_contract_storage(tmp_path: Path) -> None:
    config = small_config()
    machines = [build_state_machine(config, 1) for _ in range(2)]
    wallet = Wallet(0, config.networks.evm.chain_id(1))
    deploy_raw = wallet.sign(data=INIT, gas=200_000)
    contract = decode_tx(deploy_raw)  # address follows from sender and nonce
    call_raw = wallet.sign(to=contract_address(contract), data=store_call(5))
    other_raw = Wallet(0, config.networks.evm.chain_id(1)).sign(
        to=contract_address(contract), data=store_call(6), nonce=1)
    roots = []
    for machine, second in zip(machines, [call_raw, call_raw], strict=True):
        roots.append(run_block(machine, [deploy_raw, second]))
    assert roots[0] == roots[1]
    assert run_block(build_state_machine(config, 1), [deploy_raw, other_raw]) != roots[0]


def contract_address(create: Transaction) -> bytes:
    from eth._utils.address import generate_contract_address

    return generate_contract_address(create.sender, create.nonce)


def run_block(machine: StateMachine, raws: list[bytes]) -> tuple[bytes, bytes]:
    """(network state root, EVM root) after genesis and one block of `raws`."""
    state: dict[bytes, bytes] = {}
    state.update(machine.genesis(lambda key: None).writes())
    included, rejected, result = machine.build_block(
        state.get, BlockInfo(1, 1, 1_000, bytes(20)), [decode_tx(r) for r in raws], bytes(32))
    assert (len(included), rejected) == (len(raws), [])
    overlay = Overlay(state.get)
    overlay.merge(result.overlay)
    evm_root = machine.query(overlay.get, "evm", "root", ())
    return result.state_root, evm_root


def test_restart_keeps_code_storage_and_nonces(tmp_path: Path) -> None:
    net = Net(tmp_path)
    wallet = Wallet(0, net.chain_id)
    contract = deploy(net, wallet)
    net.submit(wallet.sign(to=contract, data=store_call(99)))
    net.commit_block()
    root = net.query("root")
    waiting = wallet.sign(to=contract, data=store_call(100))
    assert net.submit(waiting) == [None]
    net.reopen()
    try:
        assert list(net.node.mempool) == [decode_tx(waiting).hash]
        assert net.query("code", contract) == RUNTIME
        assert net.query("storage", contract, 0) == 99
        assert net.query("root") == root and net.query("nonce", wallet.address) == 2
        net.commit_block()
        assert net.query("storage", contract, 0) == 100
    finally:
        net.node.close()


def test_block_gas_limit_defers_txs_to_the_next_block(tmp_path: Path) -> None:
    net = Net(tmp_path)
    net.config = net.config.replace(**{"networks.evm.block_gas_limit": 50_000})
    net.node.close()
    net.node = make_node(tmp_path, net.config, 1, net.vset, 1, "gas")
    try:
        wallet = Wallet(0, net.chain_id)
        raws = [wallet.sign(to=bytes(20), gas=21_000) for _ in range(3)]
        assert net.submit(*raws) == [None] * 3
        assert len(net.commit_block().txs) == 2
        assert len(net.commit_block().txs) == 1
    finally:
        net.node.close()


def test_base_fee_follows_gas_used_against_the_target(net: Net) -> None:
    evm = net.config.networks.evm
    start = net.query("base_fee")
    assert start == evm.initial_base_fee
    net.commit_block()  # empty: below target, the fee falls by 1/8
    assert net.query("base_fee") == start - start // 8
    wallet = Wallet(0, net.chain_id)
    raw = wallet.sign(to=bytes(20), gas=21_000)
    net.submit(raw)
    height = net.commit_block().header.height
    assert net.query("block_gas", height) == {"base_fee": start - start // 8,
                                              "gas_used": 21_000, "gas_limit":
                                              net.config.networks.evm.block_gas_limit,
                                              "bloom": 0}
    assert net.query("block_gas", 1)["gas_used"] == 0
    limit = evm.block_gas_limit
    assert next_base_fee(GWEI, limit, limit, 1) == GWEI + GWEI // 8
    assert next_base_fee(GWEI, limit // 2, limit, 1) == GWEI
    assert next_base_fee(evm.min_base_fee, 0, limit, evm.min_base_fee) == evm.min_base_fee


def test_estimate_gas_finds_the_least_gas_that_succeeds(net: Net) -> None:
    wallet = Wallet(0, net.chain_id)
    contract = deploy(net, wallet)
    estimate = net.query("estimate_gas", wallet.address, contract, store_call(1))
    assert net.query("call", wallet.address, contract, store_call(1), 0, estimate)["ok"]
    assert not net.query("call", wallet.address, contract, store_call(1), 0,
                         estimate - 1)["ok"]



def test_zg_destroyed_by_a_self_destruct_counts_as_burned(net: Net) -> None:
    """EIP-6780: a contract that self-destructs to itself in the tx that created it
    destroys its balance; the token module counts it burned, so the supply holds."""
    wallet = Wallet(0, net.chain_id)
    self_destruct_to_self = bytes([0x30, 0xFF])  # ADDRESS SELFDESTRUCT
    raw = wallet.sign(data=self_destruct_to_self, value=2 * ZG, gas=100_000)
    assert net.submit(raw) == [None]
    net.commit_block()
    assert net.receipt(raw)["eth"].state_root == b"\x01"
    supply = net.node.machine.query(net.node.state_get, "token", "supply", ())
    assert supply["burned"] == 2 * ZG
    assert net.supply_holds([contract_address(decode_tx(raw))])


def test_an_evm_tx_the_proposer_dropped_leaves_no_trace_in_its_block(tmp_path: Path) -> None:
    """The proposer tried an Ethereum tx that failed in the block (its sender spent the
    funds in a native tx just before): its block must carry the same state root as a
    validator that never saw that tx computes."""
    proposer_net, validator_net = Net(tmp_path, 1, "proposer"), Net(tmp_path, 1, "validator")
    try:
        wallet = Wallet(1, proposer_net.chain_id)
        spend_all = make_tx(wallet.account, 1, 0, "token", "transfer",
                            [bytes(20), proposer_net.node.balance(wallet.address)])
        too_late = wallet.sign(to=bytes(20), value=1, gas=21_000, nonce=1)
        assert proposer_net.submit(spend_all.encoded, too_late) == [None, None]
        node = proposer_net.node
        block = node.build_block(0, proposer_net.proposer, None, 1)
        assert [tx.hash for tx in block.txs] == [spend_all.hash]
        validator_net.node.validate_block(block, proposer_net.proposer)  # same roots
    finally:
        proposer_net.node.close()
        validator_net.node.close()


@pytest.mark.parametrize(("key", "value", "words"), [
    ("chain_id_base", 1, "clear of public chain ids"),
    ("block_gas_limit", 20_999, "one transfer"),
    ("initial_base_fee", 1, "must be >= min_base_fee"),
])
def test_evm_config_refuses_bad_values_by_name(key: str, value: int, words: str) -> None:
    with pytest.raises(ConfigError, match=f"networks.evm.{key}: .*{words}"):
        small_config(**{f"networks.evm.{key}": value}).validate()


def test_reads_at_an_older_height_see_the_state_of_then(net: Net) -> None:
    """eth_call, eth_getBalance, eth_getStorageAt and eth_getTransactionCount at a block."""
    wallet = Wallet(0, net.chain_id)
    contract = deploy(net, wallet)
    net.submit(wallet.sign(to=contract, data=store_call(1)))
    first = net.commit_block().header.height
    balance_then = net.node.balance(wallet.address)
    net.submit(wallet.sign(to=contract, data=store_call(2)))
    net.commit_block()
    net.commit_block()
    machine = net.node.machine

    def at(height: int, method: str, *args: object) -> object:
        return machine.query(net.node.state_get_at(height), "evm", method, args)

    assert at(first, "storage", contract, 0) == 1
    assert int.from_bytes(at(first, "call", wallet.address, contract, b"\x02")["output"],
                          "big") == 1
    assert at(first, "balance", wallet.address) == balance_then
    assert at(first, "nonce", wallet.address) == 2
    assert at(first - 1, "code", contract) == RUNTIME and at(first - 1, "storage",
                                                               contract, 0) == 0
    assert at(0, "code", contract) == b"" and at(0, "nonce", wallet.address) == 0
    latest = net.node.committed.height
    assert at(latest, "storage", contract, 0) == 2 == net.query("storage", contract, 0)
    with pytest.raises(NotFound, match="not committed"):
        net.node.state_get_at(latest + 1)


def test_blockhash_gives_the_parent_blocks_hash(net: Net) -> None:
    wallet = Wallet(0, net.chain_id)
    create = wallet.sign(data=deployable(PARENT_HASH_RECORDER), gas=200_000)
    net.submit(create)
    net.commit_block()
    recorder = net.receipt(create)["contract_address"]
    net.commit_block()
    net.submit(wallet.sign(to=recorder, gas=100_000))
    block = net.commit_block()
    recorded = net.query("storage", recorder, 0).to_bytes(32, "big")
    assert recorded == block.header.prev_hash != bytes(32)


def test_a_py_evm_crash_drops_the_tx_and_the_block_goes_on(net: Net, monkeypatch) -> None:
    """A bug inside py-evm (here: a patched apply_transaction that raises) refuses that tx
    instead of halting block building; the other txs of the block commit."""
    from zg_actors.evm.state import LedgerState

    wallet, other = Wallet(0, net.chain_id), Wallet(1, net.chain_id)
    crashing = wallet.sign(to=bytes.fromhex("44" * 20), value=1, gas=21_000)
    fine = other.sign(to=bytes.fromhex("55" * 20), value=1, gas=21_000)
    assert net.submit(crashing, fine) == [None, None]
    real = LedgerState.apply_transaction

    def apply(state: LedgerState, eth: object):  # noqa: ANN202
        if eth.to == bytes.fromhex("44" * 20):
            raise RuntimeError("py-evm bug")
        return real(state, eth)

    monkeypatch.setattr(LedgerState, "apply_transaction", apply)
    block = net.commit_block()
    assert [tx.hash for tx in block.txs] == [decode_tx(fine).hash]
    assert list(net.node.mempool) == [] and net.query("nonce", wallet.address) == 0


def test_evm_commit_gives_each_txs_type_and_status_and_the_blocks_gas(net: Net) -> None:
    """What the validators record as EVM metrics at each commit (chain/stats.py)."""
    wallet = Wallet(0, net.chain_id)
    contract = deploy(net, wallet)
    raws = [wallet.sign(to=contract, data=store_call(7), kind=0),
            wallet.sign(to=contract, data=b"\x03", kind=1),  # reverts
            wallet.sign(to=wallet.address, value=1)]
    assert net.submit(*raws) == [None, None, None]
    base_fee = net.query("base_fee")
    block = net.commit_block()
    figures = net.node.evm_commit(block)
    assert figures.txs == [(0, True), (1, False), (2, True)]
    assert figures.gas_used == sum(net.receipt(raw)["gas_used"] for raw in raws) > 3 * 21_000
    assert (figures.gas_limit, figures.base_fee) == (net.config.networks.evm.block_gas_limit,
                                                     base_fee)
    empty = net.commit_block()
    assert net.node.evm_commit(empty).txs == [] and net.node.evm_commit(empty).gas_used == 0


def test_a_txs_sender_is_recovered_once_per_process(net: Net, monkeypatch) -> None:
    """Entry (prepare, admit), the mempool, the proposer's block, the block decoded and
    executed again as a peer does, the commit: one public-key recovery per tx in this
    process (it was three: two at entry, one more when py-evm applied a fresh decode)."""
    recoveries = []
    recover = coincurve.PublicKey.from_signature_and_message.__func__

    def counting(cls: type, *args: object, **kwargs: object) -> coincurve.PublicKey:
        recoveries.append(args[1])
        return recover(cls, *args, **kwargs)

    monkeypatch.setattr(coincurve.PublicKey, "from_signature_and_message",
                        classmethod(counting))
    wallets = [Wallet(i, net.chain_id) for i in range(3)]
    raws = [w.sign(to=bytes.fromhex("66" * 20), value=1, gas=21_000) for w in wallets]
    net.node.prepare_txs(raws)
    assert net.submit(*raws) == [None] * 3
    peer = make_node(net.tmp_path, net.config, net.network_id, net.vset, 1, "peer")
    proposer = net.proposer
    block = net.node.build_block(0, proposer, None, 1)
    peer_copy = Block.decode(block.encode())
    peer.validate_block(peer_copy, proposer)  # executes the block anew
    net.node.validate_block(block, proposer)
    net.node.commit(block, sign_commit(net.node, net.config, block.hash, 1, [0, 1, 2]))
    peer.close()
    assert [tx.hash for tx in block.txs] == [decode_tx(raw).hash for raw in raws]
    assert len(recoveries) == 3 and net.query("nonce", wallets[2].address) == 1
    assert [tx.sender for tx in peer_copy.txs] == [w.address for w in wallets]


def test_a_malleable_or_unrecoverable_signature_is_still_an_invalid_sender(net: Net) -> None:
    """One recovery, no separate verify: s in the upper half (EIP-2), r or s past the
    curve order and a y parity other than 0/1 are refused as Geth refuses them."""
    wallet = Wallet(0, net.chain_id)
    good = wallet.sign(to=bytes(20), gas=21_000, nonce=0)
    fields = rlp.decode(good[1:])
    s = int.from_bytes(fields[11], "big")
    order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    flipped = b"" if fields[9] else b"\x01"

    def variant(y_parity: bytes, r: bytes, s_value: int) -> bytes:
        return good[:1] + rlp.encode([*fields[:9], y_parity, r,
                                      s_value.to_bytes(32, "big").lstrip(b"\0")])

    cases = [variant(flipped, fields[10], order - s),  # same signer, high s
             variant(fields[9], order.to_bytes(32, "big"), s),  # r = n
             variant(fields[9], fields[10], order + 1),  # s past the order
             variant(b"\x02", fields[10], s)]  # y parity 2
    for raw in cases:
        [error] = net.submit(raw)
        assert error is not None and "invalid sender" in error, error
    assert net.submit(good) == [None]
    assert net.query("nonce", wallet.address) == 0 and net.node.committed.height == 0


def test_a_typed_txs_signed_message_is_cut_from_its_raw_bytes(net: Net) -> None:
    """The message a typed tx's sender signed, cut from the raw bytes, is py-evm's own
    re-encoding of it: for both typed kinds, short and long lists, with an access list."""
    from eth_account import Account as EthAccount

    from zg_actors.chain.tx import parse_ethereum_tx, typed_signing_message

    wallet = Wallet(0, net.chain_id)
    key = EthAccount.from_key(wallet.key.key)
    raws = [wallet.sign(to=bytes(20), gas=21_000, kind=2, nonce=0),
            wallet.sign(to=None, data=b"\x01" * 70_000, gas=900_000, kind=2, nonce=1),
            wallet.sign(to=bytes(20), gas=21_000, kind=1, nonce=2),
            bytes(key.sign_transaction({
                "type": 1, "chainId": net.chain_id, "nonce": 3, "gas": 90_000,
                "gasPrice": GWEI, "to": to_checksum_address(bytes(20)), "value": 0,
                "data": b"\x02" * 60, "accessList": [
                    {"address": to_checksum_address(b"\x22" * 20),
                     "storageKeys": ["0x" + "33" * 32, "0x" + "44" * 32]}]}).raw_transaction)]
    for raw in raws:
        assert typed_signing_message(raw) == parse_ethereum_tx(raw).get_message_for_signing()


def test_a_tx_hash_without_recovering_its_sender(net: Net, monkeypatch) -> None:
    """What the JSON-RPC answers before a validator's checks: the hash of a tx whose
    envelope parses, None for a zg-native tx, Geth's refusals for the rest; no public-key
    recovery on the way (the validators recover it)."""
    from zg_actors.chain.tx import (
        MalformedTransaction,
        TxTypeNotSupported,
        ethereum_tx_hash,
        is_ethereum_encoding,
    )

    def no_recovery(*args: object, **kwargs: object) -> None:
        raise AssertionError("a sender was recovered")

    monkeypatch.setattr(coincurve.PublicKey, "from_signature_and_message",
                        classmethod(no_recovery))
    wallet = Wallet(0, net.chain_id)
    typed = wallet.sign(to=bytes(20), gas=21_000)
    legacy = wallet.sign(to=bytes(20), gas=21_000, kind=0)
    native = make_tx(validator_identity(net.config.devnet.key_seed, 0).account,
                     net.network_id, 0, "token", "transfer", [bytes(20), 1]).encoded
    assert ethereum_tx_hash(typed) == decode_tx.__globals__["keccak256"](typed)
    assert ethereum_tx_hash(legacy) == decode_tx.__globals__["keccak256"](legacy)
    assert ethereum_tx_hash(native) is None
    assert [is_ethereum_encoding(r) for r in (typed, legacy, native)] == [True, True, False]
    with pytest.raises(TxTypeNotSupported, match="type 5"):
        ethereum_tx_hash(b"\x05" + typed[1:])
    with pytest.raises(MalformedTransaction):
        ethereum_tx_hash(typed[:-3])
    with pytest.raises(MalformedTransaction):
        ethereum_tx_hash(b"\xc3\x01\x02\x03")
