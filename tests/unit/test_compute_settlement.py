"""Settlement rules per item: who may claim, which nonces, whose signature, how much."""

from __future__ import annotations

from zg_actors.compute.ledger import SubAccount
from zg_actors.compute.request import Receipt, sign_request
from zg_actors.compute.settlement import (
    Settlement,
    SettlementStatus,
    Trace,
    is_valid_nonce_sequence,
    settle,
)
from zg_actors.crypto.accounts import Account
from zg_actors.crypto.encoding import decode, encode

NET = 0
USER = Account.from_seed(b"unit/user")
OTHER_USER = Account.from_seed(b"unit/other-user")
PROVIDER = Account.from_seed(b"unit/provider")
OTHER_PROVIDER = Account.from_seed(b"unit/other-provider")


def trace(nonce: int, fee: int = 10, max_fee: int = 100, signer: Account = USER,
          provider: Account = PROVIDER) -> Trace:
    signed = sign_request(signer, NET, provider.address, nonce, f"prompt {nonce}", max_fee, 8)
    request = signed.request
    if signer is not USER:  # a trace that claims USER while someone else signed it
        request = type(request)(NET, USER.address, request.provider, request.nonce,
                                request.max_fee, request.input_hash, request.max_tokens)
    return Trace.of(Receipt(request, signed.signature, 3, 2, fee, "answer"))


def settle_traces(sub: SubAccount, *traces: Trace):
    return settle(Settlement(USER.address, traces), PROVIDER.address, sub, NET)


def test_success_pays_every_fee_and_advances_the_nonce() -> None:
    sub = SubAccount(balance=100)
    result = settle_traces(sub, trace(1), trace(2, fee=15), trace(7))
    assert result.status is SettlementStatus.SUCCESS
    assert (result.paid, result.unpaid, result.last_nonce) == (35, 0, 7)
    assert (sub.balance, sub.nonce) == (65, 7)


def test_partial_pays_what_is_there_and_consumes_the_traces() -> None:
    sub = SubAccount(balance=25)
    result = settle_traces(sub, trace(1), trace(2), trace(3))
    assert result.status is SettlementStatus.PARTIAL
    assert (result.paid, result.unpaid, sub.balance, sub.nonce) == (25, 5, 0, 3)


def test_replayed_settlement_is_invalid_nonce_and_pays_nothing() -> None:
    sub = SubAccount(balance=100)
    first = (trace(1), trace(2))
    assert settle_traces(sub, *first).status is SettlementStatus.SUCCESS
    replay = settle_traces(sub, *first)
    assert replay.status is SettlementStatus.INVALID_NONCE
    assert (replay.paid, sub.balance, sub.nonce) == (0, 80, 2)


def test_nonces_must_strictly_increase_above_the_settled_nonce() -> None:
    assert is_valid_nonce_sequence((trace(5), trace(6)), settled_nonce=4)
    assert not is_valid_nonce_sequence((trace(4),), settled_nonce=4)
    assert not is_valid_nonce_sequence((trace(6), trace(6)), settled_nonce=0)
    assert not is_valid_nonce_sequence((trace(7), trace(6)), settled_nonce=0)
    sub = SubAccount(balance=100, nonce=10)
    assert settle_traces(sub, trace(9)).status is SettlementStatus.INVALID_NONCE
    assert sub.balance == 100


def test_another_providers_trace_is_provider_mismatch() -> None:
    sub = SubAccount(balance=100)
    result = settle_traces(sub, trace(1), trace(2, provider=OTHER_PROVIDER))
    assert result.status is SettlementStatus.PROVIDER_MISMATCH
    assert (sub.balance, sub.nonce) == (100, 0)


def test_forged_signature_or_fee_above_the_signed_cap_is_invalid_signature() -> None:
    sub = SubAccount(balance=1_000)
    forged = settle_traces(sub, trace(1, signer=OTHER_USER))
    assert forged.status is SettlementStatus.INVALID_SIGNATURE
    over_cap = settle_traces(sub, trace(1, fee=101, max_fee=100))
    assert over_cap.status is SettlementStatus.INVALID_SIGNATURE
    assert (sub.balance, sub.nonce) == (1_000, 0)


def test_settlement_round_trips_through_its_encoding() -> None:
    item = Settlement(USER.address, (trace(1), trace(2)))
    assert Settlement.from_list(decode(encode(item.to_list()))) == item
