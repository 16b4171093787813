"""How a module call turns a tx's args into typed values: the handler's arity is checked
first, then one decoder for every module, whose errors name the argument and its value
and change nothing."""

from __future__ import annotations

import pytest

from zg_actors.chain.modules.base import (
    SHOWN_VALUE_BYTES,
    ArgDecoder,
    BlockInfo,
    Context,
    Module,
    ModuleError,
)
from zg_actors.chain.modules.token import TokenModule
from zg_actors.chain.tx import make_tx
from zg_actors.compute.errors import InvalidServiceCall
from zg_actors.compute.serving import ServingModule, ServingParams
from zg_actors.crypto.devkeys import c0_account
from zg_actors.staking.ledger import C0_NETWORK_ID, BadArgument
from zg_actors.store.overlay import Overlay

from .helpers import LedgerHarness, small_config

SENDER = bytes(range(20))


def call_context() -> Context:
    return Context(BlockInfo(1, 1, 0, bytes(20)), Overlay({}.get), SENDER)


def test_a_bad_argument_is_named_with_its_value() -> None:
    decode = ArgDecoder(InvalidServiceCall)
    with pytest.raises(InvalidServiceCall) as short:
        decode.address(b"\x01\x02", "provider")
    assert str(short.value) == "provider must be a 20-byte address, got 0x0102"
    assert short.value.details == {"argument": "provider", "value": "0x0102"}
    with pytest.raises(InvalidServiceCall, match="amount must be a non-negative integer, "
                                                 "got a list of length 2"):
        decode.uint([b"\x01", b"\x02"], "amount")
    with pytest.raises(InvalidServiceCall, match="amount must be a non-negative integer, "
                                                 "got 0x0001"):
        decode.uint(b"\x00\x01", "amount")  # a leading zero: not canonical
    with pytest.raises(InvalidServiceCall, match="amount must be positive, got 0"):
        decode.uint(b"", "amount", positive=True)
    with pytest.raises(InvalidServiceCall, match="model must be UTF-8 text, got 0xff"):
        decode.text(b"\xff", "model")
    with pytest.raises(InvalidServiceCall, match="model is 5 characters, limit 4"):
        decode.text(b"llama", "model", max_chars=4)
    long = bytes(SHOWN_VALUE_BYTES + 1)
    with pytest.raises(InvalidServiceCall) as cut:
        decode.address(long, "to")
    assert cut.value.details["value"] == "0x" + bytes(SHOWN_VALUE_BYTES).hex() + "..."
    assert (decode.address(SENDER, "to"), decode.uint(b"\x07", "n"),
            decode.text(b"ok", "t")) == (SENDER, 7, "ok")


def test_every_module_decodes_its_args_the_same_way() -> None:
    token_call = call_context()
    with pytest.raises(ModuleError, match="to must be a 20-byte address, got 0x010203") as bad:
        TokenModule(block_reward=0).apply(token_call, "transfer", (b"\x01\x02\x03", b"\x05"))
    assert bad.value.details == {"argument": "to", "value": "0x010203"}
    assert list(token_call.overlay.writes()) == []

    serving_call = call_context()
    serving = ServingModule(ServingParams(provider_stake=1, min_ledger_balance=1,
                                          refund_lock_ms=1))
    with pytest.raises(InvalidServiceCall, match="amount must be a non-negative integer, got "
                                                 "a list of length 1"):
        serving.apply(serving_call, "deposit", ([b"\x01"],))
    assert list(serving_call.overlay.writes()) == []

    c0 = LedgerHarness(small_config())
    alice = c0_account(small_config().devnet.key_seed, 0)
    before = dict(c0.state)
    tx = make_tx(alice, C0_NETWORK_ID, c0.ledger.nonce_of(alice.address), "staking",
                 "transfer", [b"\x0a" * 3, 1])
    with pytest.raises(BadArgument, match="to must be a 20-byte address, got 0x0a0a0a"):
        c0.run(lambda ledger: ledger.apply_tx(tx))
    assert c0.state == before


class Echo(Module):
    name = "echo"

    def tx_join(self, ctx: Context, first: bytes, second: bytes = b"") -> bytes:
        return first + second

    def tx_count(self, ctx: Context, *items: bytes) -> int:
        return len(items)

    def tx_broken(self, ctx: Context, value: bytes) -> int:
        return len(value[0])  # the bug: an item of bytes is an int


def test_a_call_with_the_wrong_number_of_args_is_a_typed_error() -> None:
    echo = Echo()
    with pytest.raises(ModuleError, match="echo.join takes 1 to 2 arguments, 0 given"):
        echo.apply(call_context(), "join", ())
    with pytest.raises(ModuleError, match="echo.join takes 1 to 2 arguments, 3 given"):
        echo.apply(call_context(), "join", (b"a", b"b", b"c"))
    assert echo.apply(call_context(), "join", (b"a",)) == b"a"
    assert echo.apply(call_context(), "count", ()) == 0
    assert echo.apply(call_context(), "count", (b"a", b"b")) == 2

    c0 = LedgerHarness(small_config())
    alice = c0_account(small_config().devnet.key_seed, 0)
    before = dict(c0.state)
    tx = make_tx(alice, C0_NETWORK_ID, c0.ledger.nonce_of(alice.address), "staking",
                 "transfer", [SENDER])
    with pytest.raises(BadArgument, match="staking.transfer takes 2 arguments, 1 given"):
        c0.run(lambda ledger: ledger.apply_tx(tx))
    assert c0.state == before


def test_a_type_error_inside_a_handler_surfaces_as_itself() -> None:
    with pytest.raises(TypeError, match="has no len") as raised:
        Echo().apply(call_context(), "broken", (b"\x01",))
    assert not isinstance(raised.value, ModuleError)  # a bug, not the caller's wrong args
