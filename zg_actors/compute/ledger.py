"""Ledger arithmetic: a user's main account and one sub-account per provider (pure).

Funds flow wallet -> main account (deposit) -> sub-account (transfer) -> provider
(settlement).  Retrieving from a sub-account starts a refund that stays in the
sub-account, still payable to the provider, until its lock expires; only then does it
return to the main account.  This is what lets a provider serve against a balance
without racing the user's withdrawals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zg_actors.crypto.encoding import Decoded, as_int, as_list, decode, encode


@dataclass
class Refund:
    amount: int
    unlock_at_ms: int


@dataclass
class MainAccount:
    available: int = 0  # not assigned to any provider; refundable to the wallet at once
    created_at_ms: int = 0

    def encode(self) -> bytes:
        return encode([self.available, self.created_at_ms])

    @classmethod
    def decode(cls, raw: bytes) -> MainAccount:
        f = as_list(decode(raw), 2)
        return cls(as_int(f[0]), as_int(f[1]))


@dataclass
class SubAccount:
    balance: int = 0  # everything held for this provider, pending refunds included
    pending_refund: int = 0  # part of balance the user asked back; unlocks later
    nonce: int = 0  # highest settled request nonce: a settlement must start above it
    refunds: list[Refund] = field(default_factory=list)  # oldest first

    @property
    def available(self) -> int:
        """What new requests may spend: the balance not on its way back to the user."""
        return self.balance - self.pending_refund

    def encode(self) -> bytes:
        return encode([self.balance, self.pending_refund, self.nonce,
                       [[r.amount, r.unlock_at_ms] for r in self.refunds]])

    @classmethod
    def decode(cls, raw: bytes) -> SubAccount:
        f = as_list(decode(raw), 4)
        return cls(as_int(f[0]), as_int(f[1]), as_int(f[2]),
                   [_refund(r) for r in as_list(f[3])])

    def to_dict(self) -> dict:
        return {"balance": self.balance, "pending_refund": self.pending_refund,
                "available": self.available, "nonce": self.nonce,
                "refunds": [{"amount": r.amount, "unlock_at_ms": r.unlock_at_ms}
                            for r in self.refunds]}

    @classmethod
    def from_dict(cls, data: dict) -> SubAccount:
        return cls(data["balance"], data["pending_refund"], data["nonce"],
                   [Refund(r["amount"], r["unlock_at_ms"]) for r in data["refunds"]])


def _refund(item: Decoded) -> Refund:
    f = as_list(item, 2)
    return Refund(as_int(f[0]), as_int(f[1]))


def cancel_refunds(sub: SubAccount, amount: int) -> int:
    """Cancel pending refunds, newest first, up to `amount`; returns the amount cancelled.

    A deposit into a sub-account first cancels what the user was taking back: the
    money is still there, so it is reused rather than locked and re-sent.
    """
    cancelled = _shrink_newest(sub, min(amount, sub.pending_refund))
    sub.pending_refund -= cancelled
    return cancelled


def _shrink_newest(sub: SubAccount, amount: int) -> int:
    left = amount
    while left and sub.refunds:
        newest = sub.refunds[-1]
        take = min(newest.amount, left)
        newest.amount -= take
        left -= take
        if newest.amount == 0:
            sub.refunds.pop()
    return amount - left


def charge(sub: SubAccount, amount: int) -> int:
    """Take a fee; returns what was paid (less than amount only if the balance is short).

    Fees come from the available balance first and only then from pending refunds
    (newest first): a refund in its lock period still backs the requests served before
    it unlocks.
    """
    paid = min(amount, sub.balance)
    from_refunds = max(0, paid - sub.available)
    sub.pending_refund -= _shrink_newest(sub, from_refunds)
    sub.balance -= paid
    return paid


def request_refund(sub: SubAccount, now_ms: int, lock_ms: int) -> Refund | None:
    """Start returning the whole available balance; it unlocks at now + lock."""
    amount = sub.available
    if amount == 0:
        return None
    refund = Refund(amount, now_ms + lock_ms)
    sub.refunds.append(refund)
    sub.pending_refund += amount
    return refund


def take_unlocked(sub: SubAccount, now_ms: int) -> int:
    """Remove the refunds whose lock has expired; returns their total for the main account."""
    unlocked = sum(r.amount for r in sub.refunds if r.unlock_at_ms <= now_ms)
    sub.refunds = [r for r in sub.refunds if r.unlock_at_ms > now_ms]
    sub.pending_refund -= unlocked
    sub.balance -= unlocked
    return unlocked
