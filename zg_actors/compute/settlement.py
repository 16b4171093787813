"""Settlement of request traces (pure): the checks the `serving` module applies.

A settlement transaction carries up to SETTLEMENTS_PER_TX_MAX items, each covering any
number of one user's requests to the sending provider.  Each trace is judged on its own,
so one bad trace cannot void the user's valid ones; a trace is refused as:

- PROVIDER_MISMATCH: it names another provider (a provider settles only its own).
- INVALID_NONCE: its nonce is not above the sub-account's last settled nonce and the
  item's last accepted trace, so a request is paid at most once.
- INVALID_SIGNATURE: the user's signature does not recover the user, or the fee claimed
  exceeds the max fee the user signed.

The item's result pays its accepted traces: SUCCESS in full, PARTIAL when the
sub-account was short (what was there is paid); it lists each refused trace with its
reason, and when none was accepted its status is the first refusal's.  Refused traces
change nothing; accepted ones advance the sub-account's nonce.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from zg_actors.compute.ledger import SubAccount, charge
from zg_actors.compute.request import HASH_BYTES, Receipt, Request
from zg_actors.crypto.accounts import ADDRESS_BYTES, recover_address
from zg_actors.crypto.encoding import Decoded, EncodingError, as_bytes, as_int, as_list
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


def _status(item: Decoded) -> SettlementStatus:
    code = as_int(item)
    try:
        return SettlementStatus(code)
    except ValueError:
        raise EncodingError(f"settlement status {code} is none of "
                            f"{[s.name for s in SettlementStatus]}", value=code) from None


@dataclass(frozen=True)
class SettlementResult:
    user: bytes
    status: SettlementStatus
    paid: int
    unpaid: int
    last_nonce: int  # the sub-account's settled nonce after this item
    rejected: tuple[tuple[int, SettlementStatus], ...] = ()  # (nonce, why) per refused trace

    def to_list(self) -> list:
        return [self.user, int(self.status), self.paid, self.unpaid, self.last_nonce,
                [[nonce, int(why)] for nonce, why in self.rejected]]

    @classmethod
    def from_list(cls, item: Decoded) -> SettlementResult:
        f = as_list(item, 6)
        rejected = tuple((as_int(r[0]), _status(r[1]))
                         for r in (as_list(r, 2) for r in as_list(f[5])))
        return cls(as_bytes(f[0]), _status(f[1]), as_int(f[2]),
                   as_int(f[3]), as_int(f[4]), rejected)

    def to_dict(self) -> dict:
        return {"user": self.user, "status": self.status.name, "paid": self.paid,
                "unpaid": self.unpaid, "last_nonce": self.last_nonce,
                "rejected": [{"nonce": nonce, "status": why.name}
                             for nonce, why in self.rejected]}


def is_authorised(trace: Trace, network_id: int, user: bytes) -> bool:
    """The user signed this request and the fee stays within the cap they signed."""
    if trace.fee > trace.max_fee:
        return False
    try:
        return recover_address(trace.request(network_id, user).hash, trace.signature) == user
    except InvalidSignature:
        return False


def check_trace(trace: Trace, provider: bytes, user: bytes, after_nonce: int,
                network_id: int) -> SettlementStatus | None:
    """Why this trace may not be paid, or None if it may; after_nonce is the highest
    nonce already settled or accepted."""
    if trace.provider != provider:
        return SettlementStatus.PROVIDER_MISMATCH
    if trace.nonce <= after_nonce:
        return SettlementStatus.INVALID_NONCE
    if not is_authorised(trace, network_id, user):
        return SettlementStatus.INVALID_SIGNATURE
    return None


def settle(item: Settlement, provider: bytes, sub: SubAccount,
           network_id: int) -> SettlementResult:
    """Judge each trace, and charge the sub-account (mutated) for the accepted ones."""
    accepted: list[Trace] = []
    rejected: list[tuple[int, SettlementStatus]] = []
    last_nonce = sub.nonce
    for trace in item.traces:
        why = check_trace(trace, provider, item.user, last_nonce, network_id)
        if why is None:
            accepted.append(trace)
            last_nonce = trace.nonce
        else:
            rejected.append((trace.nonce, why))
    if not accepted:
        status = rejected[0][1] if rejected else SettlementStatus.PROVIDER_MISMATCH
        return SettlementResult(item.user, status, 0, 0, sub.nonce, tuple(rejected))
    total = sum(t.fee for t in accepted)
    paid = charge(sub, total)
    # The accepted traces are consumed even when short: the provider served them and takes
    # what is there; a second claim for the same nonces would be a double payment.
    sub.nonce = last_nonce
    status = SettlementStatus.SUCCESS if paid == total else SettlementStatus.PARTIAL
    return SettlementResult(item.user, status, paid, total - paid, sub.nonce, tuple(rejected))
