"""One validator's copy of a network: its LMDB store, mempool, blocks and state.

No Ray here: the Validator actor (chain/validator_actor.py) drives a ChainNode with
consensus decisions, timers and messages.  Everything the node acknowledges
(accepted txs, signed votes, committed blocks) is in LMDB before the call
that acknowledges it returns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zg_actors.chain.block import (
    PRECOMMIT,
    ZERO_HASH,
    Block,
    CommitCertificate,
    Header,
    InvalidBlock,
    make_bitmap,
    proposal_sign_bytes,
    tx_root,
    verify_certificate,
    vote_sign_bytes,
)
from zg_actors.chain.execution import (
    ChainParams,
    ExecutionResult,
    StateMachine,
    state_root_after,
)
from zg_actors.chain.modules import token
from zg_actors.chain.modules.base import BlockInfo, Receipt
from zg_actors.chain.tx import Transaction, TxError, check_tx_batch, decode_tx, make_tx
from zg_actors.chain.txpool import TxPool
from zg_actors.chain.validator_set import ValidatorSet, set_changes
from zg_actors.config import TxPoolConfig
from zg_actors.crypto import bls
from zg_actors.crypto.accounts import Account
from zg_actors.crypto.encoding import EncodingError, as_bytes, as_int, as_list, decode, encode
from zg_actors.crypto.keccak import keccak256
from zg_actors.crypto.merkle import merkle_levels, proof_from_levels
from zg_actors.errors import NotFound, Unavailable
from zg_actors.evm import params as evm_params
from zg_actors.staking.ledger import BurnProof
from zg_actors.store import U64_BYTES, Store, from_u64, u64
from zg_actors.store.overlay import cached_reads

DBS = ("meta", "blocks", "certs", "receipts", "state", "mempool", "signed", "vsets",
       "history")
MAX_FUTURE_DRIFT_MS = 10_000  # a proposal's time may run ahead of ours by this much

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignedProposal:
    """A proposal as this validator signed (and sent) it."""

    block: Block
    pol_round: int
    signature: bytes


@dataclass(frozen=True)
class SignedVote:
    """A vote as this validator signed (and sent) it; block_hash b"" is nil."""

    block_hash: bytes
    signature: bytes


@dataclass(frozen=True)
class Lock:
    """The block this validator last precommitted at a height, and in which round:
    Tendermint's lock, which must survive a crash."""

    round: int
    block: Block


@dataclass
class Committed:
    height: int
    block_hash: bytes
    state_root: bytes
    time_ms: int
    staking_tick: int


# The "signed" sub-database: what this validator signed at a height it has not committed
# yet (its votes, its proposals, the last round it voted in, its lock), so that after a
# crash it neither signs a second value for a step or a round nor forgets its lock.
# Committing a height ends those duties there, so the commit deletes that height's
# records (the store stays a few records long instead of growing at every height).
ROUND_PREFIX, LOCK_PREFIX, PROPOSAL_PREFIX = b"round/", b"lock/", b"proposal/"


@dataclass(frozen=True)
class EvmCommit:
    """What a committed block did in its network's EVM (the EVM metrics record it)."""

    txs: list[tuple[int, bool]]  # (EIP-2718 tx type, receipt status) of each EVM tx
    gas_used: int  # by the block's EVM txs
    gas_limit: int  # of a block
    base_fee: int  # of the block, wei per gas


def vote_key(height: int, round_: int, vote_type: int) -> bytes:
    return encode([height, round_, vote_type])


def round_key(height: int) -> bytes:
    return ROUND_PREFIX + u64(height)


def lock_key(height: int) -> bytes:
    return LOCK_PREFIX + u64(height)


def proposal_key(height: int, round_: int) -> bytes:
    return PROPOSAL_PREFIX + u64(height) + round_.to_bytes(4, "big")


def signed_key_height(key: bytes) -> int | None:
    """The height a "signed" record is about; None for a key of no known format."""
    for prefix, tail in ((ROUND_PREFIX, 0), (LOCK_PREFIX, 0), (PROPOSAL_PREFIX, 4)):
        if key.startswith(prefix) and len(key) == len(prefix) + U64_BYTES + tail:
            return from_u64(key[len(prefix):len(prefix) + U64_BYTES])
    try:
        return as_int(as_list(decode(key), 3)[0])
    except EncodingError:  # not a vote key: leave it alone
        return None


def history_key(key: bytes, height: int) -> bytes:
    """A "history" record of `key` overwritten by block `height`: length-prefixed, so that
    one key's records sort together and apart from any longer key it is a prefix of."""
    return len(key).to_bytes(2, "big") + key + u64(height)


def _mark(value: bytes | None) -> bytes:
    return b"" if value is None else b"\x01" + value


def _unmark(stored: bytes) -> bytes | None:
    return stored[1:] if stored else None


def now_ms() -> int:
    return int(time.time() * 1000)


def encode_pooled(tx: Transaction, arrival: float) -> bytes:
    """A "mempool" record: arrival (ms) travels with the tx, so expiry survives restarts."""
    return encode([int(arrival * 1000), tx.encoded])


def decode_pooled(raw: bytes) -> tuple[Transaction, float]:
    arrival_ms, tx_raw = as_list(decode(raw), 2)
    return decode_tx(as_bytes(tx_raw)), as_int(arrival_ms) / 1000


class ChainNode:
    def __init__(self, data_dir: str | Path, params: ChainParams, machine: StateMachine,
                 genesis_set: ValidatorSet, genesis_tick: int, epoch_blocks: int,
                 map_mb: int, txpool: TxPoolConfig) -> None:
        self.params = params
        self.machine = machine
        self.epoch_blocks = epoch_blocks
        self.store = Store(data_dir, DBS, map_mb)
        self.mempool = TxPool(txpool)
        self._results: dict[bytes, ExecutionResult] = {}  # block hash -> execution
        # Block hash -> the committed state's reads its execution made (cached_reads).
        self._base_reads: dict[bytes, Callable[[bytes], bytes | None]] = {}
        # The last committed block's receipts: (height, receipts), for evm_commit.
        self._committed_receipts: tuple[int, list[Receipt]] = (-1, [])
        if self.store.get("meta", b"height") is None:
            self._write_genesis(genesis_set, genesis_tick)
        self.committed = self._load_committed()
        self.validator_set = ValidatorSet.decode(self.store.get("meta", b"vset"))
        self.next_set: ValidatorSet | None = None  # prefetched set of the next epoch
        self._reload_mempool()

    # ---- persistence --------------------------------------------------------------
    def _write_genesis(self, genesis_set: ValidatorSet, genesis_tick: int) -> None:
        overlay = self.machine.genesis(lambda key: None)
        root = keccak256(encode([b"zg-genesis", self.params.network_id, genesis_set.hash]))
        state_root = state_root_after(root, overlay)
        writes = [("state", k, v) for k, v in overlay.writes()]
        writes += [("meta", b"height", u64(0)), ("meta", b"block_hash", ZERO_HASH),
                   ("meta", b"state_root", state_root), ("meta", b"time_ms", u64(0)),
                   ("meta", b"staking_tick", u64(genesis_tick)),
                   ("meta", b"vset", genesis_set.encode()),
                   ("vsets", genesis_set.hash, genesis_set.encode())]
        self.store.write(writes)

    def _load_committed(self) -> Committed:
        get = self.store.get
        return Committed(from_u64(get("meta", b"height")), get("meta", b"block_hash"),
                         get("meta", b"state_root"), from_u64(get("meta", b"time_ms")),
                         from_u64(get("meta", b"staking_tick")))

    def state_get(self, key: bytes) -> bytes | None:
        return self.store.get("state", key)

    def state_get_at(self, height: int) -> Callable[[bytes], bytes | None]:
        """Reads of the state as it was after block `height` was committed (an Ethereum
        client's eth_call/eth_getBalance at a block): a key's value is the one the first
        later block overwrote, kept in "history", else today's."""
        if not 0 <= height <= self.committed.height:
            raise NotFound(f"height {height} is not committed (committed: "
                           f"{self.committed.height})", height=height)
        if height == self.committed.height:
            return self.state_get

        def get(key: bytes) -> bytes | None:
            found = next(self.store.items("history", history_key(key, height + 1),
                                          history_key(key, 0)[:-8] + b"\xff" * 9), None)
            return self.state_get(key) if found is None else _unmark(found[1])

        return get

    # ---- mempool --------------------------------------------------------------------
    def prepare_txs(self, raw_txs: list[bytes]) -> None:
        """The modules' preparation of txs about to enter the mempool (Module.prepare:
        e.g. a DA certificate's BLS check, whose result is kept), ahead of add_txs. Safe
        in a worker thread beside the event loop: it reads only committed state, changes
        nothing else, and decides nothing (add_txs checks everything). A batch that is
        not a list of bytes is refused here already (MalformedTxBatch)."""
        check_tx_batch(raw_txs)
        for raw in raw_txs:
            try:
                tx = decode_tx(raw)
            except TxError:
                continue
            self.machine.prepare(self.state_get, tx)

    def needs_preparation(self, raw_txs: list[bytes]) -> bool:
        """Whether any tx of the batch has a module that prepares it (prepare_txs is worth
        a worker thread then); decodes the txs meanwhile, so that an Ethereum tx's sender
        is recovered here, once. MalformedTxBatch for a batch that is not a list of bytes."""
        check_tx_batch(raw_txs)
        wanted = False
        for raw in raw_txs:
            try:
                wanted = self.machine.prepares(decode_tx(raw)) or wanted
            except TxError:
                continue
        return wanted

    def add_txs(self, raw_txs: list[bytes]) -> list[str | None]:
        """Check and persist txs; returns per tx None (accepted) or the error message.
        A batch that is not a list of bytes is refused whole (MalformedTxBatch)."""
        check_tx_batch(raw_txs)
        results: list[str | None] = []
        accepted: list[Transaction] = []
        displaced: list[Transaction] = []
        now = time.time()
        # A batch's txs share senders and read the same base fee: committed state, which
        # cannot change before this call returns.
        reads = cached_reads(self.state_get)
        for raw in raw_txs:
            try:
                tx = decode_tx(raw)
                displaced += self._admit(tx, now, reads)
            except TxError as exc:
                results.append(f"{type(exc).__name__}: {exc}")
                continue
            accepted.append(tx)
            results.append(None)
        writes = [("mempool", tx.hash, encode_pooled(tx, now)) for tx in accepted
                  if tx.hash in self.mempool]
        writes += [("mempool", tx.hash, None) for tx in displaced]
        if writes:
            self.store.write(writes)
        return results

    def _admit(self, tx: Transaction, arrival: float,
               get: Callable[[bytes], bytes | None] | None = None) -> list[Transaction]:
        """Entry checks, then the txpool's limits; returns the txs the pool let go for it.
        `get` reads committed state (state_get if None)."""
        get = get or self.state_get
        self.check_entry(tx, get)
        return self.mempool.add(tx, self.machine.account_nonce(get, tx.sender), arrival)

    def check_entry(self, tx: Transaction,
                    get: Callable[[bytes], bytes | None] | None = None) -> None:
        """What a tx must pass before the txpool weighs it: the stateless checks, a
        method its module has (else it would only burn the sender's nonce), and for an
        Ethereum tx the funds for gas * price + value."""
        get = get or self.state_get
        self.machine.check_stateless(tx)
        self.machine.check_method(tx)
        self.machine.check_account(get, tx)
        self.machine.prepare(get, tx)

    def _reload_mempool(self) -> None:
        """Re-admit the persisted txs, oldest first, through the current entry checks and
        limits (the config may have changed, blocks committed them, queued ones expired);
        what fails is deleted from the store."""
        records: list[tuple[float, int, bytes, Transaction]] = []
        dropped: list[bytes] = []
        for key, raw in self.store.items("mempool"):
            try:
                tx, arrival = decode_pooled(raw)
            except (EncodingError, TxError):
                dropped.append(key)
                continue
            records.append((arrival, tx.nonce, key, tx))
        # Oldest first; a sender's txs of one batch share an arrival: lower nonces first.
        for arrival, _, _, tx in sorted(records, key=lambda r: r[:3]):
            try:
                dropped += [t.hash for t in self._admit(tx, arrival)]
            except TxError:
                dropped.append(tx.hash)
        dropped += [tx.hash for tx in self.mempool.expire(time.time())]
        if dropped:
            self.store.write([("mempool", key, None) for key in dropped])
            log.info("mempool reload: kept %d stored txs, dropped %d (entry checks, txpool "
                     "limits, expiry)", len(self.mempool), len(dropped))

    # ---- blocks ---------------------------------------------------------------------
    def is_epoch_boundary(self, height: int) -> bool:
        return height % self.epoch_blocks == 0

    def build_block(self, round_: int, proposer: bytes, last_commit: CommitCertificate | None,
                    staking_tick: int, budget_s: float | None = None) -> Block:
        """The next block from the mempool; with `budget_s`, no tx is added once that many
        seconds went into building it (at least one tx goes in)."""
        height = self.committed.height + 1
        time_ms = max(now_ms(), self.committed.time_ms + 1)
        deadline = None if budget_s is None else time.monotonic() + budget_s
        reads = cached_reads(self.state_get)
        included, rejected, result = self.machine.build_block(
            reads, BlockInfo(self.params.network_id, height, time_ms, proposer,
                                      self.committed.block_hash),
            self.mempool.executable(), self.committed.state_root,
            None if deadline is None else lambda: time.monotonic() >= deadline)
        self._drop([tx.hash for tx, _ in rejected])
        header = Header(self.params.network_id, height, round_, time_ms,
                        self.committed.block_hash, proposer, tx_root(included),
                        result.receipt_root, result.state_root, self.validator_set.hash,
                        last_commit.hash if last_commit else ZERO_HASH,
                        staking_tick if self.is_epoch_boundary(height)
                        else self.committed.staking_tick)
        block = Block(header, tuple(included), last_commit)
        self._results[block.hash] = result
        self._base_reads[block.hash] = reads
        return block

    def validate_block(self, block: Block, proposer_of_round: bytes) -> None:
        """Raise InvalidBlock (or a TxError) unless `block` may be committed next."""
        header = block.header
        c = self.committed
        expected = (self.params.network_id, c.height + 1, c.block_hash, self.validator_set.hash)
        got = (header.network_id, header.height, header.prev_hash, header.validator_set_hash)
        if got != expected:
            raise InvalidBlock("block does not extend our chain (network, height, parent, "
                               "validator set)", expected=repr(expected), got=repr(got))
        if header.proposer != proposer_of_round:
            raise InvalidBlock("block proposer is not the proposer of its round",
                               proposer=header.proposer, expected=proposer_of_round)
        if not c.time_ms < header.time_ms <= now_ms() + MAX_FUTURE_DRIFT_MS:
            raise InvalidBlock(f"block time {header.time_ms} out of range", time=header.time_ms)
        if len(block.txs) > self.params.max_block_txs:
            raise InvalidBlock(f"{len(block.txs)} txs exceed the limit "
                               f"{self.params.max_block_txs}", txs=len(block.txs))
        size = sum(tx.size for tx in block.txs)
        if size > self.params.max_block_bytes:
            raise InvalidBlock(f"{size} tx bytes exceed the limit {self.params.max_block_bytes}",
                               size=size)
        if header.tx_root != tx_root(block.txs):
            raise InvalidBlock("tx root does not match the txs", tx_root=header.tx_root)
        if self.is_epoch_boundary(header.height):
            if header.staking_tick < c.staking_tick:
                raise InvalidBlock("staking tick went backwards", tick=header.staking_tick)
        elif header.staking_tick != c.staking_tick:
            raise InvalidBlock("staking tick may change only at an epoch boundary",
                               tick=header.staking_tick)
        if c.height == 0:
            if block.last_commit is not None:
                raise InvalidBlock("height 1 has no previous commit")
        else:
            if block.last_commit is None or header.last_commit_hash != block.last_commit.hash:
                raise InvalidBlock("missing or mismatched last commit",
                                   height=header.height)
            previous_set = self.previous_set()
            verify_certificate(block.last_commit, previous_set, self.params.network_id,
                               c.height, c.block_hash)
        if block.hash not in self._results:
            reads = self._base_reads[block.hash] = cached_reads(self.state_get)
            self._results[block.hash] = self.machine.execute_block(
                reads, header, block.txs, c.state_root)
        result = self._results[block.hash]
        if (result.state_root, result.receipt_root) != (header.state_root,
                                                        header.receipt_root):
            raise InvalidBlock("state or receipt root differs from our execution",
                               state_root=header.state_root)

    def previous_set(self) -> ValidatorSet:
        """The set that signed the last committed block (before an epoch switch)."""
        raw = self.store.get("meta", b"prev_vset")
        return ValidatorSet.decode(raw) if raw else self.validator_set

    def signed_proposal(self, height: int, round_: int) -> SignedProposal | None:
        """The proposal this validator signed at (height, round_), if it signed one."""
        raw = self.store.get("signed", proposal_key(height, round_))
        if raw is None:
            return None
        pol_round, signature, block_raw = as_list(decode(raw), 3)
        return SignedProposal(Block.decode(as_bytes(block_raw)), as_int(pol_round) - 1,
                              as_bytes(signature))

    def sign_proposal(self, height: int, round_: int, pol_round: int, block: Block,
                      bls_secret: int) -> SignedProposal:
        """What to send as this validator's proposal at (height, round_): the proposal it
        signed there before, if any (after a crash it must not sign a second block for the
        same round; a proposer that does is equivocating), else `block` signed now and
        persisted (one synced write) before it is returned to be sent."""
        earlier = self.signed_proposal(height, round_)
        if earlier is not None:
            return earlier
        message = proposal_sign_bytes(self.params.network_id, height, round_, pol_round,
                                      block.hash)
        signed = SignedProposal(block, pol_round, bls.sign(bls_secret, message))
        # pol_round is -1 without a proof-of-lock: stored shifted by one, as signed.
        self.store.write([("signed", proposal_key(height, round_),
                           encode([pol_round + 1, signed.signature, block.encode()]))])
        return signed

    def signed_vote(self, height: int, round_: int, vote_type: int) -> SignedVote | None:
        """The vote this validator signed at (height, round_, vote_type), if it signed one."""
        raw = self.store.get("signed", vote_key(height, round_, vote_type))
        if raw is None:
            return None
        block_hash = raw[:32]
        return SignedVote(b"" if block_hash == ZERO_HASH else block_hash, raw[32:])

    def sign_vote(self, height: int, round_: int, vote_type: int, block_hash: bytes,
                  block: Block | None, bls_secret: int) -> SignedVote:
        """What to send as this validator's vote at (height, round_, vote_type): the vote
        it signed there before, if any (a second value for one step is a double sign, which
        C0 slashes), else `block_hash` (b"": nil) signed now.  A new vote is persisted with
        the round it was cast in and, for a precommit of `block`, the lock on it, in one
        synced write before it is returned to be sent: after a crash the validator neither
        signs another value for this step nor forgets its lock."""
        earlier = self.signed_vote(height, round_, vote_type)
        if earlier is not None:
            return earlier
        message = vote_sign_bytes(self.params.network_id, height, round_, vote_type,
                                  block_hash)
        signed = SignedVote(block_hash, bls.sign(bls_secret, message))
        writes = [("signed", vote_key(height, round_, vote_type),
                   block_hash.ljust(32, b"\0") + signed.signature),
                  ("signed", round_key(height), round_.to_bytes(4, "big"))]
        if vote_type == PRECOMMIT and block is not None and block.hash == block_hash:
            writes.append(("signed", lock_key(height),
                           encode([round_, block_hash, block.encode()])))
        self.store.write(writes)
        return signed

    def voted_round(self, height: int) -> int:
        """The last round this validator voted in at `height` (0 before any vote): after a
        restart it resumes there instead of voting again in rounds it has left."""
        raw = self.store.get("signed", round_key(height))
        return 0 if raw is None else int.from_bytes(raw, "big")

    def restored_lock(self, height: int) -> Lock | None:
        """The lock this validator held at `height` before a restart, if any."""
        raw = self.store.get("signed", lock_key(height))
        if raw is None:
            return None
        lock_round, _, block_raw = as_list(decode(raw), 3)
        return Lock(as_int(lock_round), Block.decode(as_bytes(block_raw)))

    def make_certificate(self, height: int, round_: int, block_hash: bytes,
                         votes: list[tuple[int, bytes]]) -> CommitCertificate:
        """Aggregate (validator index, precommit signature) pairs into a certificate."""
        indexes = sorted(i for i, _ in votes)
        signature = bls.aggregate([sig for _, sig in sorted(votes)])
        return CommitCertificate(self.params.network_id, height, round_, block_hash,
                                 make_bitmap(indexes, len(self.validator_set)), signature)

    def commit(self, block: Block, cert: CommitCertificate) -> list[float]:
        """Persist block, certificate, receipts and state in one LMDB transaction; returns
        the commit latencies of its txs that passed through this mempool."""
        result = self._results.get(block.hash)
        if result is None:
            result = self.machine.execute_block(self.state_get, block.header, block.txs,
                                                self.committed.state_root)
        header = block.header
        if result.state_root != header.state_root:
            raise InvalidBlock("state root differs from our execution at commit",
                               height=header.height)
        height_key = u64(header.height)
        state_writes = result.overlay.writes()
        writes = [("state", k, v) for k, v in state_writes]
        # What each key held before this block, for reads at older heights (state_get_at);
        # the block's execution read most of them already.
        before = self._base_reads.get(block.hash, self.state_get)
        writes += [("history", history_key(k, header.height), _mark(before(k)))
                   for k, _ in state_writes]
        writes += [("blocks", height_key, block.encode()), ("certs", height_key, cert.encode()),
                   ("receipts", height_key, encode([r.encode() for r in result.receipts])),
                   ("meta", b"height", height_key), ("meta", b"block_hash", block.hash),
                   ("meta", b"state_root", header.state_root),
                   ("meta", b"time_ms", u64(header.time_ms)),
                   ("meta", b"staking_tick", u64(header.staking_tick)),
                   ("meta", b"prev_vset", self.validator_set.encode())]
        switch = self.is_epoch_boundary(header.height) and set_changes(
            self.committed.staking_tick, header.staking_tick)
        if switch and self.next_set is None:
            raise Unavailable(f"the validator set at C0 tick {header.staking_tick}, which "
                              f"block {header.height} switches to, is not known here",
                              height=header.height, tick=header.staking_tick)
        if switch:
            writes += [("meta", b"vset", self.next_set.encode()),
                       ("vsets", self.next_set.hash, self.next_set.encode())]
        writes += [("mempool", tx.hash, None) for tx in block.txs if tx.hash in self.mempool]
        writes += [("signed", key, None) for key in self.store.keys("signed")
                   if (at := signed_key_height(key)) is not None and at <= header.height]
        self.store.write(writes)
        self.committed = Committed(header.height, block.hash, header.state_root,
                                   header.time_ms, header.staking_tick)
        if switch:
            self.validator_set = self.next_set
        if self.is_epoch_boundary(header.height):
            self.next_set = None
        self._results.clear()
        self._base_reads.clear()
        self._committed_receipts = (header.height, result.receipts)
        now = time.time()
        latencies = [now - self.mempool.arrival(tx.hash) for tx in block.txs
                     if tx.hash in self.mempool]
        self.mempool.remove([tx.hash for tx in block.txs])
        # The block moved its senders' nonces: their txs below are stale, later ones may be
        # pending now. Deleted in a second write: a crash before it leaves txs that the
        # reload's nonce check drops.
        stale = [tx.hash for sender in {tx.sender for tx in block.txs}
                 for tx in self.mempool.set_account_nonce(
                     sender, self.machine.account_nonce(self.state_get, sender))]
        self._drop(stale + [tx.hash for tx in self.mempool.expire(now)])
        return latencies

    def _drop(self, hashes: list[bytes]) -> None:
        """Take txs out of the pool and the store."""
        self.mempool.remove(hashes)
        if hashes:
            self.store.write([("mempool", h, None) for h in hashes])

    # ---- history, sync, proofs ------------------------------------------------------
    def block_at(self, height: int) -> tuple[bytes, bytes] | None:
        block = self.store.get("blocks", u64(height))
        cert = self.store.get("certs", u64(height))
        return (block, cert) if block and cert else None

    def certificate_at(self, height: int) -> CommitCertificate | None:
        raw = self.store.get("certs", u64(height))
        return CommitCertificate.decode(raw) if raw else None

    def blocks_range(self, start: int, limit: int) -> list[tuple[bytes, bytes]]:
        out = []
        for height in range(start, min(start + limit, self.committed.height + 1)):
            item = self.block_at(height)
            if item is None:
                break
            out.append(item)
        return out

    def apply_synced(self, block_raw: bytes, cert_raw: bytes) -> Block:
        """Apply a committed block fetched from a peer, after checking its certificate."""
        block = Block.decode(block_raw)
        cert = CommitCertificate.decode(cert_raw)
        verify_certificate(cert, self.validator_set, self.params.network_id,
                           self.committed.height + 1, block.hash)
        if block.header.prev_hash != self.committed.block_hash:
            raise InvalidBlock("synced block does not extend our chain",
                               height=block.header.height)
        self.commit(block, cert)
        return block

    def receipts_at(self, height: int) -> list[bytes]:
        raw = self.store.get("receipts", u64(height))
        return [as_bytes(r) for r in as_list(decode(raw))] if raw else []

    def evm_commit(self, block: Block) -> EvmCommit | None:
        """The EVM figures of committed `block` (None where the network runs no EVM): its
        EVM txs' types and receipt statuses, its gas and base fee."""
        if evm_params.MODULE not in self.machine.modules:
            return None
        gas = self.machine.query(self.state_get, evm_params.MODULE, "block_gas",
                                 (block.height,))
        if gas is None:
            return None
        txs = []
        if any(tx.eth is not None for tx in block.txs):
            height, receipts = self._committed_receipts
            if height == block.height:  # receipt 0 is the block's own
                oks = [receipt.ok for receipt in receipts[1:]]
            else:
                oks = [as_int(as_list(decode(raw))[1]) == 1
                       for raw in self.receipts_at(block.height)[1:]]
            txs = [(evm_params.LEGACY_TX_TYPE if tx.eth.type_id is None else tx.eth.type_id,
                    ok) for tx, ok in zip(block.txs, oks, strict=True) if tx.eth is not None]
        return EvmCommit(txs, gas["gas_used"], gas["gas_limit"], gas["base_fee"])

    def burns_in(self, height: int) -> list[BurnProof]:
        """Burn proofs for every successful token burn committed at `height`."""
        item = self.block_at(height)
        if item is None:
            return []
        block = Block.decode(item[0])
        burns = [i for i, tx in enumerate(block.txs)
                 if (tx.module, tx.method) == ("token", "burn")]
        if not burns:
            return []
        receipts = self.receipts_at(height)
        tx_levels = merkle_levels([tx.hash for tx in block.txs])
        receipt_levels = merkle_levels([keccak256(r) for r in receipts])
        proofs = []
        for i in burns:
            if as_int(as_list(decode(receipts[i + 1]))[1]) != 1:
                continue  # a failed burn destroyed nothing
            proofs.append(BurnProof(
                block.header.encode(), item[1], block.txs[i].encoded, i, len(block.txs),
                proof_from_levels(tx_levels, i).to_list(), receipts[i + 1],
                proof_from_levels(receipt_levels, i + 1).to_list()))
        return proofs

    def burns_from(self, height: int, limit: int) -> list[tuple[int, BurnProof]]:
        """Burn proofs of the committed heights [height, height + limit)."""
        top = min(self.committed.height, height + limit - 1)
        return [(h, proof) for h in range(height, top + 1) for proof in self.burns_in(h)]

    def reward_burn(self, account: Account, threshold: int) -> Transaction | None:
        """The tx that burns `account`'s balance here for the bridge to mint on C0, once it
        reaches `threshold`; None below it or while its previous burn is pending."""
        address = account.address
        balance = self.balance(address)
        if balance < threshold:
            return None
        if any(tx.sender == address for tx in self.mempool.values()):
            return None
        nonce = self.machine.account_nonce(self.state_get, address)
        return make_tx(account, self.params.network_id, nonce, token.MODULE, "burn",
                       [balance, address], 0)

    def balance(self, address: bytes) -> int:
        return self.machine.query(self.state_get, token.MODULE, "balance", (address,))

    def close(self) -> None:
        self.store.close()
