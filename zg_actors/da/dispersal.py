"""Dispersal and retrieval logic without Ray: batching, routing, slices per signer.

The Disperser and DANode actors (da/actors.py) wrap these.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from zg_actors.crypto.merkle import proof_from_list
from zg_actors.da.blob import BlobHeader, EncodedBlob, verify_slice
from zg_actors.da.certificate import signed_slots
from zg_actors.da.errors import InvalidSlice, QuorumUnavailable
from zg_actors.da.params import BlobStatus, signing_threshold
from zg_actors.da.quorum import Quorum

BatchKey = tuple[int, int, int]  # (network id, epoch, quorum id)


@dataclass
class PendingBlob:
    header: BlobHeader
    blob: EncodedBlob | None  # None once its slices went to the DA nodes
    created: float  # unix s, when its DisperseBlob was accepted
    status: int = BlobStatus.PROCESSING  # as last persisted


@dataclass
class OpenBatch:
    blobs: list[PendingBlob] = field(default_factory=list)
    size: int = 0
    opened: float = 0.0


class BatchQueue:
    """Blobs grouped per (network, epoch, quorum); a batch is due when it holds
    max_blobs blobs or max_bytes bytes, or interval_s after its first blob.

    Group commit: while `max_signing` batches of a key are out for signatures, its open
    batch is not sealed by the interval and keeps filling (up to the size limits). Under
    load batches grow with the signing time, so a slow BLS backend costs fewer, bigger
    certificates instead of a backlog of small ones; at low load nothing waits."""

    def __init__(self, interval_s: float, max_blobs: int, max_bytes: int,
                 max_signing: int = 1) -> None:
        self.interval_s = interval_s
        self.max_blobs = max_blobs
        self.max_bytes = max_bytes
        self.max_signing = max_signing
        self.open: dict[BatchKey, OpenBatch] = {}
        self.signing: dict[BatchKey, int] = {}  # batches popped and not yet signed()

    def add(self, key: BatchKey, pending: PendingBlob, now: float) -> None:
        batch = self.open.setdefault(key, OpenBatch(opened=now))
        batch.blobs.append(pending)
        batch.size += pending.header.size

    def due(self, now: float) -> list[BatchKey]:
        return [key for key, b in self.open.items()
                if len(b.blobs) >= self.max_blobs or b.size >= self.max_bytes
                or (now - b.opened >= self.interval_s
                    and self.signing.get(key, 0) < self.max_signing)]

    def pop(self, key: BatchKey) -> list[PendingBlob]:
        """The batch's blobs; it counts as out for signatures until signed(key)."""
        self.signing[key] = self.signing.get(key, 0) + 1
        return self.open.pop(key).blobs

    def signed(self, key: BatchKey) -> None:
        """A batch of `key` has its signatures (or failed): the next one may seal."""
        left = self.signing.get(key, 0) - 1
        if left > 0:
            self.signing[key] = left
        else:
            self.signing.pop(key, None)

    def __len__(self) -> int:
        return sum(len(b.blobs) for b in self.open.values())


def choose_network(loads: Mapping[int, int], routed: Mapping[int, int]) -> int:
    """The least loaded network (blobs queued or awaiting their certificate); ties go to
    the one given the fewest blobs so far, so a new network starts taking work at once."""
    return min(loads, key=lambda n: (loads[n], routed.get(n, 0), n))


def slots_by_signer(quorum: Quorum) -> dict[int, list[int]]:
    """{registry signer index: [slots it holds]}: which slices go to which DA node."""
    out: dict[int, list[int]] = {}
    for slot, signer in enumerate(quorum.holders):
        out.setdefault(signer, []).append(slot)
    return out


def slices_for(blob: EncodedBlob, slots: list[int]) -> np.ndarray:
    """The rows of `slots`, one array (ready for Ray's object store); the node checks them
    against the blob's slice roots (EncodedBlob.roots_bytes), sent beside them."""
    return blob.slices[slots]


def verified_slices(header: BlobHeader, n: int,
                    served: Mapping[int, tuple[np.ndarray, list]]) -> dict[int, np.ndarray]:
    """The served slices that check against the data root; corrupt ones are dropped (the
    code decodes erasures, it cannot locate errors)."""
    good = {}
    for slot, (data, proof) in served.items():
        try:
            verify_slice(header.data_root, slot, data, proof_from_list(proof), n)
        except InvalidSlice:
            continue
        good[slot] = data
    return good


def bad_encoding_proof(good: Mapping[int, tuple[np.ndarray, list]], k: int) -> list:
    """Args of da.prove_bad_encoding: k verified slices with their proofs (index order)."""
    chosen = sorted(good.items())[:k]
    return [[slot, np.asarray(data).tobytes(), proof] for slot, (data, proof) in chosen]


# ---- which DA nodes count --------------------------------------------------------------
class NodeLiveness:
    """What a disperser believes about each DA node (by node index): live until a call to
    it fails (a batch or a probe), down until it answers one. A slow answer is not a
    failure: under load a live node may take long, and refusing blobs for that would be
    wrong."""

    def __init__(self) -> None:
        self.down: dict[int, str] = {}  # {node index: why it is believed down}

    def answered(self, node: int) -> None:
        self.down.pop(node, None)

    def failed(self, node: int, why: str) -> None:
        self.down[node] = why

    def is_live(self, node: int | None) -> bool:
        return node is not None and node not in self.down


def format_slots(slots: Sequence[int]) -> str:
    """Slot numbers as ranges ("0-3, 7, 9-10"): a reason that names 48 slots stays short."""
    ranges: list[list[int]] = []
    for slot in sorted(slots):
        if ranges and slot == ranges[-1][1] + 1:
            ranges[-1][1] = slot
        else:
            ranges.append([slot, slot])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def check_quorum_live(quorum: Quorum, live: Collection[int], why_down: Mapping[int, str],
                      where: str) -> None:
    """Raise QuorumUnavailable unless the live signers (registry indexes) hold at least
    the signing threshold of the quorum's slots: a blob accepted now could not be
    certified, so it is refused with the reason instead of acknowledged. `why_down`
    names the other members' state ({signer: reason})."""
    n = len(quorum.holders)
    held = signed_slots(quorum, list(live))
    need = signing_threshold(n)
    if held >= need:
        return
    missing = [s for s, holder in enumerate(quorum.holders) if holder not in live]
    down = "; ".join(f"signer {s}: {why_down.get(s, 'down')}"
                     for s in quorum.members if s not in live)
    raise QuorumUnavailable(f"{where}: DA nodes holding {held} of {n} slots are reachable, "
                            f"a certificate needs {need} (slots {format_slots(missing)} "
                            f"are down: {down}); retry when they are back",
                            live_slots=held, slots=n, needed=need,
                            missing_slots=format_slots(missing))


class Collected(Enum):
    WAIT = "wait"
    CERTIFY = "certify"
    INSUFFICIENT = "insufficient"


@dataclass
class SignatureTally:
    """A batch's signatures as they arrive: which signers count toward the certificate.

    Only a signer that answered with a signature counts; one that is down, refused, or
    signed wrongly is left out with its reason. The batch certifies once the counted
    signers hold the signing threshold and every asked signer has answered, or the
    deadline passed (late signers are left out then). It is INSUFFICIENT_SIGNATURES as
    soon as the threshold is out of reach; short of it past the deadline, it waits for
    the late signers that are still up (the caller drops those found down)."""

    quorum: Quorum
    waiting: set[int] = field(default_factory=set)  # asked, no answer yet
    signed: dict[int, bytes] = field(default_factory=dict)
    missed: dict[int, str] = field(default_factory=dict)  # {signer: why it is left out}

    def __post_init__(self) -> None:
        for signer in self.quorum.members:  # not asked: left out until asked
            if signer not in self.waiting:
                self.missed.setdefault(signer, "not asked")

    @property
    def needed(self) -> int:
        return signing_threshold(len(self.quorum.holders))

    def answered(self, signer: int, signature: bytes) -> None:
        self.waiting.discard(signer)
        self.missed.pop(signer, None)
        self.signed[signer] = signature

    def failed(self, signer: int, why: str) -> None:
        self.waiting.discard(signer)
        self.signed.pop(signer, None)
        self.missed[signer] = why

    def leave_out_waiting(self, why: str) -> None:
        for signer in list(self.waiting):
            self.failed(signer, why)

    @property
    def signed_slots(self) -> int:
        return signed_slots(self.quorum, list(self.signed))

    def outcome(self, past_deadline: bool = False) -> Collected:
        if self.signed_slots + signed_slots(self.quorum, list(self.waiting)) < self.needed:
            return Collected.INSUFFICIENT
        if not self.waiting or (past_deadline and self.signed_slots >= self.needed):
            return Collected.CERTIFY
        return Collected.WAIT

    def missing_reason(self) -> str:
        """Which slots did not sign, and why (the INSUFFICIENT_SIGNATURES error)."""
        missing = [s for s, holder in enumerate(self.quorum.holders)
                   if holder not in self.signed]
        why = "; ".join(f"signer {s}: {self.missed.get(s, 'no answer yet')}"
                        for s in self.quorum.members if s not in self.signed)
        return (f"{self.signed_slots} of {len(self.quorum.holders)} slots signed, need "
                f"{self.needed}; missing slots {format_slots(missing)} ({why})")


# ---- a restarted disperser -----------------------------------------------------------
class Resume(Enum):
    TRACK = "track"  # its certificate is on chain: follow it to FINALIZED
    REDISPERSE = "redisperse"  # not on chain: encode the persisted payload and batch again
    FAIL = "fail"  # nothing to resume from


def resume_action(on_chain: BlobStatus, has_payload: bool) -> tuple[Resume, str]:
    """What a restarted disperser does with a blob it acknowledged and had not finished
    (PROCESSING or CONFIRMED in its store), given the blob's status on its network."""
    if on_chain != BlobStatus.UNKNOWN:
        return Resume.TRACK, ""
    if has_payload:
        return Resume.REDISPERSE, ""
    return Resume.FAIL, "disperser restarted and holds no payload of the blob to resume it"
