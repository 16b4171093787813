"""The txpool: one validator's bounded mempool, after Geth's.

Per sender, the txs whose nonces run on without a gap from the sender's committed
nonce are *pending* (the next block may take them); the others are *queued* (future
nonces, waiting for the gap to fill). The limits (config `networks.txpool`) keep one
sender from filling the pool or the blocks: pending and queued txs per sender, queued
and all txs in the pool, how far past its sender's next pending nonce a queued tx may
be, how long a queued tx may wait, and the fee raise that replaces a tx of the same
nonce. A full pool takes a tx from the sender holding the most (queued txs first) or
refuses the newcomer when no sender holds more than it would. Blocks take pending txs
round-robin across senders, each sender's in nonce order.

Pure: no clock (callers pass `now`, in seconds) and no I/O; ChainNode persists the pool.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass

from zg_actors.chain.tx import Transaction, TxError, check_nonce
from zg_actors.config import TxPoolConfig
from zg_actors.errors import InvalidInput, Unavailable


class DuplicateTx(TxError, InvalidInput):
    code = "DUPLICATE_TX"


class MempoolFull(TxError, Unavailable):
    code = "MEMPOOL_FULL"


class AccountLimitExceeded(TxError, Unavailable):
    code = "ACCOUNT_LIMIT_EXCEEDED"


class NonceTooHigh(TxError, InvalidInput):
    code = "NONCE_TOO_HIGH"


class ReplacementUnderpriced(TxError, InvalidInput):
    code = "REPLACEMENT_UNDERPRICED"


@dataclass(frozen=True)
class PooledTx:
    tx: Transaction
    arrival: float  # seconds (time.time()) when this validator first admitted it
    seq: int  # admission order: orders txs of one arrival time (one batch)


@dataclass
class _Sender:
    """One sender's txs in the pool, by nonce."""

    nonce: int  # the sender's committed nonce: its first pending nonce
    txs: dict[int, PooledTx]
    pending_end: int  # the first nonce from `nonce` on that the pool lacks

    @property
    def pending(self) -> int:
        return self.pending_end - self.nonce

    @property
    def queued(self) -> int:
        return len(self.txs) - self.pending

    def link(self) -> None:
        """Extend the pending run over the txs that now follow it without a gap."""
        while self.pending_end in self.txs:
            self.pending_end += 1


class _MostHeld:
    """Senders by how many txs of one kind they hold, most first (a lazy max-heap:
    stale entries are skipped when they reach the top)."""

    def __init__(self) -> None:
        self._held: dict[bytes, int] = {}
        self._heap: list[tuple[int, bytes]] = []

    def set(self, sender: bytes, count: int) -> None:
        if self._held.get(sender, 0) == count:
            return
        if count:
            self._held[sender] = count
            heapq.heappush(self._heap, (-count, sender))
        else:
            del self._held[sender]
        if len(self._heap) > 2 * len(self._held) + 64:
            self._heap = [(-c, s) for s, c in self._held.items()]
            heapq.heapify(self._heap)

    def top(self) -> tuple[bytes, int] | None:
        while self._heap:
            count, sender = self._heap[0]
            if self._held.get(sender) == -count:
                return sender, -count
            heapq.heappop(self._heap)
        return None


class TxPool:
    """Pending and queued txs per sender, within TxPoolConfig's limits."""

    def __init__(self, limits: TxPoolConfig) -> None:
        self.limits = limits
        self._by_hash: dict[bytes, PooledTx] = {}  # in arrival order
        self._senders: dict[bytes, _Sender] = {}
        self.pending_count = 0
        self.queued_count = 0
        self._most_pending = _MostHeld()
        self._most_queued = _MostHeld()
        self._admitted = 0  # txs admitted so far: the next PooledTx.seq

    # ---- reading ----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._by_hash)

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self._by_hash

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._by_hash)

    def __getitem__(self, tx_hash: bytes) -> Transaction:
        return self._by_hash[tx_hash].tx

    def values(self) -> Iterator[Transaction]:
        return (pooled.tx for pooled in self._by_hash.values())

    def arrival(self, tx_hash: bytes) -> float:
        return self._by_hash[tx_hash].arrival

    def held_by(self, sender: bytes) -> tuple[int, int]:
        """(pending, queued) txs of `sender` in the pool."""
        account = self._senders.get(sender)
        return (account.pending, account.queued) if account else (0, 0)

    def executable(self) -> Iterator[Transaction]:
        """Pending txs for the next block, fairly: one from each sender in turn (senders
        in the arrival order of their next tx), each sender's in nonce order, so that a
        sender with many txs delays no one else's. Valid until the pool changes."""
        runs = sorted((account for account in self._senders.values() if account.pending),
                      key=lambda a: (a.txs[a.nonce].arrival, a.txs[a.nonce].seq))
        turn = 0
        while runs:
            for account in runs:
                yield account.txs[account.nonce + turn].tx
            turn += 1
            runs = [account for account in runs if account.pending > turn]

    # ---- changing -----------------------------------------------------------------------
    def add(self, tx: Transaction, account_nonce: int, now: float) -> list[Transaction]:
        """Admit `tx` (its sender's committed nonce is `account_nonce`); returns the txs it
        displaced (the one it replaced, one evicted to make room, or pending txs that a
        filled gap pushed past account_slots). Refusals change
        nothing: DuplicateTx, NonceError (nonce too low), NonceTooHigh,
        AccountLimitExceeded, MempoolFull, ReplacementUnderpriced."""
        limits = self.limits
        if tx.hash in self._by_hash:
            raise DuplicateTx(f"already known: tx 0x{tx.hash.hex()} is in the txpool",
                              tx=tx.hash)
        if tx.nonce < account_nonce:
            check_nonce(tx, account_nonce)
        # A sender already here has account_nonce as its nonce: the owner calls
        # set_account_nonce at every commit.
        account = self._senders.get(tx.sender) or _Sender(account_nonce, {}, account_nonce)
        old = account.txs.get(tx.nonce)
        if old is not None:
            return self._replace(account, old, self._pooled(tx, now))
        executable = tx.nonce == account.pending_end
        who = f"sender 0x{tx.sender.hex()}"
        if executable and account.pending >= limits.account_slots:
            raise AccountLimitExceeded(
                f"account limit exceeded: {who} holds {account.pending} pending txs, the "
                f"account_slots limit", limit="account_slots", value=account.pending,
                sender=tx.sender)
        if not executable:
            gap = tx.nonce - account.pending_end
            if gap > limits.max_nonce_gap:
                raise NonceTooHigh(
                    f"nonce too high: nonce {tx.nonce} is {gap} past {who}'s next pending "
                    f"nonce {account.pending_end}, exceeds the max_nonce_gap limit "
                    f"{limits.max_nonce_gap}", limit="max_nonce_gap", value=gap,
                    nonce=tx.nonce, expected=account.pending_end)
            if account.queued >= limits.account_queue:
                raise AccountLimitExceeded(
                    f"account limit exceeded: {who} holds {account.queued} queued txs, the "
                    f"account_queue limit", limit="account_queue", value=account.queued,
                    sender=tx.sender)
        displaced = []
        if not executable and self.queued_count >= limits.global_queue:
            displaced = self.remove([self._victim(account, tx.sender, False, "global_queue",
                                                  self.queued_count).hash])
        elif len(self) >= limits.global_slots:
            displaced = self.remove([self._victim(account, tx.sender, executable,
                                                  "global_slots", len(self)).hash])
        return displaced + self._insert(tx.sender, self._pooled(tx, now), account_nonce)

    def remove(self, hashes: list[bytes]) -> list[Transaction]:
        """Take txs out (committed, invalid, evicted); a gap left behind turns its sender's
        later txs into queued ones. Returns those that were in the pool."""
        removed = []
        for tx_hash in hashes:
            pooled = self._by_hash.pop(tx_hash, None)
            if pooled is None:
                continue
            tx = pooled.tx
            account = self._senders[tx.sender]
            before = account.pending, account.queued
            del account.txs[tx.nonce]
            account.pending_end = min(account.pending_end, tx.nonce)
            self._recount(tx.sender, account, before)
            removed.append(tx)
        return removed

    def set_account_nonce(self, sender: bytes, nonce: int) -> list[Transaction]:
        """The sender's committed nonce is now `nonce` (a block took its txs): drop its
        txs below it, promote those that now follow it. Returns the dropped txs (and any
        pending ones past account_slots)."""
        account = self._senders.get(sender)
        if account is None or account.nonce == nonce:
            return []
        before = account.pending, account.queued
        stale = [pooled.tx for n, pooled in account.txs.items() if n < nonce]
        for tx in stale:
            del self._by_hash[tx.hash], account.txs[tx.nonce]
        # Nonces only grow, so the txs from `nonce` to the old run's end are all here.
        account.nonce, account.pending_end = nonce, max(nonce, account.pending_end)
        account.link()
        self._recount(sender, account, before)
        return stale + self._trim(sender, account)

    def expire(self, now: float) -> list[Transaction]:
        """Drop queued txs that arrived lifetime_s or more before `now`; returns them."""
        deadline = now - self.limits.lifetime_s
        old = [pooled.tx.hash for account in self._senders.values() if account.queued
               for nonce, pooled in account.txs.items()
               if nonce > account.pending_end and pooled.arrival <= deadline]
        return self.remove(old)

    # ---- internals ----------------------------------------------------------------------
    def _pooled(self, tx: Transaction, now: float) -> PooledTx:
        self._admitted += 1
        return PooledTx(tx, now, self._admitted)

    def _insert(self, sender: bytes, pooled: PooledTx, account_nonce: int,
                ) -> list[Transaction]:
        """Add a checked tx; returns the pending txs it pushed past account_slots."""
        account = self._senders.setdefault(sender, _Sender(account_nonce, {}, account_nonce))
        before = account.pending, account.queued
        account.txs[pooled.tx.nonce] = pooled
        self._by_hash[pooled.tx.hash] = pooled
        account.link()
        self._recount(sender, account, before)
        return self._trim(sender, account)

    def _trim(self, sender: bytes, account: _Sender) -> list[Transaction]:
        """Pending txs past account_slots (a filled gap may promote many at once)."""
        over = [account.txs[n].tx for n in range(account.nonce + self.limits.account_slots,
                                                 account.pending_end)]
        return self.remove([tx.hash for tx in over])

    def _replace(self, account: _Sender, old: PooledTx, new: PooledTx) -> list[Transaction]:
        """Geth's rule: a same-nonce tx replaces the pooled one only with a higher fee, by
        at least price_bump_percent, so that replacing costs the sender something."""
        bump = self.limits.price_bump_percent
        needed = max(old.tx.fee + 1, -(-old.tx.fee * (100 + bump) // 100))
        if new.tx.fee < needed:
            raise ReplacementUnderpriced(
                f"replacement transaction underpriced: fee {new.tx.fee} for nonce "
                f"{new.tx.nonce} of sender 0x{new.tx.sender.hex()}, needs at least {needed} "
                f"(the pooled tx's fee {old.tx.fee} + the price_bump_percent limit {bump}%)",
                limit="price_bump_percent", value=new.tx.fee, needed=needed)
        del self._by_hash[old.tx.hash]
        self._by_hash[new.tx.hash] = new
        account.txs[new.tx.nonce] = new
        return [old.tx]

    def _victim(self, account: _Sender, sender: bytes, executable: bool, limit: str,
                held: int) -> Transaction:
        """The tx to evict for a newcomer from `sender`: the furthest queued tx of the
        sender holding the most queued ones (any queued tx yields to a pending one), else,
        for a pending newcomer, the last pending tx of the sender holding the most; but
        only from a sender that holds more than the newcomer's sender would. MempoolFull
        when there is none."""
        most = self._most_queued.top()
        if most is not None and (executable or most[1] > account.queued + 1):
            holder = self._senders[most[0]]
            return holder.txs[max(holder.txs)].tx
        most = self._most_pending.top()
        if executable and most is not None and most[1] > account.pending + 1:
            holder = self._senders[most[0]]
            return holder.txs[holder.pending_end - 1].tx
        raise MempoolFull(f"txpool is full: it holds {held} txs, its {limit} limit, and no "
                          f"sender holds more than sender 0x{sender.hex()} would",
                          limit=limit, value=held, sender=sender)

    def _recount(self, sender: bytes, account: _Sender, before: tuple[int, int]) -> None:
        """Update the totals and indexes after `account` changed from `before` (its
        pending and queued counts then)."""
        self.pending_count += account.pending - before[0]
        self.queued_count += account.queued - before[1]
        self._most_pending.set(sender, account.pending)
        self._most_queued.set(sender, account.queued)
        if not account.txs:
            del self._senders[sender]
