"""Ledger arithmetic: fees from available funds first, refunds locked, deposits cancel refunds."""

from __future__ import annotations

from zg_actors.compute.ledger import (
    Refund,
    SubAccount,
    cancel_refunds,
    charge,
    request_refund,
    take_unlocked,
)

LOCK_MS = 10_000


def funded(balance: int) -> SubAccount:
    return SubAccount(balance=balance)


def test_fee_comes_from_available_balance_before_pending_refunds() -> None:
    sub = funded(100)
    request_refund(sub, now_ms=0, lock_ms=LOCK_MS)  # all 100 pending
    sub.balance += 50  # a later transfer
    assert sub.available == 50
    assert charge(sub, 30) == 30
    assert (sub.balance, sub.pending_refund, sub.available) == (120, 100, 20)
    assert charge(sub, 40) == 40  # 20 available, then 20 out of the pending refund
    assert (sub.balance, sub.pending_refund) == (80, 80)
    assert sub.refunds == [Refund(80, LOCK_MS)]


def test_fees_eat_the_newest_refund_first() -> None:
    sub = funded(30)
    sub.refunds = [Refund(10, 1_000), Refund(20, 2_000)]
    sub.pending_refund = 30
    assert charge(sub, 25) == 25
    assert sub.refunds == [Refund(5, 1_000)]
    assert (sub.balance, sub.pending_refund) == (5, 5)


def test_short_balance_pays_what_is_there() -> None:
    sub = funded(70)
    assert charge(sub, 100) == 70
    assert (sub.balance, sub.pending_refund) == (0, 0)


def test_refund_unlocks_only_after_the_lock_period() -> None:
    sub = funded(100)
    refund = request_refund(sub, now_ms=5_000, lock_ms=LOCK_MS)
    assert refund == Refund(100, 15_000)
    assert sub.available == 0 and sub.balance == 100
    assert take_unlocked(sub, now_ms=14_999) == 0
    assert take_unlocked(sub, now_ms=15_000) == 100
    assert (sub.balance, sub.pending_refund, sub.refunds) == (0, 0, [])


def test_nothing_to_refund_starts_no_refund() -> None:
    sub = funded(0)
    assert request_refund(sub, 0, LOCK_MS) is None
    assert sub.refunds == []


def test_deposit_cancels_pending_refunds_newest_first() -> None:
    sub = funded(60)
    sub.refunds = [Refund(25, 1_000), Refund(35, 2_000)]
    sub.pending_refund = 60
    assert cancel_refunds(sub, 40) == 40
    assert sub.refunds == [Refund(20, 1_000)]
    assert (sub.balance, sub.pending_refund, sub.available) == (60, 20, 40)
    assert cancel_refunds(sub, 100) == 20  # only what is pending can be cancelled
    assert sub.refunds == [] and sub.available == 60


def test_sub_account_round_trips_through_its_encoding() -> None:
    sub = SubAccount(10**20, 5, 42, [Refund(5, 123_456)])
    assert SubAccount.decode(sub.encode()) == sub
    assert SubAccount.from_dict(sub.to_dict()) == sub
