"""Settlement rules per trace: who may claim, which nonces, whose signature, how much."""

from __future__ import annotations

from zg_actors.compute.ledger import SubAccount
from zg_actors.compute.request import Receipt, sign_request
from zg_actors.compute.settlement import (
    Settlement,
    SettlementResult,
    SettlementStatus,
    Trace,
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
    sub = SubAccount(balance=100, nonce=4)
    result = settle_traces(sub, trace(5), trace(5), trace(4), trace(7), trace(6))
    assert result.status is SettlementStatus.SUCCESS
    assert result.rejected == ((5, SettlementStatus.INVALID_NONCE),
                               (4, SettlementStatus.INVALID_NONCE),
                               (6, SettlementStatus.INVALID_NONCE))
    assert (result.paid, sub.balance, sub.nonce) == (20, 80, 7)
    assert settle_traces(sub, trace(7)).status is SettlementStatus.INVALID_NONCE
    assert (sub.balance, sub.nonce) == (80, 7)


def test_another_providers_trace_is_provider_mismatch() -> None:
    sub = SubAccount(balance=100)
    result = settle_traces(sub, trace(1, provider=OTHER_PROVIDER))
    assert result.status is SettlementStatus.PROVIDER_MISMATCH
    assert (result.paid, sub.balance, sub.nonce) == (0, 100, 0)


def test_forged_signature_or_fee_above_the_signed_cap_is_invalid_signature() -> None:
    sub = SubAccount(balance=1_000)
    forged = settle_traces(sub, trace(1, signer=OTHER_USER))
    assert forged.status is SettlementStatus.INVALID_SIGNATURE
    over_cap = settle_traces(sub, trace(1, fee=101, max_fee=100))
    assert over_cap.status is SettlementStatus.INVALID_SIGNATURE
    assert (sub.balance, sub.nonce) == (1_000, 0)


def test_one_bad_trace_does_not_void_the_users_valid_ones() -> None:
    sub = SubAccount(balance=1_000)
    result = settle_traces(sub, trace(1), trace(2, fee=1_900, max_fee=100),
                           trace(3, signer=OTHER_USER), trace(4, provider=OTHER_PROVIDER),
                           trace(5, fee=15))
    assert result.status is SettlementStatus.SUCCESS
    assert result.rejected == ((2, SettlementStatus.INVALID_SIGNATURE),
                               (3, SettlementStatus.INVALID_SIGNATURE),
                               (4, SettlementStatus.PROVIDER_MISMATCH))
    assert (result.paid, result.unpaid, result.last_nonce) == (25, 0, 5)
    assert (sub.balance, sub.nonce) == (975, 5)


def test_an_item_with_no_valid_trace_takes_the_first_refusal_and_changes_nothing() -> None:
    sub = SubAccount(balance=1_000, nonce=3)
    result = settle_traces(sub, trace(2), trace(4, fee=101, max_fee=100))
    assert result.status is SettlementStatus.INVALID_NONCE
    assert result.rejected == ((2, SettlementStatus.INVALID_NONCE),
                               (4, SettlementStatus.INVALID_SIGNATURE))
    assert (result.paid, sub.balance, sub.nonce) == (0, 1_000, 3)


def test_settlement_and_its_result_round_trip_through_their_encoding() -> None:
    item = Settlement(USER.address, (trace(1), trace(2)))
    assert Settlement.from_list(decode(encode(item.to_list()))) == item
    result = settle_traces(SubAccount(balance=100), trace(1), trace(2, fee=101), trace(3))
    assert SettlementResult.from_list(decode(encode(result.to_list()))) == result
    assert result.to_dict()["rejected"] == [{"nonce": 2, "status": "INVALID_SIGNATURE"}]
