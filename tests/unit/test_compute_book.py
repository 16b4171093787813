"""A provider's admission rule, nonce rule and settlement plan."""

from __future__ import annotations

import pytest

from zg_actors.compute.book import Prices, ProviderBook
from zg_actors.compute.errors import (
    ComputeInsufficientBalance,
    FeeCapTooLow,
    InvalidMaxTokens,
    StaleNonce,
)
from zg_actors.compute.ledger import Refund, SubAccount
from zg_actors.compute.request import Receipt, Request, fee_cap, sign_request
from zg_actors.crypto.accounts import Account

PRICES = Prices(input_price=2, output_price=5)
PROVIDER = Account.from_seed(b"unit/provider")
USERS = [Account.from_seed(f"unit/user/{i}".encode()) for i in range(3)]
PROMPT_TOKENS, MAX_TOKENS = 10, 8
CAP = fee_cap(PROMPT_TOKENS, MAX_TOKENS, 2, 5)  # 10 * 2 + 8 * 5 = 60


def request(nonce: int, user: Account = USERS[0], max_fee: int = CAP):
    return sign_request(user, 0, PROVIDER.address, nonce, "text", max_fee, MAX_TOKENS).request


def serve(book: ProviderBook, nonce: int, fee: int, user: Account = USERS[0]) -> Receipt:
    receipt = Receipt(request(nonce, user), b"", PROMPT_TOKENS, 3, fee, "out")
    book.record(receipt)
    return receipt


def test_admits_when_owed_plus_this_requests_cap_fits_the_available_balance() -> None:
    book = ProviderBook(PROVIDER.address)
    serve(book, 1, fee=30)
    sub = SubAccount(balance=100)
    assert book.admit(request(2), PROMPT_TOKENS, PRICES, sub) == CAP  # 30 + 60 <= 100
    with pytest.raises(ComputeInsufficientBalance, match="at least 50 .* more to this") as err:
        book.admit(request(3), PROMPT_TOKENS, PRICES, sub)  # 30 + 60 in flight + 60 > 100
    assert err.value.details["shortfall"] == 50
    book.release(request(2), CAP)
    assert book.admit(request(4), PROMPT_TOKENS, PRICES, sub) == CAP


def test_pending_refunds_do_not_back_new_requests() -> None:
    book = ProviderBook(PROVIDER.address)
    sub = SubAccount(balance=100, pending_refund=50, refunds=[Refund(50, 10)])
    with pytest.raises(ComputeInsufficientBalance, match="has 50 available"):
        book.admit(request(1), PROMPT_TOKENS, PRICES, sub)


def test_a_rejected_request_changes_nothing() -> None:
    book = ProviderBook(PROVIDER.address)
    with pytest.raises(ComputeInsufficientBalance):
        book.admit(request(5), PROMPT_TOKENS, PRICES, SubAccount(balance=1))
    assert book.last_nonce[USERS[0].address] == 0 and book.unsettled_fees(USERS[0].address) == 0


def test_nonces_strictly_increase_per_user() -> None:
    book = ProviderBook(PROVIDER.address)
    sub = SubAccount(balance=10_000)
    book.admit(request(7), PROMPT_TOKENS, PRICES, sub)
    with pytest.raises(StaleNonce, match="being served already"):
        book.admit(request(7), PROMPT_TOKENS, PRICES, sub)  # the same request twice at once
    for stale in (7, 6):  # other requests reusing old nonces
        with pytest.raises(StaleNonce, match=f"nonce {stale} .* not above the last one served"):
            book.admit(request(stale, max_fee=CAP + 1), PROMPT_TOKENS, PRICES, sub)
    book.admit(request(1, USERS[1]), PROMPT_TOKENS, PRICES, sub)  # another user's own sequence


def test_signed_fee_cap_must_cover_input_and_reserved_output() -> None:
    book = ProviderBook(PROVIDER.address)
    with pytest.raises(FeeCapTooLow, match="can cost 60"):
        book.admit(request(1, max_fee=CAP - 1), PROMPT_TOKENS, PRICES, SubAccount(balance=10**6))


def test_a_request_without_a_completion_bound_is_refused_and_changes_nothing() -> None:
    book = ProviderBook(PROVIDER.address)
    signed = request(1)  # a client that skipped sign_request's check sends max_tokens 0
    unbounded = Request(signed.network_id, signed.user, signed.provider, 1, signed.max_fee,
                        signed.input_hash, 0)
    with pytest.raises(InvalidMaxTokens, match="at least 1, got 0"):
        book.admit(unbounded, PROMPT_TOKENS, PRICES, SubAccount(balance=10**6))
    assert book.last_nonce[USERS[0].address] == 0 and book.unsettled_fees(USERS[0].address) == 0


def test_plan_respects_items_and_traces_per_tx_and_drop_settled_forgets() -> None:
    book = ProviderBook(PROVIDER.address)
    for user in USERS:
        for nonce in range(1, 6):
            serve(book, nonce, fee=1, user=user)
    txs = book.plan(max_items=2, max_traces=7)
    assert [sum(len(s.traces) for s in tx) for tx in txs] == [7, 7, 1]
    assert all(len(tx) <= 2 for tx in txs)
    for tx in txs:
        for item in tx:
            nonces = [t.nonce for t in item.traces]
            assert nonces == sorted(nonces)
    assert len(book.drop_settled(USERS[0].address, 3)) == 3
    assert sorted(book.unsettled[USERS[0].address]) == [4, 5]
    assert book.total_unsettled() == 12


def test_an_admitted_request_left_unanswered_by_a_crash_may_be_resent_once() -> None:
    book = ProviderBook(PROVIDER.address)
    sub = SubAccount(balance=10_000)
    first = request(3)
    book.admit(first, PROMPT_TOKENS, PRICES, sub)
    book.release(first, CAP)  # the actor died while generating
    book.admit(first, PROMPT_TOKENS, PRICES, sub)  # the same signed request, re-sent
    book.record(Receipt(first, b"", PROMPT_TOKENS, 3, 40, "out"))
    with pytest.raises(StaleNonce):
        book.admit(first, PROMPT_TOKENS, PRICES, sub)  # answered now: a replay
