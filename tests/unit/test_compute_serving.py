"""The `serving` module through network 0's real state machine: signed txs, fees, rollback."""

from __future__ import annotations

from collections import defaultdict

import pytest

from zg_actors.chain.modules.base import BlockInfo, Context, Receipt
from zg_actors.chain.network import build_state_machine
from zg_actors.chain.tx import make_tx
from zg_actors.compute.accounts import provider_account, user_account
from zg_actors.compute.request import Receipt as ServedReceipt
from zg_actors.compute.request import sign_request
from zg_actors.compute.serving import ESCROW
from zg_actors.compute.settlement import Settlement, Trace
from zg_actors.config import ZG
from zg_actors.crypto.accounts import Account
from zg_actors.store.overlay import Overlay

from .helpers import small_config

LOCK_S = 60
CONFIG = small_config(**{"compute.refund_lock_s": float(LOCK_S)})
SEED = CONFIG.devnet.key_seed
PROVIDER = provider_account(SEED, 0)
ALICE = user_account(SEED, 0)
STAKE = CONFIG.compute.provider_stake
START = CONFIG.compute.genesis_balance


class Network0:
    """Network 0's state machine over a dict, one tx per block, clock under test control."""

    def __init__(self) -> None:
        self.machine = build_state_machine(CONFIG, 0)
        self.state: dict[bytes, bytes | None] = {}
        self._commit(self.machine.genesis(self.state.get))
        self.time_ms = 1_700_000_000_000
        self.nonces: dict[bytes, int] = defaultdict(int)

    def _commit(self, overlay: Overlay) -> None:
        for key, value in overlay.writes():
            if value is None:
                self.state.pop(key, None)
            else:
                self.state[key] = value

    def send(self, account: Account, method: str, *args: object) -> Receipt:
        tx = make_tx(account, 0, self.nonces[account.address], "serving", method, list(args))
        ctx = Context(BlockInfo(0, 1, self.time_ms, bytes(20)), Overlay(self.state.get))
        receipt = self.machine.apply_tx(ctx, tx)
        self._commit(ctx.overlay)
        self.nonces[account.address] += 1
        self.last_hash = tx.hash
        return receipt

    def ok(self, account: Account, method: str, *args: object) -> Receipt:
        receipt = self.send(account, method, *args)
        assert receipt.ok, receipt.error
        return receipt

    def query(self, method: str, *args: object) -> object:
        return self.machine.query(self.state.get, "serving", method, args)

    def wallet(self, address: bytes) -> int:
        return self.machine.query(self.state.get, "token", "balance", (address,))


@pytest.fixture
def net() -> Network0:
    chain = Network0()
    chain.ok(PROVIDER, "add_service", "chatbot", "zg-compute-provider-0", "m", "none", 2, 3, "")
    return chain


def escrow_matches_ledgers(chain: Network0, users: list[Account]) -> bool:
    held = sum(s["stake"] for s in chain.query("services"))
    for user in users:
        account = chain.query("account", user.address)
        held += account["main_available"] + sum(s["balance"] for s in account["sub_accounts"])
    return chain.wallet(ESCROW) == held


def test_service_stake_is_taken_once_and_returned_on_removal(net: Network0) -> None:
    assert net.wallet(PROVIDER.address) == START - STAKE
    net.ok(PROVIDER, "add_service", "chatbot", "zg-compute-provider-0", "m2", "TeeML", 5, 6, "x")
    services = net.query("services")
    assert len(services) == 1  # one service per provider: the second call updated it
    assert (services[0]["model"], services[0]["input_price"]) == ("m2", 5)
    assert net.wallet(PROVIDER.address) == START - STAKE
    net.ok(PROVIDER, "remove_service")
    assert net.query("services") == []
    assert net.wallet(PROVIDER.address) == START


def test_bad_service_fields_fail_and_change_nothing() -> None:
    chain = Network0()
    receipt = chain.send(PROVIDER, "add_service", "chatbot", "e", "m", "magic", 1, 1, "")
    assert not receipt.ok and "verifiability" in receipt.error
    assert chain.query("services") == [] and chain.wallet(PROVIDER.address) == START


def test_first_deposit_needs_the_minimum_balance(net: Network0) -> None:
    receipt = net.send(ALICE, "deposit", CONFIG.compute.min_ledger_balance - 1)
    assert not receipt.ok and "at least" in receipt.error
    assert not net.query("account", ALICE.address)["exists"]
    assert net.wallet(ALICE.address) == START
    net.ok(ALICE, "deposit", 5 * ZG)
    assert net.query("account", ALICE.address)["main_available"] == 5 * ZG
    assert net.wallet(ALICE.address) == START - 5 * ZG


def test_transfer_needs_a_known_provider_and_enough_in_the_main_account(net: Network0) -> None:
    net.ok(ALICE, "deposit", 5 * ZG)
    unknown = net.send(ALICE, "transfer", bytes(20), ZG)
    assert not unknown.ok and "no service is registered" in unknown.error
    short = net.send(ALICE, "transfer", PROVIDER.address, 7 * ZG)
    assert not short.ok and f"deposit {2 * ZG} more" in short.error
    net.ok(ALICE, "transfer", PROVIDER.address, 3 * ZG)
    account = net.query("account", ALICE.address)
    assert account["main_available"] == 2 * ZG
    assert account["sub_accounts"][0]["balance"] == 3 * ZG
    assert escrow_matches_ledgers(net, [ALICE])


def test_retrieved_funds_unlock_after_the_lock_then_refund_to_the_wallet(net: Network0) -> None:
    net.ok(ALICE, "deposit", 5 * ZG)
    net.ok(ALICE, "transfer", PROVIDER.address, 3 * ZG)
    net.ok(ALICE, "retrieve", PROVIDER.address)
    sub = net.query("sub_account", ALICE.address, PROVIDER.address)
    assert (sub["pending_refund"], sub["available"]) == (3 * ZG, 0)
    assert sub["refunds"][0]["unlock_at_ms"] == net.time_ms + LOCK_S * 1000
    locked = net.send(ALICE, "refund", 4 * ZG)
    assert not locked.ok and "has 2000000000000000000 refundable" in locked.error
    net.time_ms += LOCK_S * 1000
    net.ok(ALICE, "refund", 4 * ZG)
    assert net.wallet(ALICE.address) == START - ZG
    account = net.query("account", ALICE.address)
    assert account["main_available"] == ZG
    assert account["sub_accounts"][0]["balance"] == 0
    assert escrow_matches_ledgers(net, [ALICE])


def test_a_transfer_reuses_pending_refunds_before_the_main_account(net: Network0) -> None:
    net.ok(ALICE, "deposit", 5 * ZG)
    net.ok(ALICE, "transfer", PROVIDER.address, 3 * ZG)
    net.ok(ALICE, "retrieve", PROVIDER.address)
    net.ok(ALICE, "transfer", PROVIDER.address, 4 * ZG)
    account = net.query("account", ALICE.address)
    sub = account["sub_accounts"][0]
    assert (sub["balance"], sub["pending_refund"], sub["refunds"]) == (4 * ZG, 0, [])
    assert account["main_available"] == ZG  # only 1 of the 4 came from the main account


def served(nonce: int, fee: int) -> ServedReceipt:
    signed = sign_request(ALICE, 0, PROVIDER.address, nonce, "hello", 10**6, 8)
    return ServedReceipt(signed.request, signed.signature, 2, 3, fee, "hi")


def test_settlement_pays_the_provider_once(net: Network0) -> None:
    net.ok(ALICE, "deposit", 5 * ZG)
    net.ok(ALICE, "transfer", PROVIDER.address, 1_000)
    batch = [Settlement(ALICE.address, (Trace.of(served(1, 300)), Trace.of(served(2, 400))))
             .to_list()]
    before = net.wallet(PROVIDER.address)
    net.ok(PROVIDER, "settle", batch)
    [result] = net.query("settlement", net.last_hash)
    assert (result["status"], result["paid"], result["last_nonce"]) == ("SUCCESS", 700, 2)
    assert net.wallet(PROVIDER.address) == before + 700
    net.ok(PROVIDER, "settle", batch)  # the same traces again
    [replay] = net.query("settlement", net.last_hash)
    assert (replay["status"], replay["paid"]) == ("INVALID_NONCE", 0)
    assert net.wallet(PROVIDER.address) == before + 700
    partial = [Settlement(ALICE.address, (Trace.of(served(3, 500)),)).to_list()]
    net.ok(PROVIDER, "settle", partial)
    [short] = net.query("settlement", net.last_hash)
    assert (short["status"], short["paid"], short["unpaid"]) == ("PARTIAL", 300, 200)
    assert escrow_matches_ledgers(net, [ALICE])


def test_other_networks_have_no_serving_module() -> None:
    assert "serving" not in build_state_machine(CONFIG, 1).modules
