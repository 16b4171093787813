"""Ray actors of 0G DA: DANode (one per DA signer) and Disperser; `deploy_da` starts them.

A DANode accepts a batch's slices only from a disperser with a deposit on the
batch's network, checks that they are exactly its slots of the quorum and
that every slice proves into its blob's data root, persists them in LMDB,
and only then signs the batch root (once per batch). A Disperser refuses a blob
its quorum's reachable DA nodes could not certify, persists each blob it accepts
(payload included) before answering, encodes blobs on the encoder pool, batches
them per (network, epoch, quorum), gathers the signatures that count
(dispersal.SignatureTally), aggregates them into a certificate tx on the least
loaded network, and tracks each blob to FINALIZED; restarted, it resumes the
blobs it had not finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import time
from collections import deque
from pathlib import Path
from typing import Any

import lmdb
import numpy as np
import ray

from zg_actors.chain.block import Block
from zg_actors.chain.tx import make_tx
from zg_actors.config import ZG, Config, config_from_dict
from zg_actors.crypto import bls
from zg_actors.crypto.accounts import recover_address
from zg_actors.crypto.devkeys import c0_account
from zg_actors.crypto.encoding import as_bytes, as_int, as_list, decode, encode
from zg_actors.crypto.keccak import HASH_BYTES
from zg_actors.crypto.merkle import merkle_levels, proof_from_levels
from zg_actors.da.blob import (
    BlobHeader,
    check_blob_id,
    check_size,
    commit_slices,
    slice_length,
    split_roots,
    verify_held_slices,
)
from zg_actors.da.certificate import (
    Batch,
    DACertificate,
    member_bitmap,
    verified_signatures,
)
from zg_actors.da.dispersal import (
    BatchKey,
    BatchQueue,
    Collected,
    NodeLiveness,
    PendingBlob,
    Resume,
    SignatureTally,
    check_quorum_live,
    choose_network,
    resume_action,
    slices_for,
    slots_by_signer,
    verified_slices,
)
from zg_actors.da.errors import (
    InvalidBlob,
    NotADisperser,
    Overloaded,
    UnknownBlob,
)
from zg_actors.da.keys import da_signer_identity, disperser_account
from zg_actors.da.params import (
    SECTOR_BYTES,
    BlobStatus,
)
from zg_actors.da.quorum import EpochRegistry, Quorum, epoch_message
from zg_actors.da.sampling import find_answers
from zg_actors.da.status import Status, StatusFeed
from zg_actors.errors import InvalidInput, Unavailable, ZgError
from zg_actors.runtime import kill_named
from zg_actors.staking.ledger import C0_NETWORK_ID
from zg_actors.store import Store

log = logging.getLogger(__name__)

DA_NODE_PREFIX = "zg-da-node-"
DISPERSER_PREFIX = "zg-da-disperser-"
CALL_TIMEOUT_S = 10.0  # a validator or staking call slower than this counts as failed
PROBE_INTERVAL_S = 1.0  # how often a disperser asks each DA node whether it is up
POLL_INTERVAL_S = 0.25  # status polling of certified batches
NETWORKS_REFRESH_S = 1.0  # how often a disperser looks for launched or retired networks
PRUNE_INTERVAL_S = 10.0
SAMPLE_INTERVAL_S = 2.0  # how often a DA node looks for a new sampling round
SAMPLE_RECENT_BLOBS = 16  # blobs (newest) a node scans for answers each round
GROUP_ENCODE_MAX_BYTES = 1 << 20  # blobs up to 1 MiB that arrive together: one encoder call
SAMPLE_ANSWERS_PER_ROUND = 4  # answers a node sends per round and network (0G caps 40 total)


def da_node_name(index: int) -> str:
    return f"{DA_NODE_PREFIX}{index}"


def disperser_name(index: int) -> str:
    return f"{DISPERSER_PREFIX}{index}"


class ChainView:
    """Reads a network's `da` module and sends txs through its validators (any that answers).

    Each view asks one validator first (the `prefer`-th, counting round the set), the
    others only when it fails: one view's reads see one chain (a height it waited for,
    then the state at that height; a nonce, then the tx that uses it), while views of
    different actors spread their reads over the network's validators."""

    def __init__(self, prefer: int = 0) -> None:
        self.prefer = prefer
        self._handles: dict[int, list[Any]] = {}

    async def handles(self, network_id: int) -> list[Any]:
        if network_id not in self._handles:
            manager = ray.get_actor("networks")
            found = list((await manager.validator_handles.remote(network_id)).values())
            first = self.prefer % len(found) if found else 0
            self._handles[network_id] = found[first:] + found[:first]
        return self._handles[network_id]

    def forget(self, network_id: int) -> None:
        self._handles.pop(network_id, None)

    async def _first(self, network_id: int, call: Any) -> Any:
        errors = []
        for handle in await self.handles(network_id):
            try:
                return await asyncio.wait_for(call(handle), CALL_TIMEOUT_S)
            except ZgError:
                raise
            except Exception as exc:  # a dead or restarting validator: try the next
                errors.append(str(exc)[:120])
        self.forget(network_id)
        raise Unavailable(f"no validator of network {network_id} answered: {errors[:2]}",
                          network_id=network_id)

    async def query(self, network_id: int, method: str, *args: Any) -> Any:
        return await self._first(network_id, lambda h: h.query.remote("da", method, args))

    async def wait_height(self, network_id: int, height: int, timeout_s: float) -> int:
        """The network's committed height once it reaches `height` or after `timeout_s`
        (Validator.wait_height: one call per block instead of a poll loop)."""
        return await self._first(network_id, lambda h: h.wait_height.remote(
            height, max(0.0, min(timeout_s, CALL_TIMEOUT_S / 2))))

    async def nonce(self, network_id: int, address: bytes) -> int:
        account = await self._first(network_id, lambda h: h.account.remote(address))
        return account["nonce"]

    async def submit(self, network_id: int, raw_tx: bytes) -> None:
        [error] = await self._first(network_id, lambda h: h.submit_txs.remote([raw_tx]))
        if error is not None:
            raise Unavailable(f"network {network_id} refused a DA tx: {error}",
                              network_id=network_id)


async def _epoch_quorum(chain: ChainView, cache: dict, network_id: int, epoch: int,
                        quorum_id: int) -> tuple[EpochRegistry, Quorum]:
    """The epoch's registry and quorum as the network's `da` module recorded them."""
    key = (network_id, epoch)
    if key not in cache:
        raw = await chain.query(network_id, "epoch", epoch)
        if raw is None:
            raise InvalidBlob(f"epoch {epoch} is not registered on network {network_id}",
                              epoch=epoch, network_id=network_id)
        quorums = await chain.query(network_id, "quorums", epoch)
        cache[key] = (EpochRegistry.decode(raw),
                      [Quorum(q, tuple(h)) for q, h in enumerate(quorums)])
    registry, quorums = cache[key]
    if not 0 <= quorum_id < len(quorums):
        raise InvalidBlob(f"epoch {epoch} has no quorum {quorum_id}", quorum_id=quorum_id)
    return registry, quorums[quorum_id]


# ---------------------------------------------------------------------------------------
@ray.remote(max_restarts=-1, max_task_retries=0)
class DANode:
    """One DA signer: verifies, persists and signs for its slots; serves them back."""

    def __init__(self, config_dict: dict, index: int, data_dir: str) -> None:
        self.config = config_from_dict(config_dict)
        bls.use(self.config.da.bls_backend)  # a DA process does DA work only
        self.index = index
        self.identity = da_signer_identity(self.config.devnet.key_seed, index)
        self.store = Store(Path(data_dir) / f"da-node-{index}", ["slices", "blobs", "signed"],
                           self.config.lmdb_map_mb)
        self.chain = ChainView(prefer=index + 1)  # dispersers start at the first
        self._epochs: dict = {}
        self._dispersers: set[tuple[int, bytes]] = set()
        self._pruner: asyncio.Task | None = None
        self._sampler: asyncio.Task | None = None
        self._answered_round: dict[int, int] = {}  # {network id: last round answered}
        # In-memory indexes of the "blobs" table, so that sampling and pruning do not
        # scan every stored blob: rebuilt from LMDB on first use after a (re)start.
        self._recent: dict[int, deque[tuple[BlobHeader, list[int]]]] = {}  # newest last
        self._by_age: list[tuple[int, bytes]] = []  # heap of (stored at, unix ms; blob key)
        self._indexed = False
        self.batches_signed = 0
        self.answers_sent = 0

    def _ensure_pruning(self) -> None:
        if self._pruner is None or self._pruner.done():
            loop = asyncio.get_running_loop()
            self._pruner = loop.create_task(self._prune_forever())
            self._sampler = loop.create_task(self._sample_forever())

    async def _sample_forever(self) -> None:
        while True:
            await asyncio.sleep(SAMPLE_INTERVAL_S)
            try:
                await self.sample_once()
            except Exception as exc:  # a network down or busy: try next time
                log.info("DA node %d: sampling skipped: %s", self.index, exc)

    async def sample_once(self) -> int:
        """Answer the current sampling round of each network for the most recent blobs
        this node holds; returns the answers sent."""
        self._ensure_index()
        sent = 0
        for network_id, recent in list(self._recent.items()):
            try:
                round_info = await self.chain.query(network_id, "sampling")
            except Unavailable:
                continue  # a retired network
            if round_info["round"] <= self._answered_round.get(network_id, 0):
                continue
            self._answered_round[network_id] = round_info["round"]
            answers = []
            held = ((header, slot, data, proof) for header, _ in list(recent)
                    for slot, (data, proof) in self._held(header.key).items())
            for header, slot, data, proof in held:
                for subline, sectors, proofs in find_answers(
                        round_info["seed"], round_info["target"], header.epoch,
                        header.quorum_id, header.data_root, slot, data.tobytes(),
                        SAMPLE_ANSWERS_PER_ROUND - len(answers)):
                    answers.append([header.key, slot, subline, sectors, proofs, proof])
                if len(answers) >= SAMPLE_ANSWERS_PER_ROUND:
                    break
            if answers:
                nonce = await self.chain.nonce(network_id, self.identity.address)
                for offset, args in enumerate(answers):
                    tx = make_tx(self.identity.account, network_id, nonce + offset, "da",
                                 "sample", args)
                    await self.chain.submit(network_id, tx.encoded)
                    sent += 1
        self.answers_sent += sent
        return sent

    async def _prune_forever(self) -> None:
        while True:
            await asyncio.sleep(PRUNE_INTERVAL_S)
            self.prune(time.time() - self.config.da.retention_s)

    def prune(self, before: float) -> int:
        """Delete slices of blobs stored before `before` (unix seconds): past retention."""
        self._ensure_index()
        writes: list = []
        while self._by_age and self._by_age[0][0] / 1000 < before:
            _, key = heapq.heappop(self._by_age)
            raw = self.store.get("blobs", key)
            if raw is None:
                continue
            writes += [("blobs", key, None), ("slices", key, None)]
        if writes:
            self.store.write(writes)
        return sum(1 for w in writes if w[0] == "blobs")

    def _index(self, stored_at: int, header: BlobHeader, slots: list[int]) -> None:
        recent = self._recent.setdefault(header.network_id,
                                         deque(maxlen=SAMPLE_RECENT_BLOBS))
        recent.append((header, slots))
        heapq.heappush(self._by_age, (stored_at, header.key))

    def _ensure_index(self) -> None:
        """Build the indexes from the store once (a restarted node keeps its blobs)."""
        if self._indexed:
            return
        stored = []
        for _, raw in self.store.items("blobs"):
            fields = as_list(decode(raw))
            stored.append((as_int(fields[0]), BlobHeader.decode(as_bytes(fields[2])),
                           [as_int(s) for s in as_list(fields[1])]))
        for stored_at, header, slots in sorted(stored, key=lambda b: b[0]):
            self._index(stored_at, header, slots)
        self._indexed = True

    async def register(self) -> None:
        """Register this signer at C0 with its stake and a BLS proof of possession."""
        staking = ray.get_actor("staking")
        pop = await asyncio.get_running_loop().run_in_executor(
            None, bls.pop_prove, self.identity.bls_secret)
        nonce = await staking.nonce_of.remote(self.identity.address)
        tx = make_tx(self.identity.account, C0_NETWORK_ID, nonce, "staking",
                     "register_da_signer",
                     [self.identity.bls_pubkey, pop, self.config.da.node_stake_zg * ZG])
        await staking.submit_tx.remote(tx.encoded)

    async def join_epoch(self, epoch: int) -> bytes:
        """Sign the epoch seed (the VRF input of this signer's tickets) and hand it to C0."""
        staking = ray.get_actor("staking")
        registry = EpochRegistry.decode(await staking.da_epoch_registry.remote(epoch))
        signature = bls.sign(self.identity.bls_secret, epoch_message(epoch, registry.seed))
        await staking.da_submit_ticket.remote(epoch, self.identity.address, signature)
        return signature

    async def _check_disperser(self, network_id: int, disperser: bytes) -> None:
        """Registered dispersers are the ones with a deposit on the batch's network: they
        lose it if they commit to a bad encoding."""
        if (network_id, disperser) in self._dispersers:
            return
        deposit = await self.chain.query(network_id, "deposit", disperser)
        if deposit < self.config.da.disperser_deposit:
            raise NotADisperser(f"0x{disperser.hex()} has deposited {deposit} on network "
                                f"{network_id}, not a registered disperser",
                                disperser=disperser, deposit=deposit)
        self._dispersers.add((network_id, disperser))

    async def store_batch(self, network_id: int, epoch: int, quorum_id: int,
                          headers: list[bytes], slots: list[int], slices: list[np.ndarray],
                          slice_roots: list[bytes], disperser_signature: bytes) -> bytes:
        """Verify and persist this node's slices of every blob of the batch, then return
        its BLS signature of the batch root. Per blob: `slices` holds this node's rows (an
        array, one row per slot) and `slice_roots` all n slice roots (n x 32 bytes), which
        must tree to the header's data root."""
        self._ensure_pruning()
        batch = Batch(network_id, epoch, quorum_id,
                      tuple(BlobHeader.decode(h) for h in headers))
        disperser = recover_address(batch.sign_bytes, disperser_signature)
        await self._check_disperser(network_id, disperser)
        registry, quorum = await _epoch_quorum(self.chain, self._epochs, network_id, epoch,
                                               quorum_id)
        mine = quorum.slots_of(registry.index_of(self.identity.address))
        if list(slots) != mine:
            raise InvalidBlob(f"node {self.index} holds slots {mine} of quorum {quorum_id}, "
                              f"was sent {list(slots)}", expected=str(mine), got=str(slots))
        if not len(batch.blobs) == len(slices) == len(slice_roots):
            raise InvalidBlob(f"{len(batch.blobs)} blob headers, {len(slices)} slice sets and "
                              f"{len(slice_roots)} root sets", blobs=len(batch.blobs))
        k, n = self.config.da.k, self.config.da.n
        stored_at = int(time.time() * 1000)  # unix ms
        writes: list = []
        for header, rows, roots_raw in zip(batch.blobs, slices, slice_roots, strict=True):
            if (header.network_id, header.epoch, header.quorum_id) != (
                    network_id, epoch, quorum_id) or not isinstance(rows, np.ndarray) or \
                    rows.dtype != np.uint8 or rows.shape != (len(slots),
                                                             slice_length(header.size, k)):
                raise InvalidBlob(f"blob 0x{header.key.hex()[:16]} does not fit the batch",
                                  blob=header.key)
            verify_held_slices(header.data_root, slots, rows, split_roots(roots_raw, n))
            # One record per blob: all n roots (proofs are rebuilt from them) and the rows.
            writes.append(("slices", header.key, encode([roots_raw, rows.tobytes()])))
            writes.append(("blobs", header.key, encode([stored_at, list(slots),
                                                        header.encode()])))
        # In a thread: with py_ecc a signature takes ~0.2 s, which would stall this
        # node's other calls (pure Python still yields the GIL every few ms).
        signature = await asyncio.get_running_loop().run_in_executor(
            None, bls.sign, self.identity.bls_secret, batch.sign_bytes)
        writes.append(("signed", batch.root, signature))
        self._ensure_index()
        self.store.write(writes)  # persisted (synced) before the signature leaves
        for header in batch.blobs:
            self._index(stored_at, header, list(slots))
        self.batches_signed += 1
        return signature

    def _held(self, blob_key: bytes) -> dict[int, tuple[np.ndarray, list]]:
        """{slot: (slice, Merkle proof into the data root)} of the blob's slots here."""
        raw = self.store.get("blobs", blob_key)
        item = self.store.get("slices", blob_key)
        if raw is None or item is None:
            return {}
        slots = [as_int(s) for s in as_list(decode(raw)[1])]
        roots_raw, rows_raw = (as_bytes(f) for f in as_list(decode(item), 2))
        levels = merkle_levels(split_roots(roots_raw, len(roots_raw) // HASH_BYTES))
        rows = np.frombuffer(rows_raw, dtype=np.uint8).reshape(len(slots), -1)
        return {slot: (rows[i], proof_from_levels(levels, slot).to_list())
                for i, slot in enumerate(slots)}

    async def get_slices(self, blob_key: bytes) -> dict[int, tuple[np.ndarray, list]]:
        """{slot: (slice, proof)} of every slot of the blob this node stores."""
        return self._held(blob_key)

    async def status(self) -> dict:
        return {"index": self.index, "address": self.identity.address,
                "blobs": self.store.count("blobs"), "batches_signed": self.batches_signed,
                "sampling_answers_sent": self.answers_sent,
                "path": str(self.store.path)}


def _blob_record(header: BlobHeader, created: float, status: int, error: str = "",
                 finalized_at: float | None = None) -> bytes:
    """A disperser's LMDB record of one blob (JSON; `_record` reads it back)."""
    record: dict[str, Any] = {"status": int(status), "header": header.encode().hex(),
                              "network_id": header.network_id, "created": created}
    if error:
        record["error"] = error
    if finalized_at is not None:
        record["finalized_at"] = finalized_at
    return json.dumps(record).encode()


def _status_of(header: BlobHeader, status: int, error: str) -> Status:
    """What GetBlobStatus tells about a blob (Disperser.status, the status feed)."""
    return {"request_id": header.key, "status": int(status), "error": error,
            "data_root": header.data_root, "size": header.size, "epoch": header.epoch,
            "quorum_id": header.quorum_id, "network_id": header.network_id}


# ---------------------------------------------------------------------------------------
@ray.remote(max_restarts=-1, max_task_retries=0)
class Disperser:
    """Encodes, batches, certifies and tracks blobs; retrieves them from DA nodes."""

    def __init__(self, config_dict: dict, index: int, data_dir: str) -> None:
        self.config = config_from_dict(config_dict)
        bls.use(self.config.da.bls_backend)  # a DA process does DA work only
        self.index = index
        self.account = disperser_account(self.config.devnet.key_seed, index)
        # "payloads": the bytes of each blob not yet final, so that a restarted disperser
        # can encode and batch it again (removed once the blob is final).
        self.store = Store(Path(data_dir) / f"da-disperser-{index}",
                           ["blobs", "roots", "payloads"], self.config.lmdb_map_mb)
        self.chain = ChainView(prefer=index)
        da = self.config.da
        self.queue = BatchQueue(da.batch_interval_s, da.batch_max_blobs, da.batch_max_bytes,
                                da.batches_signing)
        self.pool: Any = None
        self.epoch: int | None = None
        self.ready: dict[int, int] = {}  # {network id: next nonce of our account there}
        self.load: dict[int, int] = {}  # {network id: blobs queued or awaiting certificate}
        self.routed: dict[int, int] = {}
        self.certificates: dict[int, int] = {}
        self.latencies: list[float] = []
        self._epochs: dict = {}
        self._node_handles: dict[int, Any] = {}
        self.liveness = NodeLiveness()  # which DA nodes count, for admission and batches
        self._quorum_turn = 0
        self._tasks: list[asyncio.Task] = []
        self._starting: asyncio.Task | None = None
        self._start_lock = asyncio.Lock()
        self._inflight: set[asyncio.Task] = set()
        self._tx_lock = asyncio.Lock()
        self._deposit_nonce: dict[int, int] = {}  # {network id: nonce of the last top-up}
        self.epoch_interval_s = self.config.da.epoch_interval_s
        self._rotator: asyncio.Task | None = None
        self.rotations = 0
        node_seed = self.config.devnet.key_seed
        self.node_of = {da_signer_identity(node_seed, i).address: i for i in range(da.nodes)}
        # The one scan of the records at start counts statuses (stats() reads the counts)
        # and finds the blobs a previous process acknowledged and did not finish: start()
        # resumes them.
        self.status_counts: dict[int, int] = {}
        self._unfinished: list[bytes] = []
        # Status changes for the gateway's cache (da/status.py); new process, new feed.
        self.feed = StatusFeed()
        self._feed_changed = asyncio.Event()
        for key, raw in self.store.items("blobs"):
            record = json.loads(raw)
            if record["status"] in (BlobStatus.PROCESSING, BlobStatus.CONFIRMED):
                self._unfinished.append(key)
            self._count(record["status"], +1)

    def _count(self, status: int, change: int) -> None:
        self.status_counts[status] = self.status_counts.get(status, 0) + change

    # ---- lifecycle -----------------------------------------------------------------
    def _ensure_started(self) -> None:
        """Start from the first call after a (re)start, so that a restarted disperser
        resumes its unfinished blobs without waiting for a new blob (an async actor's loop
        runs only from its first call; the gateway's status feed calls every few
        seconds)."""
        if not self._tasks and (self._starting is None or self._starting.done()):
            self._starting = asyncio.get_running_loop().create_task(self.start())

    async def start(self) -> dict:
        """Create the encoder pool, find the current epoch and the networks, resume the
        blobs a previous process left unfinished; idempotent."""
        async with self._start_lock:
            return await self._start()

    async def _start(self) -> dict:
        if self.pool is None:
            from zg_actors.erasure.actors import EncoderPool

            self.pool = await asyncio.get_running_loop().run_in_executor(
                None, EncoderPool, self.config.codec)
        if self.epoch is None:
            current = await ray.get_actor("staking").da_current_epoch.remote()
            if current < 0:
                raise Unavailable("no DA epoch is sealed yet: run deploy_da", epochs=0)
            self.epoch = current
        await self._refresh_networks()
        if not self._tasks:
            await self._probe_nodes()  # admission needs to know which nodes are up
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._networks_forever()),
                           loop.create_task(self._batches_forever()),
                           loop.create_task(self._probe_forever()),
                           loop.create_task(self._resume())]
            if self.index == 0 and self.epoch_interval_s > 0:
                await self.set_epoch_interval(self.epoch_interval_s)
        return {"epoch": self.epoch, "networks": sorted(self.ready)}

    async def _probe_forever(self) -> None:
        while True:
            await asyncio.sleep(PROBE_INTERVAL_S)
            await self._probe_nodes()

    async def _probe_nodes(self) -> None:
        """Ask every DA node for its status: one that is not running, or whose call fails
        or is not answered within CALL_TIMEOUT_S, is down until it answers again."""
        async def probe(node: int) -> None:
            handle = self._node(node)
            if handle is None:
                self.liveness.failed(node, "not running")
                return
            try:
                await asyncio.wait_for(handle.status.remote(), CALL_TIMEOUT_S)
            except Exception as exc:  # dead, restarting, or hung
                self._forget_node(node, exc)
                self.liveness.failed(node, f"not answering ({type(exc).__name__})")
                return
            self.liveness.answered(node)

        await asyncio.gather(*[probe(i) for i in range(self.config.da.nodes)])

    async def _resume(self) -> None:
        """Take up the blobs a previous process acknowledged and did not finish: follow
        a certificate already on chain, or encode the persisted payload and batch it
        again in its own (network, epoch, quorum)."""
        unfinished, self._unfinished = self._unfinished, []
        deadline = time.time() + self.config.da.confirm_timeout_s
        while unfinished:
            key = unfinished.pop()
            record = self._record(key)
            header = BlobHeader.decode(bytes.fromhex(record["header"]))
            pending = PendingBlob(header, None, record["created"], record["status"])
            if header.network_id not in self.ready:
                self._finish([pending], BlobStatus.FAILED, f"network {header.network_id} "
                             "was retired before the blob was certified")
                continue
            try:
                on_chain = BlobStatus((await self.chain.query(header.network_id, "blob",
                                                              key))["status"])
            except Unavailable as exc:  # its validators busy or restarting: again later
                if time.time() > deadline:
                    self._finish([pending], BlobStatus.FAILED, str(exc)[:300])
                else:
                    unfinished.insert(0, key)
                    await asyncio.sleep(POLL_INTERVAL_S)
                continue
            payload = self.store.get("payloads", key)
            action, why = resume_action(on_chain, payload is not None)
            if action == Resume.FAIL:
                self._finish([pending], BlobStatus.FAILED, why)
                continue
            if action == Resume.REDISPERSE:
                assert payload is not None
                da = self.config.da
                [(shards, roots, root)] = await self.pool.encode_many_with_roots_async(
                    [np.frombuffer(payload, dtype=np.uint8)], da.k, da.n - da.k, SECTOR_BYTES)
                pending.blob = commit_slices(shards, da.k, header.size, roots, root)
                if pending.blob.data_root != header.data_root:  # a damaged payload record
                    self._finish([pending], BlobStatus.FAILED, "the persisted payload no "
                                 "longer encodes to the blob's data root")
                    continue
            self.load[header.network_id] = self.load.get(header.network_id, 0) + 1
            if action == Resume.TRACK:
                self._spawn(self._track(header.network_id, [pending]))
            else:
                self.queue.add((header.network_id, header.epoch, header.quorum_id), pending,
                               time.time())
            log.info("disperser %d: resumed blob 0x%s (%s)", self.index, key.hex()[:12],
                     action.value)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _networks_forever(self) -> None:
        while True:
            await asyncio.sleep(NETWORKS_REFRESH_S)
            try:
                await self._refresh_networks()
            except Exception as exc:
                log.warning("disperser %d: network refresh failed: %s", self.index, exc)

    async def _refresh_networks(self) -> None:
        """Start routing to launched networks (after our deposit and the epoch's registry
        are on their chain); stop routing to retired ones."""
        active = await ray.get_actor("networks").active_networks.remote()
        for network_id in list(self.ready):
            if network_id not in active:
                self.ready.pop(network_id)
                self.chain.forget(network_id)
            else:
                with contextlib.suppress(Unavailable):  # validators busy: next refresh
                    await self._keep_deposit(network_id)
        for network_id in active:
            if network_id not in self.ready:
                try:
                    await self._prepare_network(network_id)
                except Exception as exc:
                    log.info("disperser %d: network %d not ready yet: %s", self.index,
                             network_id, exc)

    async def _prepare_network(self, network_id: int) -> None:
        for _ in range(3):  # the epoch may rotate while we prepare: register the new one
            epoch = self.epoch
            await self._prepare_network_once(network_id)
            if self.epoch == epoch:
                return
            self.ready.pop(network_id, None)
        raise Unavailable(f"network {network_id}: epochs rotate faster than it is prepared",
                          network_id=network_id)

    async def _prepare_network_once(self, network_id: int) -> None:
        assert self.epoch is not None
        nonce = await self.chain.nonce(network_id, self.account.address)
        sent = []
        if await self.chain.query(network_id, "epoch", self.epoch) is None:
            sent.append(("register_epoch", await ray.get_actor(
                "staking").da_epoch_attested.remote(self.epoch)))
        deposit = await self.chain.query(network_id, "deposit", self.account.address)
        if deposit < self.config.da.disperser_deposit:
            sent.append(("deposit", [self.config.da.disperser_deposit - deposit]))
        for method, args in sent:
            tx = make_tx(self.account, network_id, nonce, "da", method, args)
            await self.chain.submit(network_id, tx.encoded)
            nonce += 1
        deadline = time.time() + self.config.da.confirm_timeout_s
        while time.time() < deadline:
            if (await self.chain.query(network_id, "epoch", self.epoch) is not None and
                    await self.chain.query(network_id, "deposit", self.account.address)
                    >= self.config.da.disperser_deposit):
                self.ready[network_id] = await self.chain.nonce(network_id,
                                                                self.account.address)
                self.load.setdefault(network_id, 0)
                log.info("disperser %d: network %d takes certificates", self.index, network_id)
                return
            await asyncio.sleep(POLL_INTERVAL_S)
        raise Unavailable(f"network {network_id} did not take our deposit and epoch in time",
                          network_id=network_id)

    async def use_epoch(self, epoch: int) -> dict:
        """Send new blobs to `epoch` once its registry is on every network we route to;
        batches already open finish in the epoch they started in."""
        posting = await ray.get_actor("staking").da_epoch_attested.remote(epoch)
        for network_id in list(self.ready):
            if await self.chain.query(network_id, "epoch", epoch) is not None:
                continue
            await self._send_tx(network_id, "register_epoch", posting)
        deadline = time.time() + self.config.da.confirm_timeout_s
        for network_id in list(self.ready):
            while await self.chain.query(network_id, "epoch", epoch) is None:
                if time.time() > deadline:
                    raise Unavailable(f"network {network_id} did not record epoch {epoch}",
                                      network_id=network_id, epoch=epoch)
                await asyncio.sleep(POLL_INTERVAL_S)
        self.epoch = epoch
        return {"epoch": epoch, "networks": sorted(self.ready)}

    # ---- epoch rotation on a timer ----------------------------------------------------
    async def set_batching(self, interval_s: float | None = None, max_blobs: int | None = None,
                           max_bytes: int | None = None) -> dict:
        """Seal batches at these limits from now on (da.batch_interval_s, batch_max_blobs,
        batch_max_bytes at start; None keeps one): longer and bigger fill batches of big
        blobs, so one certificate (and its BLS work) covers more bytes."""
        for name, value in (("interval_s", interval_s), ("max_blobs", max_blobs),
                            ("max_bytes", max_bytes)):
            if value is not None and value <= 0:
                raise InvalidInput(f"batch {name} must be > 0, got {value}", **{name: value})
        q = self.queue
        q.interval_s = q.interval_s if interval_s is None else interval_s
        q.max_blobs = q.max_blobs if max_blobs is None else int(max_blobs)
        q.max_bytes = q.max_bytes if max_bytes is None else int(max_bytes)
        return {"interval_s": q.interval_s, "max_blobs": q.max_blobs, "max_bytes": q.max_bytes}

    async def set_epoch_interval(self, seconds: float) -> None:
        """Rotate epochs every `seconds` (0 stops); only disperser 0 should drive it."""
        self.epoch_interval_s = seconds  # 0: the loop ends after any rotation under way
        if seconds > 0 and (self._rotator is None or self._rotator.done()):
            self._rotator = asyncio.get_running_loop().create_task(self._rotate_forever())

    async def _rotate_forever(self) -> None:
        while self.epoch_interval_s > 0:
            await asyncio.sleep(self.epoch_interval_s)
            if self.epoch_interval_s <= 0:
                break
            try:
                await self.rotate_epoch()
            except Exception as exc:  # no new block yet, a network busy: next time
                log.warning("disperser %d: epoch rotation failed: %s", self.index, exc)

    async def rotate_epoch(self) -> int:
        """Open and seal the next epoch at C0 (new seed, current stakes, new tickets and
        quorums), register it on every network and move every disperser to it."""
        epoch = await open_epoch_async(self.config)
        await self.use_epoch(epoch)
        others = []
        for i in range(self.config.da.dispersers):
            if i != self.index:
                try:
                    others.append(ray.get_actor(disperser_name(i)))
                except ValueError:
                    continue
        await asyncio.gather(*[d.use_epoch.remote(epoch) for d in others])
        self.rotations += 1
        log.info("disperser %d: rotated to DA epoch %d", self.index, epoch)
        return epoch

    # ---- dispersal -------------------------------------------------------------------
    def _record(self, key: bytes) -> dict:
        check_blob_id("request_id", key)
        raw = self.store.get("blobs", key)
        if raw is None:
            raise UnknownBlob(f"unknown blob request 0x{key.hex()}", request_id=key)
        return json.loads(raw)

    async def disperse(self, data: np.ndarray) -> dict:
        """Encode and queue a blob; returns its request id (the blob header's key) once its
        record is persisted. Status starts PROCESSING."""
        [answer] = await self.disperse_many([data])
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def disperse_many(self, blobs: list[np.ndarray]) -> list[dict | ZgError]:
        """disperse for blobs that arrived together (the gateway groups concurrent
        requests): one call, one encoder call for the small ones and one synced LMDB write
        for all. Each blob gets its own answer, or the typed error that refused it."""
        if self.pool is None or not self.ready:
            await self.start()
        da = self.config.da
        routes = await asyncio.gather(*[self._route(data) for data in blobs],
                                      return_exceptions=True)
        ok = [i for i, route in enumerate(routes) if not isinstance(route, BaseException)]
        try:
            for route in routes:
                if isinstance(route, BaseException) and not isinstance(route, ZgError):
                    raise route  # a bug, not a refused blob: fail loudly
            small = [i for i in ok if len(blobs[i]) <= GROUP_ENCODE_MAX_BYTES]
            large = [i for i in ok if len(blobs[i]) > GROUP_ENCODE_MAX_BYTES]
            m = da.n - da.k
            # Slices come back with their slice roots: the encoder hashes them (the bulk of
            # committing to a blob) in its own process, not on this event loop.
            encoded = await asyncio.gather(
                self.pool.encode_many_with_roots_async([blobs[i] for i in small], da.k, m,
                                                       SECTOR_BYTES),
                *[self.pool.encode_many_with_roots_async([blobs[i]], da.k, m, SECTOR_BYTES)
                  for i in large])
            slices = dict(zip(small, encoded[0], strict=True))
            slices.update((i, one[0]) for i, one in zip(large, encoded[1:], strict=True))
        except BaseException:
            for i in ok:  # none of them is queued: they no longer load their network
                self.load[routes[i][0]] -= 1
            raise
        now = time.time()
        answers: list[dict | ZgError] = []
        accepted: list[PendingBlob] = []
        writes: list = []
        for i, route in enumerate(routes):
            if isinstance(route, ZgError):
                answers.append(route)
                continue
            network_id, quorum_id = route
            shards, roots, root = slices[i]
            blob = commit_slices(shards, da.k, len(blobs[i]), roots, root)
            header = BlobHeader(blob.data_root, len(blobs[i]), self.epoch, quorum_id,
                                network_id)
            accepted.append(PendingBlob(header, blob, now))
            writes += [
                ("blobs", header.key, _blob_record(header, now, BlobStatus.PROCESSING)),
                ("payloads", header.key, blobs[i].tobytes()),
                ("roots", encode([header.data_root, header.epoch, quorum_id]), header.key)]
            answers.append(_status_of(header, BlobStatus.PROCESSING, ""))
        if writes:
            # Persisted (synced) with the payload before any request id is answered: a
            # restarted disperser resumes these blobs (_resume).
            try:
                self.store.write(writes)
            except lmdb.MapFullError as exc:  # payloads of blobs in flight fill the map
                for pending in accepted:
                    self.load[pending.header.network_id] -= 1
                raise Overloaded(f"disperser {self.index}'s store is full "
                                 f"(lmdb_map_mb = {self.config.lmdb_map_mb}): it keeps each "
                                 "blob's payload until the blob is final; retry later",
                                 lmdb_map_mb=self.config.lmdb_map_mb) from exc
            self._count(BlobStatus.PROCESSING, len(accepted))
            self._publish([a for a in answers if isinstance(a, dict)])
        for pending in accepted:
            header = pending.header
            self.queue.add((header.network_id, header.epoch, header.quorum_id), pending, now)
        return answers

    async def _route(self, data: np.ndarray) -> tuple[int, int]:
        """Check one blob and pick its (network, quorum); typed errors refuse it."""
        da = self.config.da
        check_size(len(data), da.max_blob_bytes)
        if len(self.queue) + sum(self.load.values()) >= da.max_pending_blobs:
            raise Overloaded(f"disperser {self.index} has {da.max_pending_blobs} blobs in "
                             "flight; retry later", pending=da.max_pending_blobs)
        if not self.ready:
            raise Unavailable("no consensus network takes DA certificates yet")
        network_id = choose_network({n: self.load.get(n, 0) for n in self.ready}, self.routed)
        assert self.epoch is not None
        # Counted at once, so that the blobs of one call spread over the networks.
        self.load[network_id] = self.load.get(network_id, 0) + 1
        self.routed[network_id] = self.routed.get(network_id, 0) + 1
        try:
            registry, quorums = await self._quorums(network_id)
            quorum_id = self._quorum_turn % len(quorums)
            self._quorum_turn += 1
            live = {s for s in quorums[quorum_id].members
                    if self.liveness.is_live(self.node_of.get(registry.signers[s].address))}
            check_quorum_live(quorums[quorum_id], live, self._why_down(registry),
                              f"quorum {quorum_id} of DA epoch {self.epoch} on network "
                              f"{network_id}")
        except BaseException:
            self.load[network_id] -= 1
            raise
        return network_id, quorum_id

    def _why_down(self, registry: EpochRegistry) -> dict[int, str]:
        """{registry signer: why its DA node is believed down}, for error messages."""
        why = {}
        for signer, entry in enumerate(registry.signers):
            node = self.node_of.get(entry.address)
            if node is None:
                why[signer] = "not a DA node of this deployment"
            elif not self.liveness.is_live(node):
                why[signer] = f"DA node {node} {self.liveness.down[node]}"
        return why

    async def _quorums(self, network_id: int) -> tuple[EpochRegistry, list[Quorum]]:
        assert self.epoch is not None
        registry, _ = await _epoch_quorum(self.chain, self._epochs, network_id, self.epoch, 0)
        return registry, self._epochs[(network_id, self.epoch)][1]

    async def _batches_forever(self) -> None:
        while True:
            await asyncio.sleep(min(0.05, self.queue.interval_s / 4))
            for key in self.queue.due(time.time()):
                task = asyncio.get_running_loop().create_task(self._certify(key,
                                                                            self.queue.pop(key)))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)

    async def _certify(self, key: BatchKey, blobs: list[PendingBlob]) -> None:
        network_id, epoch, quorum_id = key
        try:
            status, error = await self._gather_and_submit(key, blobs)
        except Exception as exc:
            log.warning("disperser %d: batch on network %d failed: %s", self.index,
                        network_id, exc)
            status, error = BlobStatus.FAILED, str(exc)[:300]
        finally:
            self.queue.signed(key)  # the next batch of this quorum may seal
        if status != BlobStatus.CONFIRMED:
            self._finish(blobs, status, error)
            self.load[network_id] = max(0, self.load.get(network_id, 0) - len(blobs))
            return
        await self._track(network_id, blobs)

    async def _gather_and_submit(self, key: BatchKey,
                                 blobs: list[PendingBlob]) -> tuple[BlobStatus, str]:
        """Send the batch's slices to the quorum's DA nodes, certify with the signatures
        that count; (CONFIRMED, "") once the certificate tx is in, else
        (INSUFFICIENT_SIGNATURES, which slots are missing and why)."""
        network_id, epoch, quorum_id = key
        registry, quorum = await _epoch_quorum(self.chain, self._epochs, network_id, epoch,
                                               quorum_id)
        batch = Batch(network_id, epoch, quorum_id, tuple(p.header for p in blobs))
        my_signature = self.account.sign_hash(batch.sign_bytes)
        headers = [p.header.encode() for p in blobs]
        encoded = [p.blob for p in blobs if p.blob is not None]
        if len(encoded) != len(blobs):
            raise InvalidInput("a batch's slices were already sent", blobs=len(blobs))
        roots = [b.roots_bytes for b in encoded]  # the same n roots go to every node
        calls: dict[int, tuple[int, Any]] = {}  # {signer: (node index, store_batch ref)}
        why_down = self._why_down(registry)
        for signer, slots in slots_by_signer(quorum).items():
            node = self.node_of.get(registry.signers[signer].address)
            handle = self._node(node) if self.liveness.is_live(node) else None
            if node is None or handle is None:
                continue  # down: not asked, not counted (its reason is in why_down)
            calls[signer] = (node, handle.store_batch.remote(
                network_id, epoch, quorum_id, headers, slots,
                [slices_for(b, slots) for b in encoded], roots, my_signature))
        del encoded
        for pending in blobs:  # the calls hold copies: free the slices (3x the blob) now
            pending.blob = None
        tally = SignatureTally(quorum, waiting=set(calls),
                               missed={s: why_down.get(s, "not reachable")
                                       for s in quorum.members if s not in calls})
        await self._collect(calls, tally)
        signatures = await asyncio.get_running_loop().run_in_executor(
            None, verified_signatures, dict(tally.signed), registry, batch.sign_bytes)
        for signer in set(tally.signed) - set(signatures):
            tally.failed(signer, "its signature does not verify")
        if tally.outcome() != Collected.CERTIFY:
            reason = tally.missing_reason()
            log.warning("disperser %d: batch 0x%s: %s", self.index, batch.root.hex()[:12],
                        reason)
            return BlobStatus.INSUFFICIENT_SIGNATURES, reason
        signers = sorted(signatures)
        aggregate = await asyncio.get_running_loop().run_in_executor(
            None, bls.aggregate, [signatures[s] for s in signers])
        cert = DACertificate(batch, member_bitmap(quorum, signers), aggregate)
        await self._send_tx(network_id, "certify", [cert.encode()])
        self.certificates[network_id] = self.certificates.get(network_id, 0) + 1
        return BlobStatus.CONFIRMED, ""

    async def _send_tx(self, network_id: int, method: str, args: list) -> int:
        """Send a `da` tx from this disperser's account on the network's nonce sequence
        (certificates, epochs and deposits share it); returns the nonce used."""
        async with self._tx_lock:
            nonce = self.ready.get(network_id)
            if nonce is None:
                raise Unavailable(f"network {network_id} was retired", network_id=network_id)
            try:
                await self.chain.submit(network_id, make_tx(
                    self.account, network_id, nonce, "da", method, args).encoded)
            except Unavailable:
                # Our nonce may be stale (the account also sent txs elsewhere): resync, retry.
                nonce = await self.chain.nonce(network_id, self.account.address)
                await self.chain.submit(network_id, make_tx(
                    self.account, network_id, nonce, "da", method, args).encoded)
            self.ready[network_id] = nonce + 1
            return nonce

    async def _keep_deposit(self, network_id: int) -> None:
        """Top the deposit up when a bad-encoding proof slashed it below the minimum: the
        network would refuse every later certificate (on the same nonce sequence, the
        top-up comes before them), and the blobs they carry would time out."""
        topped_up = self._deposit_nonce.get(network_id)
        if topped_up is not None and await self.chain.nonce(
                network_id, self.account.address) <= topped_up:
            return  # the last top-up is not committed yet
        deposit = await self.chain.query(network_id, "deposit", self.account.address)
        missing = self.config.da.disperser_deposit - deposit
        if missing > 0:
            log.warning("disperser %d: deposit on network %d is %d, topping it up",
                        self.index, network_id, deposit)
            self._deposit_nonce[network_id] = await self._send_tx(network_id, "deposit",
                                                                  [missing])

    def _node(self, index: int) -> Any:
        """A DA node's handle, looked up once (a blocking GCS call) and kept: Ray restarts
        an actor behind its handle. None while the node's name is not registered."""
        if index not in self._node_handles:
            try:
                self._node_handles[index] = ray.get_actor(da_node_name(index))
            except ValueError:
                return None
        return self._node_handles[index]

    def _forget_node(self, node: int, exc: BaseException) -> None:
        """After a failed call: a node gone for good is looked up by name again (Ray
        restarts a crashed one behind the same handle)."""
        if isinstance(exc, ray.exceptions.RayActorError):
            self._node_handles.pop(node, None)

    async def _collect(self, calls: dict[int, tuple[int, Any]], tally: SignatureTally) -> None:
        """Tally the signatures as they arrive (SignatureTally decides when to stop). A node
        whose call fails is down from now on: it is not asked again until a probe finds it
        back. Past the signature deadline, a batch short of the threshold waits for its
        late signers while probes find them up, at most signature_wait_max_s."""
        waiting = {asyncio.ensure_future(asyncio.wrap_future(ref.future())): (signer, node)
                   for signer, (node, ref) in calls.items()}
        start = time.time()
        deadline = start + self.config.da.signature_deadline_s
        give_up = start + self.config.da.signature_wait_max_s
        pending = set(waiting)
        while pending and time.time() < give_up and \
                tally.outcome(past_deadline=time.time() >= deadline) == Collected.WAIT:
            wake = deadline if time.time() < deadline else time.time() + PROBE_INTERVAL_S
            done, pending = await asyncio.wait(pending, timeout=min(wake, give_up) - time.time(),
                                               return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                signer, node = waiting[future]
                exc = future.exception()
                if exc is None:
                    tally.answered(signer, future.result())
                    self.liveness.answered(node)
                    continue
                log.info("DA signer %d (node %d) refused the batch: %s", signer, node,
                         str(exc)[:200])
                if isinstance(exc, ZgError):  # it answered: up, but it refused
                    tally.failed(signer, f"refused: {str(exc)[:120]}")
                    continue
                self._forget_node(node, exc)
                self.liveness.failed(node, f"failed a batch ({type(exc).__name__})")
                tally.failed(signer, f"DA node {node} failed ({type(exc).__name__})")
            for future in list(pending):  # late signers a probe has since found down
                signer, node = waiting[future]
                if not self.liveness.is_live(node):
                    pending.discard(future)
                    future.cancel()
                    tally.failed(signer, f"DA node {node} {self.liveness.down[node]}")
        for future in pending:
            future.cancel()
        tally.leave_out_waiting(
            "not waited for: the others could not reach the threshold"
            if tally.outcome() == Collected.INSUFFICIENT
            else f"no signature within {time.time() - start:.0f} s")

    async def _track(self, network_id: int, blobs: list[PendingBlob]) -> None:
        """Poll the network until the batch's blobs are FINALIZED (or time out: FAILED)."""
        first = blobs[0].header.key
        deadline = time.time() + self.config.da.confirm_timeout_s
        confirmed = False
        height = 0
        try:
            while time.time() < deadline:
                try:
                    status = BlobStatus((await self.chain.query(network_id, "blob",
                                                                first))["status"])
                except Exception:
                    status = BlobStatus.UNKNOWN
                if status == BlobStatus.CONFIRMED and not confirmed:
                    confirmed = True
                    self._finish(blobs, status, "")
                if status in (BlobStatus.FINALIZED, BlobStatus.FAILED):
                    self._finish(blobs, status, "")
                    return
                try:  # statuses change only with a new block
                    height = await self.chain.wait_height(network_id, height + 1,
                                                          deadline - time.time())
                except Unavailable:
                    await asyncio.sleep(POLL_INTERVAL_S)
            self._finish(blobs, BlobStatus.FAILED, "certificate not final before the timeout")
        finally:
            self.load[network_id] = max(0, self.load.get(network_id, 0) - len(blobs))

    def _finish(self, blobs: list[PendingBlob], status: BlobStatus, error: str) -> None:
        now = time.time()
        writes, changes = [], []
        for pending in blobs:  # the whole record from memory: no read back
            final = status == BlobStatus.FINALIZED
            if final:
                self.latencies.append(now - pending.created)
            writes.append(("blobs", pending.header.key, _blob_record(
                pending.header, pending.created, status, error, now if final else None)))
            if status != BlobStatus.CONFIRMED:  # final: nothing left to resume
                writes.append(("payloads", pending.header.key, None))
            changes.append(pending.status)
        self.store.write(writes)
        for pending, before in zip(blobs, changes, strict=True):
            pending.status = int(status)
            self._count(before, -1)
            self._count(status, +1)
        self._publish([_status_of(p.header, status, error) for p in blobs])
        del self.latencies[:-20_000]

    def _publish(self, statuses: list[Status]) -> None:
        """Hand persisted status changes to the feed and wake its followers."""
        self.feed.publish(statuses)
        self._feed_changed.set()
        self._feed_changed = asyncio.Event()

    async def status_changes(self, since: int, wait_s: float = 0.0) -> dict:
        """Status changes after `since` (StatusFeed.since; -1: where the feed is now),
        waiting up to `wait_s` for one when there is none yet (a long poll)."""
        self._ensure_started()
        if 0 <= since == self.feed.seq and wait_s > 0:
            with contextlib.suppress(TimeoutError):  # no change in time: answer empty
                await asyncio.wait_for(self._feed_changed.wait(), min(wait_s, CALL_TIMEOUT_S))
        return self.feed.since(since)

    # ---- queries and retrieval -------------------------------------------------------
    async def status(self, request_id: bytes) -> Status:
        self._ensure_started()
        record = self._record(request_id)
        header = BlobHeader.decode(bytes.fromhex(record["header"]))
        return _status_of(header, record["status"], record.get("error", ""))

    async def find(self, data_root: bytes, epoch: int, quorum_id: int) -> bytes:
        check_blob_id("storage_root", data_root)
        key = self.store.get("roots", encode([data_root, epoch, quorum_id]))
        if key is None:
            raise UnknownBlob(f"no blob with data root 0x{data_root.hex()} in epoch {epoch} "
                              f"quorum {quorum_id}", data_root=data_root, epoch=epoch,
                              quorum_id=quorum_id)
        return key

    async def retrieve(self, request_id: bytes) -> np.ndarray:
        """Ask the quorum's DA nodes in parallel; decode once k slices verified."""
        if self.pool is None:
            await self.start()
        record = self._record(request_id)
        header = BlobHeader.decode(bytes.fromhex(record["header"]))
        registry, quorum = await _epoch_quorum(self.chain, self._epochs, header.network_id,
                                               header.epoch, header.quorum_id)
        k, n = self.config.da.k, self.config.da.n
        futures = []
        for signer in quorum.members:
            node = self.node_of.get(registry.signers[signer].address)
            handle = self._node(node) if node is not None else None
            if handle is not None:
                futures.append(asyncio.ensure_future(asyncio.wrap_future(
                    handle.get_slices.remote(header.key).future())))
        good: dict[int, np.ndarray] = {}
        for future in asyncio.as_completed(futures, timeout=CALL_TIMEOUT_S * 2):
            try:
                served = await future
            except Exception:
                continue
            good.update(verified_slices(header, n, served))
            if len(good) >= k:
                break
        for future in futures:
            future.cancel()
        if len(good) < k:
            raise Unavailable(f"only {len(good)} verified slices of blob 0x"
                              f"{request_id.hex()[:16]} reachable, need {k}",
                              have=len(good), need=k)
        chosen = dict(sorted(good.items())[:k])
        payload = await self.pool.decode_async(chosen, k, n - k, header.size)
        return np.frombuffer(payload, dtype=np.uint8)

    async def stats(self) -> dict:
        self._ensure_started()
        counts = {s: c for s, c in self.status_counts.items() if c}
        return {"index": self.index, "epoch": self.epoch, "networks": sorted(self.ready),
                "load": dict(self.load), "certificates": dict(self.certificates),
                "statuses": {BlobStatus(s).name: c for s, c in counts.items()},
                "latencies": list(self.latencies), "queued": len(self.queue),
                "nodes_down": dict(self.liveness.down),
                "epoch_rotations": self.rotations,
                "rotating": self._rotator is not None and not self._rotator.done()}


# ---------------------------------------------------------------------------------------
def _c0_tx(staking: Any, account: Any, method: str, args: list) -> None:
    nonce = ray.get(staking.nonce_of.remote(account.address))
    tx = make_tx(account, C0_NETWORK_ID, nonce, "staking", method, args)
    ray.get(staking.submit_tx.remote(tx.encoded))


def fund_da_signers(config: Config) -> list[int]:
    """Send each unregistered DA signer its stake from the devnet's C0 accounts; returns the
    indexes that still have to register."""
    staking = ray.get_actor("staking")
    seed = config.devnet.key_seed
    known = {s["address"] for s in ray.get(staking.da_signers.remote())}
    stake = config.da.node_stake_zg * ZG
    missing = []
    for i in range(config.da.nodes):
        ident = da_signer_identity(seed, i)
        if ident.address in known:
            continue
        if ray.get(staking.balance_of.remote(ident.address)) < stake:
            _c0_tx(staking, c0_account(seed, i % config.staking.genesis_accounts), "transfer",
                   [ident.address, stake])
        missing.append(i)
    return missing


def open_epoch(config: Config, nodes: list[Any], timeout_s: float = 60.0) -> int:
    """Open the next DA epoch from a certified block of the first network and have every
    DA node submit its ticket signature."""
    staking, manager = ray.get_actor("staking"), ray.get_actor("networks")
    networks = ray.get(manager.active_networks.remote())
    if not networks:
        raise Unavailable("DA epochs are seeded by network blocks: launch a network first")
    handles = list(ray.get(manager.validator_handles.remote(min(networks))).values())
    deadline = time.time() + timeout_s
    epochs = ray.get(staking.da_epochs.remote())
    while True:
        try:
            height = max(ray.get([h.committed_height.remote() for h in handles], timeout=10))
            [(block_raw, cert_raw)] = ray.get(handles[0].get_blocks.remote(height, 1),
                                              timeout=10) or [(None, None)]
            if block_raw is not None:
                header = Block.decode(block_raw).header.encode()
                epoch = ray.get(staking.da_open_epoch.remote(header, cert_raw))
                break
        except Exception as exc:  # no block yet, or the seed did not move forward
            if time.time() > deadline:
                raise Unavailable(f"could not open DA epoch {epochs}: {exc}") from exc
        time.sleep(0.5)
    pending = list(nodes)
    while pending and time.time() < deadline + timeout_s:
        refs = [node.join_epoch.remote(epoch) for node in pending]
        failed = []
        for node, ref in zip(pending, refs, strict=True):
            try:
                ray.get(ref, timeout=timeout_s)
            except Exception as exc:  # a node restarting: ask it again
                log.info("DA epoch %d: a node did not join yet: %s", epoch, str(exc)[:200])
                failed.append(node)
        pending = failed
        if pending:
            time.sleep(1.0)
    while True:  # C0 commits to the registry (after the ticket window if a node is missing)
        try:
            ray.get(staking.da_seal_epoch.remote(epoch), timeout=timeout_s)
            return epoch
        except Exception as exc:
            if time.time() > deadline + 3 * timeout_s:
                raise Unavailable(f"DA epoch {epoch} could not be sealed: {exc}") from exc
        time.sleep(1.0)


async def open_epoch_async(config: Config, timeout_s: float = 60.0) -> int:
    """open_epoch from inside an actor: seed from the first network's latest certified
    block, tickets from every reachable DA node, then C0 seals the registry (at once when
    every signer sent its ticket, else after the ticket window)."""
    staking, manager = ray.get_actor("staking"), ray.get_actor("networks")
    networks = await manager.active_networks.remote()
    if not networks:
        raise Unavailable("DA epochs are seeded by network blocks: launch a network first")
    handles = list((await manager.validator_handles.remote(min(networks))).values())
    deadline = time.time() + timeout_s
    while True:
        try:
            heights = await asyncio.wait_for(asyncio.gather(
                *[h.committed_height.remote() for h in handles], return_exceptions=True),
                CALL_TIMEOUT_S)
            best = max((h, i) for i, h in enumerate(heights) if isinstance(h, int))
            [(block_raw, cert_raw)] = await asyncio.wait_for(
                handles[best[1]].get_blocks.remote(best[0], 1), CALL_TIMEOUT_S)
            header = Block.decode(block_raw).header.encode()
            epoch = await staking.da_open_epoch.remote(header, cert_raw)
            break
        except Exception as exc:  # no new block yet, or a validator restarting
            if time.time() > deadline:
                raise Unavailable(f"could not open the next DA epoch: {exc}") from exc
        await asyncio.sleep(0.5)
    nodes = []
    for i in range(config.da.nodes):
        try:
            nodes.append(ray.get_actor(da_node_name(i)))
        except ValueError:
            continue  # a node that is gone gets no tickets this epoch
    await asyncio.wait_for(asyncio.gather(*[n.join_epoch.remote(epoch) for n in nodes],
                                          return_exceptions=True), timeout_s)
    while True:
        try:
            await staking.da_seal_epoch.remote(epoch)
            return epoch
        except Exception as exc:  # a signer missing: C0 seals after the ticket window
            if time.time() > deadline + timeout_s:
                raise Unavailable(f"DA epoch {epoch} could not be sealed: {exc}") from exc
        await asyncio.sleep(1.0)


def advance_epoch(config: Config, nodes: list[Any], dispersers: list[Any]) -> int:
    """Open the next DA epoch (new seed, current stakes, new tickets and quorums) and move
    the dispersers to it."""
    epoch = open_epoch(config, nodes)
    ray.get([d.use_epoch.remote(epoch) for d in dispersers], timeout=300)
    return epoch


def find_da(config: Config) -> dict[str, list[Any]]:
    """Handles of the running DA nodes and dispersers, by name."""
    try:
        return {"nodes": [ray.get_actor(da_node_name(i)) for i in range(config.da.nodes)],
                "dispersers": [ray.get_actor(disperser_name(i))
                               for i in range(config.da.dispersers)]}
    except ValueError as exc:
        raise Unavailable("DA is not running in this namespace: run `zg da up`") from exc


def deploy_da(config: Config, detached: bool = False,
              epoch_interval_s: float | None = None) -> dict[str, Any]:
    """Register the DA signers, start DA nodes and dispersers, open an epoch if none is;
    with epoch_interval_s > 0 disperser 0 rotates epochs on that timer."""
    data_dir = str(Path(config.data_dir).resolve())
    lifetime = {"lifetime": "detached"} if detached else {}
    config_dict = config.to_dict()
    unregistered = fund_da_signers(config)
    nodes = [DANode.options(name=da_node_name(i), num_cpus=config.da.node_num_cpus,
                            get_if_exists=True, **lifetime).remote(config_dict, i, data_dir)
             for i in range(config.da.nodes)]
    # Each signer proves possession of its BLS key itself (slow in py_ecc): in parallel.
    ray.get([nodes[i].register.remote() for i in unregistered], timeout=300)
    if ray.get(ray.get_actor("staking").da_current_epoch.remote()) < 0:
        open_epoch(config, nodes)
    dispersers = [Disperser.options(name=disperser_name(i),
                                    num_cpus=config.da.disperser_num_cpus,
                                    get_if_exists=True, **lifetime).remote(config_dict, i,
                                                                           data_dir)
                  for i in range(config.da.dispersers)]
    ray.get([d.start.remote() for d in dispersers], timeout=120)
    if epoch_interval_s is not None:
        ray.get(dispersers[0].set_epoch_interval.remote(epoch_interval_s), timeout=30)
    return {"nodes": nodes, "dispersers": dispersers}


def teardown_da(config: Config) -> list[str]:
    names = [da_node_name(i) for i in range(config.da.nodes)]
    names += [disperser_name(i) for i in range(config.da.dispersers)]
    return kill_named(names)
