"""A provider's books (pure): admission of requests, unsettled receipts, settlement plans.

The actor persists every change to LMDB before it acknowledges; this class only keeps
the arithmetic and the rules, so they are unit-tested without Ray or disk.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from zg_actors.compute.errors import ComputeInsufficientBalance, FeeCapTooLow, StaleNonce
from zg_actors.compute.ledger import SubAccount
from zg_actors.compute.params import as_tokens
from zg_actors.compute.request import Receipt, Request, check_max_tokens, fee_cap
from zg_actors.compute.settlement import Settlement, Trace


def _hex(address: bytes) -> str:
    return "0x" + address.hex()


@dataclass(frozen=True)
class Prices:
    input_price: int
    output_price: int


class ProviderBook:
    """Unsettled receipts per user, output fees reserved by requests in flight, and the
    highest nonce served per user."""

    def __init__(self, provider: bytes) -> None:
        self.provider = provider
        self.unsettled: dict[bytes, dict[int, Receipt]] = defaultdict(dict)  # {user: {nonce: r}}
        self.reserved: dict[bytes, int] = defaultdict(int)  # {user: max fees of requests in flight}
        self.last_nonce: dict[bytes, int] = defaultdict(int)  # {user: highest nonce admitted}
        self.unanswered: dict[bytes, bytes] = {}  # {user: hash of the admitted request at
        #                                            last_nonce while it has no receipt}
        self.in_flight: set[bytes] = set()  # hashes of requests being served now

    # ---- admission --------------------------------------------------------------------
    def unsettled_fees(self, user: bytes) -> int:
        return sum(r.fee for r in self.unsettled[user].values()) + self.reserved[user]

    def check_nonce(self, request: Request) -> None:
        """Nonces strictly increase per user: a nonce at or below the last one is a replay."""
        last = self.last_nonce[request.user]
        if request.hash in self.in_flight:
            raise StaleNonce(f"request with nonce {request.nonce} of user {_hex(request.user)} "
                             f"is being served already", nonce=request.nonce, user=request.user)
        if request.nonce == last and self.unanswered.get(request.user) == request.hash:
            return  # re-sent after a crash before it was answered: it was never charged
        if request.nonce <= last:
            raise StaleNonce(f"nonce {request.nonce} of user {_hex(request.user)} is not above "
                             f"the last one served ({last}): replayed or stale request",
                             nonce=request.nonce, last_nonce=last, user=request.user)

    def admit(self, request: Request, prompt_tokens: int, prices: Prices,
              sub: SubAccount) -> int:
        """Check max tokens, nonce, fee cap and funds; reserve the cap and return it.

        Fits when input fee + unsettled + reserved output fee <= balance - pending
        refund: everything already owed plus the most this request can cost.
        """
        check_max_tokens(request.max_tokens)
        self.check_nonce(request)
        cap = fee_cap(prompt_tokens, request.max_tokens, prices.input_price,
                      prices.output_price)
        if request.max_fee < cap:
            raise FeeCapTooLow(f"the request signs a max fee of {request.max_fee}, but "
                               f"{prompt_tokens} prompt tokens and {request.max_tokens} output "
                               f"tokens can cost {cap}", max_fee=request.max_fee, needed=cap)
        owed = self.unsettled_fees(request.user)
        available = sub.available
        if owed + cap > available:
            short = owed + cap - available
            raise ComputeInsufficientBalance(
                f"sub-account of {_hex(request.user)} with provider {_hex(self.provider)} has "
                f"{available} available; {owed} is owed for earlier requests and this one may "
                f"cost {cap}: transfer at least {short} ({as_tokens(short)} tokens) more to "
                f"this provider (`zg compute fund {_hex(self.provider)} AMOUNT`); you were not "
                f"charged", available=available, owed=owed, needed=owed + cap, shortfall=short,
                provider=self.provider)
        self.last_nonce[request.user] = request.nonce
        self.unanswered[request.user] = request.hash
        self.in_flight.add(request.hash)
        self.reserved[request.user] += cap
        return cap

    def release(self, request: Request, reserved: int) -> None:
        """A request in flight ended (served or failed): drop its reservation."""
        self.reserved[request.user] -= reserved
        self.in_flight.discard(request.hash)

    def record(self, receipt: Receipt) -> None:
        """A signed receipt, persisted by the caller, waits for settlement."""
        user = receipt.request.user
        self.unsettled[user][receipt.request.nonce] = receipt
        self.last_nonce[user] = max(self.last_nonce[user], receipt.request.nonce)
        if self.unanswered.get(user) == receipt.request.hash:
            del self.unanswered[user]

    # ---- settlement -------------------------------------------------------------------
    def total_unsettled(self) -> int:
        return sum(r.fee for receipts in self.unsettled.values() for r in receipts.values())

    def count_unsettled(self) -> int:
        return sum(len(receipts) for receipts in self.unsettled.values())

    def drop_settled(self, user: bytes, settled_nonce: int) -> list[Receipt]:
        """Forget receipts the chain has paid (nonce <= its settled nonce); returns them."""
        receipts = self.unsettled.get(user, {})
        gone = [receipts.pop(n) for n in sorted(receipts) if n <= settled_nonce]
        if not receipts:
            self.unsettled.pop(user, None)
        return gone

    def plan(self, max_items: int, max_traces: int) -> list[list[Settlement]]:
        """Unsettled receipts as settlement txs: at most max_items users and max_traces
        traces per tx, each user's requests in nonce order."""
        txs: list[list[Settlement]] = []
        current: list[Settlement] = []
        traces_in_tx = 0
        for user in sorted(self.unsettled):
            nonces = sorted(self.unsettled[user])
            while nonces:
                if len(current) == max_items or traces_in_tx == max_traces:
                    txs.append(current)
                    current, traces_in_tx = [], 0
                take = nonces[:max_traces - traces_in_tx]
                nonces = nonces[len(take):]
                current.append(Settlement(user, tuple(Trace.of(self.unsettled[user][n])
                                                      for n in take)))
                traces_in_tx += len(take)
        if current:
            txs.append(current)
        return txs
