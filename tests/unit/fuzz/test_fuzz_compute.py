"""Compute bytes from outside: a user's signed request (what a provider's `infer` decodes
and checks), a provider's signed receipt (what a user and settlement decode), settlement
items and results."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from zg_actors.compute.ledger import MainAccount, SubAccount
from zg_actors.compute.request import Receipt, Request, make_receipt, sign_request
from zg_actors.compute.settlement import (
    Settlement,
    SettlementResult,
    SettlementStatus,
    Trace,
)
from zg_actors.crypto.accounts import recover_address
from zg_actors.crypto.devkeys import load_account
from zg_actors.crypto.encoding import decode, encode
from zg_actors.errors import ZgError

from .budget import fuzz
from .inputs import any_bytes, outcome, outside_bytes

USER, PROVIDER = load_account("zg-devnet", 0), load_account("zg-devnet", 1)
SIGNED = sign_request(USER, 0, PROVIDER.address, 7, "What is 0G?", 10**15, 32)
RECEIPT = make_receipt(SIGNED.request, SIGNED.signature, 5, 9, "A storage network.", 10**9,
                       2 * 10**9).signed_by(PROVIDER)
SETTLEMENT = Settlement(USER.address, (Trace.of(RECEIPT),))
RESULT = SettlementResult(USER.address, SettlementStatus.PARTIAL, 5, 2, 7,
                          ((8, SettlementStatus.INVALID_NONCE),))
ENCODED = [encode(SIGNED.request.to_list()), RECEIPT.encode(), encode(SETTLEMENT.to_list()),
           encode(RESULT.to_list()), MainAccount(5, 6).encode(), SubAccount(9, 1, 3).encode()]


def test_requests_receipts_and_settlements_round_trip() -> None:
    assert Request.from_list(decode(ENCODED[0])) == SIGNED.request
    assert Receipt.decode(RECEIPT.encode()) == RECEIPT
    assert recover_address(SIGNED.request.hash, SIGNED.signature) == USER.address
    assert Receipt.decode(RECEIPT.encode()).response_signer() == PROVIDER.address
    assert Settlement.from_list(decode(ENCODED[2])) == SETTLEMENT
    assert SettlementResult.from_list(decode(ENCODED[3])) == RESULT


def _request(raw: bytes, signature: bytes) -> object:
    """What `infer` does with a request before it serves it: decode, then recover its signer."""
    request = Request.from_list(decode(raw))
    return request, recover_address(request.hash, signature)


@fuzz()
@given(outside_bytes(ENCODED), st.one_of(st.just(SIGNED.signature),
                                         outside_bytes([SIGNED.signature]), any_bytes))
def test_a_request_decodes_and_recovers_its_signer_or_is_refused(raw: bytes,
                                                                 signature: bytes) -> None:
    outcome(_request, raw, signature)


def _receipt(raw: bytes) -> object:
    receipt = Receipt.decode(raw)
    return receipt, receipt.response_signer(), receipt.request.hash


@fuzz()
@given(outside_bytes(ENCODED))
def test_a_receipt_decodes_or_is_refused(raw: bytes) -> None:
    outcome(_receipt, raw)


def _settlement_items(raw: bytes) -> object:
    item = decode(raw)
    return (Settlement.from_list(item), Trace.from_list(item), SubAccount.decode(raw),
            MainAccount.decode(raw))


@fuzz()
@example(encode([USER.address, 99, 0, 0, 0, []]))  # a status no SettlementStatus names
@example(encode([USER.address, 0, 0, 0, 0, [[1, 99]]]))
@given(outside_bytes(ENCODED))
def test_settlements_results_and_accounts_decode_or_are_refused(raw: bytes) -> None:
    for decoder in (Settlement.from_list, Trace.from_list, SettlementResult.from_list):
        item = outcome(decode, raw)
        if not isinstance(item, ZgError):
            outcome(decoder, item)
    outcome(SubAccount.decode, raw)
    outcome(MainAccount.decode, raw)
