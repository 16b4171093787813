"""The chaos audit (pure): what the clients were acknowledged against what the cluster gives
back after the run, as Jepsen checks a history.

The `Ledger` records every acknowledgement a client received: a tx admitted by a validator
(persisted in its txpool before the answer), a file FINALIZED, a blob FINALIZED, a compute
answer with its signed receipt. The `Readback`, gathered after a settle period, holds what
the cluster holds: every validator's committed block hashes and tx hashes, what each file
and blob downloads as, the settled traces, C0's supply check, the heights at the end.
`audit` returns lost / duplicated / unreadable per kind and the invariants:

- every acknowledged tx committed exactly once;
- every FINALIZED file downloads byte-identical;
- every FINALIZED blob retrieves byte-identical;
- every signed receipt paid exactly once;
- C0's supply invariants hold;
- no two different blocks committed at one height on any network (all validators compared);
- every network commits within a bound at the end;
- every acknowledged KV tx (its flow entry FINALIZED) replayed by every KV node with a
  recorded result, its key written by that tx alone (a second replay of the write would
  give the key a later version), and its value readable at its version where the result
  is Commit;
- every acknowledged EVM tx (its hash answered by eth_sendRawTransaction) committed once,
  with a receipt in a committed block, and its re-send refused as already known or as
  nonce too low, not taken as a second tx.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from zg_actors.crypto.keccak import keccak256

KINDS = ("tx", "file", "blob", "receipt", "kv", "evm")  # what an acknowledgement can be
COMMIT = "Commit"  # a KV tx's result when its writes took effect (storage/kv/replay.py)
# What a re-send of an admitted EVM tx must answer (Geth's words, the txpool's errors).
RESEND_REFUSALS = ("already known", "nonce too low")

ReceiptKey = tuple[bytes, bytes, int]  # (provider, user, request nonce)


@dataclass(frozen=True)
class KvWrite:
    """An acknowledged KV tx: its one write (stream, key) and the written value's digest."""

    stream_id: bytes
    key: bytes
    value: bytes  # digest


@dataclass(frozen=True)
class KvRead:
    """What the KV nodes give back for one KV tx: each node's recorded result (None: no
    result), the key's latest version, and the value's digest at the tx's own version
    (None: not read)."""

    results: tuple[str | None, ...]
    latest_version: int | None
    value: bytes | None


@dataclass(frozen=True)
class EvmRead:
    """What a network's Ethereum JSON-RPC gives back for one EVM tx: its receipt's block
    (hash, number; None: no receipt) and what a re-send of the same raw tx answered."""

    block: tuple[bytes, int] | None
    resend: str


def digest(data: bytes) -> bytes:
    """What the ledger keeps of acknowledged bytes: their keccak-256."""
    return keccak256(data)


@dataclass
class Ledger:
    """Every acknowledgement the clients received; safe to share between client threads."""

    txs: dict[int, set[bytes]] = field(default_factory=dict)  # {network: {tx hash}}
    files: dict[bytes, bytes] = field(default_factory=dict)  # {file id: digest}
    blobs: dict[bytes, bytes] = field(default_factory=dict)  # {request id: digest}
    receipts: set[ReceiptKey] = field(default_factory=set)
    kv: dict[int, KvWrite] = field(default_factory=dict)  # {tx_seq: its write}
    evm: dict[int, set[bytes]] = field(default_factory=dict)  # {network: {tx hash}}
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def tx(self, network_id: int, tx_hash: bytes) -> None:
        with self._lock:
            self.txs.setdefault(network_id, set()).add(tx_hash)

    def file(self, file_id: bytes, data: bytes) -> None:
        with self._lock:
            self.files[file_id] = digest(data)

    def blob(self, request_id: bytes, data: bytes) -> None:
        with self._lock:
            self.blobs[request_id] = digest(data)

    def receipt(self, provider: bytes, user: bytes, nonce: int) -> None:
        with self._lock:
            self.receipts.add((provider, user, nonce))

    def kv_tx(self, tx_seq: int, stream_id: bytes, key: bytes, value: bytes) -> None:
        with self._lock:
            self.kv[tx_seq] = KvWrite(stream_id, key, digest(value))

    def evm_tx(self, network_id: int, tx_hash: bytes) -> None:
        with self._lock:
            self.evm.setdefault(network_id, set()).add(tx_hash)

    def counts(self) -> dict[str, int]:
        return {"tx": sum(len(t) for t in self.txs.values()), "file": len(self.files),
                "blob": len(self.blobs), "receipt": len(self.receipts), "kv": len(self.kv),
                "evm": sum(len(t) for t in self.evm.values())}


@dataclass(frozen=True)
class ChainCopy:
    """One validator's committed chain: block hash per height, tx hashes per height."""

    validator: str
    block_hashes: dict[int, bytes]
    tx_hashes: dict[int, tuple[bytes, ...]]


@dataclass
class Readback:
    """What the cluster gives back after the settle period."""

    chains: dict[int, list[ChainCopy]] = field(default_factory=dict)  # {network: copies}
    files: dict[bytes, bytes | None] = field(default_factory=dict)  # {id: digest | None}
    blobs: dict[bytes, bytes | None] = field(default_factory=dict)
    paid: list[ReceiptKey] = field(default_factory=list)  # one entry per accepted trace
    supply_ok: bool = True
    supply_problems: list[str] = field(default_factory=list)
    live: dict[int, bool] = field(default_factory=dict)  # {network: committed in the bound}
    retired: set[int] = field(default_factory=set)  # networks retired on purpose
    kv: dict[int, KvRead] = field(default_factory=dict)  # {tx_seq: what the nodes give}
    evm: dict[bytes, EvmRead] = field(default_factory=dict)  # {tx hash: receipt, re-send}


@dataclass
class Finding:
    ok: bool
    detail: str = ""

    def to_dict(self) -> dict:
        return {"ok": self.ok, "detail": self.detail}


@dataclass
class AuditResult:
    acknowledged: dict[str, int]
    lost: dict[str, int]
    duplicated: dict[str, int]
    unreadable: dict[str, int]
    invariants: dict[str, Finding]
    examples: dict[str, list[str]]  # a few offending ids per problem, for the report

    @property
    def ok(self) -> bool:
        return (not any(self.lost.values()) and not any(self.duplicated.values())
                and not any(self.unreadable.values())
                and all(f.ok for f in self.invariants.values()))

    def to_dict(self) -> dict:
        return {"ok": self.ok, "acknowledged": self.acknowledged, "lost": self.lost,
                "duplicated": self.duplicated, "unreadable": self.unreadable,
                "invariants": {k: v.to_dict() for k, v in self.invariants.items()},
                "examples": self.examples}


EXAMPLES = 5  # offending ids the report names per problem


def find_forks(copies: list[ChainCopy]) -> dict[int, set[bytes]]:
    """The heights at which validators committed different blocks: {height: hashes}."""
    seen: dict[int, set[bytes]] = {}
    for copy in copies:
        for height, block_hash in copy.block_hashes.items():
            seen.setdefault(height, set()).add(block_hash)
    return {h: hashes for h, hashes in sorted(seen.items()) if len(hashes) > 1}


def committed_tx_counts(copies: list[ChainCopy]) -> Counter[bytes]:
    """How often each tx hash is committed in the network's chain: every height read from
    the first copy that has it (copies agree where there is no fork)."""
    counts: Counter[bytes] = Counter()
    done: set[int] = set()
    for copy in copies:
        for height, hashes in copy.tx_hashes.items():
            if height not in done:
                done.add(height)
                counts.update(hashes)
    return counts


def _hex(value: object) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, tuple):
        return "/".join(_hex(v) for v in value)
    return str(value)


def audit(ledger: Ledger, readback: Readback) -> AuditResult:
    """Check every acknowledgement against the readback, and the cluster's invariants."""
    lost = dict.fromkeys(KINDS, 0)
    duplicated = dict.fromkeys(KINDS, 0)
    unreadable = dict.fromkeys(KINDS, 0)
    examples: dict[str, list[str]] = {}

    def note(problem: str, kind: str, item: object) -> None:
        listed = examples.setdefault(f"{problem}_{kind}", [])
        if len(listed) < EXAMPLES:
            listed.append(_hex(item))

    forks: dict[int, dict[int, set[bytes]]] = {}
    for network_id, acked in sorted(ledger.txs.items()):
        copies = readback.chains.get(network_id, [])
        if forks_here := find_forks(copies):
            forks[network_id] = forks_here
        counts = committed_tx_counts(copies)
        for tx_hash in sorted(acked):
            if counts[tx_hash] == 0:
                lost["tx"] += 1
                note("lost", "tx", (network_id, tx_hash))
            elif counts[tx_hash] > 1:
                duplicated["tx"] += 1
                note("duplicated", "tx", (network_id, tx_hash))
    for network_id, copies in readback.chains.items():
        if network_id not in ledger.txs and (forks_here := find_forks(copies)):
            forks[network_id] = forks_here
    differ = {"file": 0, "blob": 0}  # of the unreadable: read back, other bytes
    for kind, acked, read in (("file", ledger.files, readback.files),
                              ("blob", ledger.blobs, readback.blobs)):
        for item_id, expected in sorted(acked.items()):
            if item_id not in read:
                lost[kind] += 1
                note("lost", kind, item_id)
            elif read[item_id] != expected:
                unreadable[kind] += 1
                differ[kind] += read[item_id] is not None
                note("unreadable", kind, item_id)
    paid = Counter(readback.paid)
    for key in sorted(ledger.receipts):
        if paid[key] == 0:
            lost["receipt"] += 1
            note("lost", "receipt", key)
        elif paid[key] > 1:
            duplicated["receipt"] += 1
            note("duplicated", "receipt", key)
    audit_kv(ledger, readback, lost, duplicated, unreadable, note)
    audit_evm(ledger, readback, lost, duplicated, unreadable, note)
    dead = sorted(n for n, ok in readback.live.items() if not ok and n not in readback.retired)
    fork_text = "; ".join(f"network {n} height {h}: {len(hashes)} blocks"
                          for n, heights in forks.items() for h, hashes in heights.items())
    invariants = {
        "txs_committed_once": Finding(lost["tx"] == 0 and duplicated["tx"] == 0,
                                      f"{lost['tx']} lost, {duplicated['tx']} duplicated"),
        "files_byte_identical": Finding(lost["file"] == 0 and unreadable["file"] == 0,
                                        f"{lost['file']} lost, {unreadable['file']} "
                                        f"unreadable ({differ['file']} other bytes)"),
        "blobs_byte_identical": Finding(lost["blob"] == 0 and unreadable["blob"] == 0,
                                        f"{lost['blob']} lost, {unreadable['blob']} "
                                        f"unreadable ({differ['blob']} other bytes)"),
        "receipts_paid_once": Finding(lost["receipt"] == 0 and duplicated["receipt"] == 0,
                                      f"{lost['receipt']} unpaid, "
                                      f"{duplicated['receipt']} paid twice"),
        "kv_replayed_once": Finding(
            lost["kv"] == 0 and duplicated["kv"] == 0 and unreadable["kv"] == 0,
            f"{lost['kv']} without a result on every KV node, {duplicated['kv']} written "
            f"again, {unreadable['kv']} unreadable at their version"),
        "evm_committed_once": Finding(
            lost["evm"] == 0 and duplicated["evm"] == 0 and unreadable["evm"] == 0,
            f"{lost['evm']} without a committed receipt, {duplicated['evm']} committed "
            f"twice or re-sent as new, {unreadable['evm']} receipts outside the chain"),
        "c0_supply": Finding(readback.supply_ok, "; ".join(readback.supply_problems)),
        "no_fork": Finding(not forks, fork_text or
                           f"{sum(len(c) for c in readback.chains.values())} validator "
                           f"stores compared"),
        "networks_live": Finding(not dead, f"not committing at the end: {dead}" if dead
                                 else f"{len(readback.live)} network(s) committing"),
    }
    return AuditResult(ledger.counts(), lost, duplicated, unreadable, invariants, examples)


Note = Callable[[str, str, object], None]


def audit_kv(ledger: Ledger, readback: Readback, lost: dict[str, int],
             duplicated: dict[str, int], unreadable: dict[str, int], note: Note) -> None:
    """Each acknowledged KV tx: a result on every KV node (else lost); its key last written
    at its own tx_seq (each KV tx of the load writes a key of its own, so a later version
    means the write was replayed again); its value at its version where it committed."""
    for tx_seq, write in sorted(ledger.kv.items()):
        read = readback.kv.get(tx_seq)
        if read is None or not read.results or None in read.results:
            lost["kv"] += 1
            note("lost", "kv", tx_seq)
        elif read.results[0] == COMMIT and read.latest_version != tx_seq:
            duplicated["kv"] += 1
            note("duplicated", "kv", tx_seq)
        elif len(set(read.results)) > 1 or (read.results[0] == COMMIT
                                            and read.value != write.value):
            unreadable["kv"] += 1
            note("unreadable", "kv", tx_seq)


def audit_evm(ledger: Ledger, readback: Readback, lost: dict[str, int],
              duplicated: dict[str, int], unreadable: dict[str, int], note: Note) -> None:
    """Each acknowledged EVM tx hash: committed once in its network's chain with a receipt
    (else lost), not twice nor taken again when re-sent (duplicated), its receipt's block
    the one committed at that height (else unreadable)."""
    for network_id, acked in sorted(ledger.evm.items()):
        copies = readback.chains.get(network_id, [])
        counts = committed_tx_counts(copies)
        committed = {h: b for c in copies for h, b in c.block_hashes.items()}
        for tx_hash in sorted(acked):
            read = readback.evm.get(tx_hash)
            if counts[tx_hash] == 0 or read is None or read.block is None:
                lost["evm"] += 1
                note("lost", "evm", (network_id, tx_hash))
            elif counts[tx_hash] > 1 or not any(r in read.resend for r in RESEND_REFUSALS):
                duplicated["evm"] += 1
                note("duplicated", "evm", (network_id, tx_hash))
            elif committed.get(read.block[1]) != read.block[0]:
                unreadable["evm"] += 1
                note("unreadable", "evm", (network_id, tx_hash))
