"""Settlement of request traces (pure): the checks the `serving` module applies per item.

A settlement transaction carries up to SETTLEMENTS_PER_TX_MAX items, each covering any
number of one user's requests to the sending provider.  Each item gets one result:

- PROVIDER_MISMATCH: a trace names another provider (a provider settles only its own).
- INVALID_NONCE: nonces must strictly increase and start above the sub-account's last
  settled nonce, so a request is paid at most once.
- INVALID_SIGNATURE: the user's signature does not recover the user, or the fee claimed
  exceeds the max fee the user signed.
- SUCCESS: paid in full; PARTIAL: the sub-account was short, so what was there is paid.
Rejected items change nothing; paid items advance the sub-account's nonce.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from zg_actors.compute.ledger import SubAccount, charge
from zg_actors.compute.request import HASH_BYTES, Receipt, Request
from zg_actors.crypto.accounts import ADDRESS_BYTES, recover_address
from zg_actors.crypto.encoding import Decoded, as_bytes, as_int, as_list
from zg_actors.errors import InvalidSignature


class SettlementStatus(IntEnum):
    SUCCESS = 0
    PARTIAL = 1
    PROVIDER_MISMATCH = 2
    INVALID_NONCE = 3
    INVALID_SIGNATURE = 4


@dataclass(frozen=True)
class Trace:
    """One served request as settled on chain: the user's signed fields and the fee."""

    provider: bytes
    nonce: int
    max_fee: int
    input_hash: bytes
    max_tokens: int
    fee: int
    signature: bytes

    def request(self, network_id: int, user: bytes) -> Request:
        return Request(network_id, user, self.provider, self.nonce, self.max_fee,
                       self.input_hash, self.max_tokens)

    def to_list(self) -> list:
        return [self.provider, self.nonce, self.max_fee, self.input_hash, self.max_tokens,
                self.fee, self.signature]

    @classmethod
    def from_list(cls, item: Decoded) -> Trace:
        f = as_list(item, 7)
        return cls(as_bytes(f[0], ADDRESS_BYTES), as_int(f[1]), as_int(f[2]),
                   as_bytes(f[3], HASH_BYTES), as_int(f[4]), as_int(f[5]), as_bytes(f[6]))

    @classmethod
    def of(cls, receipt: Receipt) -> Trace:
        r = receipt.request
        return cls(r.provider, r.nonce, r.max_fee, r.input_hash, r.max_tokens, receipt.fee,
                   receipt.user_signature)


@dataclass(frozen=True)
class Settlement:
    user: bytes
    traces: tuple[Trace, ...]

    def to_list(self) -> list:
        return [self.user, [t.to_list() for t in self.traces]]

    @classmethod
    def from_list(cls, item: Decoded) -> Settlement:
        f = as_list(item, 2)
        return cls(as_bytes(f[0], ADDRESS_BYTES), tuple(Trace.from_list(t)
                                                        for t in as_list(f[1])))

    @property
    def total_fee(self) -> int:
        return sum(t.fee for t in self.traces)


@dataclass(frozen=True)
class SettlementResult:
    user: bytes
    status: SettlementStatus
    paid: int
    unpaid: int
    last_nonce: int  # the sub-account's settled nonce after this item

    def to_list(self) -> list:
        return [self.user, int(self.status), self.paid, self.unpaid, self.last_nonce]

    @classmethod
    def from_list(cls, item: Decoded) -> SettlementResult:
        f = as_list(item, 5)
        return cls(as_bytes(f[0]), SettlementStatus(as_int(f[1])), as_int(f[2]),
                   as_int(f[3]), as_int(f[4]))

    def to_dict(self) -> dict:
        return {"user": self.user, "status": self.status.name, "paid": self.paid,
                "unpaid": self.unpaid, "last_nonce": self.last_nonce}


def is_valid_nonce_sequence(traces: tuple[Trace, ...], settled_nonce: int) -> bool:
    """Strictly increasing and above the last settled nonce: no request paid twice."""
    previous = settled_nonce
    for trace in traces:
        if trace.nonce <= previous:
            return False
        previous = trace.nonce
    return True


def is_authorised(trace: Trace, network_id: int, user: bytes) -> bool:
    """The user signed this request and the fee stays within the cap they signed."""
    if trace.fee > trace.max_fee:
        return False
    try:
        return recover_address(trace.request(network_id, user).hash, trace.signature) == user
    except InvalidSignature:
        return False


def check_settlement(item: Settlement, provider: bytes, sub: SubAccount,
                     network_id: int) -> SettlementStatus | None:
    """The rejection status of an item, or None if it may be paid."""
    if not item.traces or any(t.provider != provider for t in item.traces):
        return SettlementStatus.PROVIDER_MISMATCH
    if not is_valid_nonce_sequence(item.traces, sub.nonce):
        return SettlementStatus.INVALID_NONCE
    if not all(is_authorised(t, network_id, item.user) for t in item.traces):
        return SettlementStatus.INVALID_SIGNATURE
    return None


def settle(item: Settlement, provider: bytes, sub: SubAccount,
           network_id: int) -> SettlementResult:
    """Check one item and charge the sub-account (mutated) if it passes."""
    rejected = check_settlement(item, provider, sub, network_id)
    if rejected is not None:
        return SettlementResult(item.user, rejected, 0, 0, sub.nonce)
    total = item.total_fee
    paid = charge(sub, total)
    # The traces are consumed even when short: the provider served them and takes what
    # is there; a second claim for the same nonces would be a double payment.
    sub.nonce = item.traces[-1].nonce
    status = SettlementStatus.SUCCESS if paid == total else SettlementStatus.PARTIAL
    return SettlementResult(item.user, status, paid, total - paid, sub.nonce)
