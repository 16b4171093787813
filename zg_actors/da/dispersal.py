"""Dispersal and retrieval logic without Ray: batching, routing and nonces, slices per
signer, signature tallies, what a restarted disperser resumes.

The Disperser actor (da/disperser_actor.py) wraps these.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from zg_actors.crypto.merkle import proof_from_list
from zg_actors.da.blob import BlobHeader, EncodedBlob, commit_slices, verify_slice
from zg_actors.da.certificate import signed_slots
from zg_actors.da.errors import InvalidSlice, QuorumUnavailable
from zg_actors.da.params import SECTOR_BYTES, BlobStatus, signing_threshold
from zg_actors.da.quorum import EpochRegistry, Quorum
from zg_actors.errors import InvalidInput, Unavailable, ZgError

log = logging.getLogger(__name__)

BatchKey = tuple[int, int, int]  # (network id, epoch, quorum id)
GROUP_ENCODE_MAX_BYTES = 1 << 20  # blobs up to 1 MiB that arrive together: one encoder call


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

    def set_limits(self, interval_s: float | None = None, max_blobs: int | None = None,
                   max_bytes: int | None = None) -> dict:
        """Seal batches at these limits from now on (None keeps one); InvalidInput names a
        limit that is not > 0, and changes nothing."""
        for name, value in (("interval_s", interval_s), ("max_blobs", max_blobs),
                            ("max_bytes", max_bytes)):
            if value is not None and value <= 0:
                raise InvalidInput(f"batch {name} must be > 0, got {value}", **{name: value})
        self.interval_s = self.interval_s if interval_s is None else interval_s
        self.max_blobs = self.max_blobs if max_blobs is None else int(max_blobs)
        self.max_bytes = self.max_bytes if max_bytes is None else int(max_bytes)
        return {"interval_s": self.interval_s, "max_blobs": self.max_blobs,
                "max_bytes": self.max_bytes}

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


class Routes:
    """Where a disperser sends blobs and certificates: the networks that take them, each
    with the next nonce of the disperser's account there (certificates, epoch postings
    and deposits share that sequence) and its load (blobs queued or awaiting their
    certificate)."""

    def __init__(self) -> None:
        self.next_nonce: dict[int, int] = {}  # {network id: next nonce of our account}
        self.load: dict[int, int] = {}  # {network id: blobs queued or awaiting certificate}
        self.routed: dict[int, int] = {}  # {network id: blobs routed there so far}
        self.topped_up: dict[int, int] = {}  # {network id: nonce of the last deposit top-up}
        self._quorum_turn = 0

    @property
    def networks(self) -> list[int]:
        """The networks that take certificates now, in id order."""
        return sorted(self.next_nonce)

    def __contains__(self, network_id: int) -> bool:
        return network_id in self.next_nonce

    def open(self, network_id: int, nonce: int) -> None:
        """The network takes our certificates from now on; `nonce` is our next one there."""
        self.next_nonce[network_id] = nonce
        self.load.setdefault(network_id, 0)

    def close(self, network_id: int) -> None:
        """The network was retired (or is being prepared again): route nothing new to it."""
        self.next_nonce.pop(network_id, None)

    def in_flight(self) -> int:
        return sum(self.load.values())

    def route(self) -> int:
        """Pick the network for one blob (choose_network) and count it there at once, so
        that the blobs of one call spread over the networks. Unavailable if none takes
        certificates."""
        if not self.next_nonce:
            raise Unavailable("no consensus network takes DA certificates yet")
        network_id = choose_network({n: self.load.get(n, 0) for n in self.next_nonce},
                                    self.routed)
        self.add(network_id)
        self.routed[network_id] = self.routed.get(network_id, 0) + 1
        return network_id

    def next_quorum(self, quorums: int) -> int:
        """The quorum for the next blob: the epoch's quorums in turn. Unavailable while
        the epoch has none (at a rotation whose quorums are not posted yet)."""
        if quorums <= 0:
            raise Unavailable("the DA epoch has no quorums yet; retry after the rotation",
                              quorums=quorums)
        quorum_id = self._quorum_turn % quorums
        self._quorum_turn += 1
        return quorum_id

    def add(self, network_id: int, blobs: int = 1) -> None:
        self.load[network_id] = self.load.get(network_id, 0) + blobs

    def release(self, network_id: int, blobs: int = 1) -> None:
        """Blobs of the network that are final, failed or were never queued."""
        self.load[network_id] = max(0, self.load.get(network_id, 0) - blobs)

    def nonce(self, network_id: int) -> int:
        """Our next nonce on the network; Unavailable once it is retired."""
        nonce = self.next_nonce.get(network_id)
        if nonce is None:
            raise Unavailable(f"network {network_id} was retired", network_id=network_id)
        return nonce

    def sent(self, network_id: int, nonce: int) -> None:
        """A tx with `nonce` went in: the next one takes the nonce after it."""
        self.next_nonce[network_id] = nonce + 1



async def encode_blobs(pool: Any, blobs: Sequence[np.ndarray], k: int,
                       n: int) -> list[EncodedBlob]:
    """Encode and commit to blobs that arrived together on the encoder pool
    (erasure.actors.EncoderPool): the small ones in one call, each big one in its own.
    Slices come back with their slice roots: the encoder hashes them (the bulk of
    committing to a blob) in its own process, not on the caller's event loop."""
    small = [i for i, b in enumerate(blobs) if len(b) <= GROUP_ENCODE_MAX_BYTES]
    large = [i for i, b in enumerate(blobs) if len(b) > GROUP_ENCODE_MAX_BYTES]
    encoded = await asyncio.gather(
        pool.encode_many_with_roots_async([blobs[i] for i in small], k, n - k, SECTOR_BYTES),
        *[pool.encode_many_with_roots_async([blobs[i]], k, n - k, SECTOR_BYTES)
          for i in large])
    slices = dict(zip(small, encoded[0], strict=True))
    slices.update((i, one[0]) for i, one in zip(large, encoded[1:], strict=True))
    return [commit_slices(shards, k, len(blobs[i]), roots, root)
            for i, (shards, roots, root) in sorted(slices.items())]


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

    def live_signers(self, quorum: Quorum, registry: EpochRegistry,
                     node_of: Mapping[bytes, int]) -> set[int]:
        """The quorum's members (registry indexes) whose DA node is live; `node_of` maps
        a signer's address to its DA node index."""
        return {s for s in quorum.members
                if self.is_live(node_of.get(registry.signers[s].address))}

    def why_down(self, registry: EpochRegistry, node_of: Mapping[bytes, int]) -> dict[int, str]:
        """{registry signer: why its DA node is believed down}, for error messages."""
        why = {}
        for signer, entry in enumerate(registry.signers):
            node = node_of.get(entry.address)
            if node is None:
                why[signer] = "not a DA node of this deployment"
            elif not self.is_live(node):
                why[signer] = f"DA node {node} {self.down[node]}"
        return why


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


async def collect_signatures(waiting: Mapping[asyncio.Future, tuple[int, int]],
                             tally: SignatureTally, liveness: NodeLiveness,
                             deadline_s: float, wait_max_s: float, recheck_s: float,
                             on_failure: Callable[[int, BaseException], None]) -> None:
    """Tally a batch's signatures as they arrive ({future of store_batch: (signer, DA
    node)}); SignatureTally decides when to stop. A node whose call fails (not with a
    ZgError: that is a refusal) is down from now on (`on_failure` is told). Past
    `deadline_s`, a batch short of the threshold waits for its late signers while they
    are live (rechecked every `recheck_s`), at most `wait_max_s` in all."""
    start = time.time()
    deadline, give_up = start + deadline_s, start + wait_max_s
    pending = set(waiting)
    while pending and time.time() < give_up and \
            tally.outcome(past_deadline=time.time() >= deadline) == Collected.WAIT:
        wake = deadline if time.time() < deadline else time.time() + recheck_s
        done, pending = await asyncio.wait(pending, timeout=min(wake, give_up) - time.time(),
                                           return_when=asyncio.FIRST_COMPLETED)
        for future in done:
            signer, node = waiting[future]
            exc = future.exception()
            if exc is None:
                tally.answered(signer, future.result())
                liveness.answered(node)
                continue
            log.info("DA signer %d (node %d) refused the batch: %s", signer, node,
                     str(exc)[:200])
            if isinstance(exc, ZgError):  # it answered: up, but it refused
                tally.failed(signer, f"refused: {str(exc)[:120]}")
                continue
            on_failure(node, exc)
            liveness.failed(node, f"failed a batch ({type(exc).__name__})")
            tally.failed(signer, f"DA node {node} failed ({type(exc).__name__})")
        for future in list(pending):  # late signers a probe has since found down
            signer, node = waiting[future]
            if not liveness.is_live(node):
                pending.discard(future)
                future.cancel()
                tally.failed(signer, f"DA node {node} {liveness.down[node]}")
    for future in pending:
        future.cancel()
    tally.leave_out_waiting(
        "not waited for: the others could not reach the threshold"
        if tally.outcome() == Collected.INSUFFICIENT
        else f"no signature within {time.time() - start:.0f} s")


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
