"""A tx's args come from outside: every module method of a network (token, flow file
submissions, mine answers, DA, serving settlements, ...) and of C0 (staking), called
through the path a block takes (signed tx, stateless checks, fee, the module's handler)
with random canonical args of the method's arity. The chain records a handler's foreign
exception as an "InternalError" receipt rather than halting (execution.apply_tx); here
that is a failure: each arg must be decoded or refused with the module's typed error."""

from __future__ import annotations

import inspect
from functools import cache

from hypothesis import given
from hypothesis import strategies as st

from zg_actors.chain.execution import StateMachine
from zg_actors.chain.modules.base import BlockInfo
from zg_actors.chain.network import build_state_machine
from zg_actors.chain.tx import make_tx
from zg_actors.compute.params import SERVING_NETWORK_ID
from zg_actors.crypto.devkeys import load_account
from zg_actors.errors import ZgError
from zg_actors.staking.ledger import C0_NETWORK_ID, StakingLedger

from ..helpers import LedgerHarness, small_config
from .budget import fuzz
from .inputs import encode_int, items, outcome

CONFIG = small_config()
SENDER = load_account(CONFIG.devnet.key_seed, 0)
PROPOSER = load_account(CONFIG.devnet.key_seed, 1).address
# Values that pass the first checks of many handlers: funded addresses, hashes, amounts.
_useful = st.sampled_from([SENDER.address, PROPOSER, bytes(32), b"\x01" * 32, encode_int(1),
                           encode_int(10**18), encode_int(2**64), b"", b"\x00", [b"\x01"],
                           [[b"\x01" * 32, encode_int(12)]], [bytes(20), bytes(32)]])
args_items = st.one_of(_useful, items)


@cache
def network() -> tuple[StateMachine, dict[bytes, bytes]]:
    machine = build_state_machine(CONFIG, SERVING_NETWORK_ID)
    return machine, dict(machine.genesis({}.get).writes())


def tx_methods(holder: object, prefix: str) -> list[tuple[str, int]]:
    """(method, number of args) of each tx handler of `holder`."""
    out = []
    for name in dir(holder):
        if name.startswith(prefix) and callable(getattr(holder, name)):
            params = list(inspect.signature(getattr(holder, name)).parameters.values())
            positional = [p for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
            out.append((name[len(prefix):], max(len(positional) - 1, 0)))
    return out


@cache
def network_methods() -> list[tuple[str, str, int]]:
    machine, _ = network()
    return [(module.name, method, arity) for module in machine.modules.values()
            for method, arity in tx_methods(module, "tx_")]


def call_args(arity: int) -> st.SearchStrategy[list]:
    exact = st.lists(args_items, min_size=arity, max_size=arity)
    return st.one_of(exact, exact, st.lists(args_items, max_size=arity + 2))


def _apply(module: str, method: str, args: list) -> object:
    machine, genesis = network()
    tx = make_tx(SENDER, SERVING_NETWORK_ID, 0, module, method, args,
                 fee=CONFIG.networks.min_tx_fee)
    ctx = machine._begin(genesis.get, BlockInfo(SERVING_NETWORK_ID, 1, 1_000, PROPOSER))
    receipt = machine.apply_tx(ctx, tx)
    assert not receipt.error.startswith("InternalError"), receipt.error
    machine._finish(ctx, [receipt], bytes(32))
    return receipt


def test_every_module_of_a_network_is_fuzzed() -> None:
    assert {m for m, _, _ in network_methods()} >= {"token", "flow", "mine", "da", "serving"}


@fuzz(3)
@given(st.data())
def test_network_tx_args_are_decoded_or_refused_with_a_typed_error(data: st.DataObject
                                                                   ) -> None:
    module, method, arity = data.draw(st.sampled_from(network_methods()))
    outcome(_apply, module, method, data.draw(call_args(arity)))


@fuzz(2)
@given(st.data())
def test_c0_tx_args_are_decoded_or_refused_with_a_typed_error(data: st.DataObject) -> None:
    method, arity = data.draw(st.sampled_from(tx_methods(StakingLedger, "_tx_")))
    args = data.draw(call_args(arity))
    c0 = LedgerHarness(CONFIG)
    tx = make_tx(SENDER, C0_NETWORK_ID, 0, "staking", method, args)
    before = dict(c0.state)
    if isinstance(outcome(c0.run, lambda ledger: ledger.apply_tx(tx)), ZgError):
        assert c0.state == before


# Inputs the fuzzing found, kept as regressions (each raised a foreign exception before).
FOUND = [("mine", "register_source", [[encode_int(2**64)]])]  # u64(): OverflowError


def test_what_the_fuzzing_found_is_refused_with_a_typed_error() -> None:
    for module, method, args in FOUND:
        receipt = outcome(_apply, module, method, args)
        assert not receipt.ok and receipt.error, (module, method, receipt)
