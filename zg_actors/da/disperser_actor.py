"""The Disperser Ray actor: messaging and timers around its records (DisperserStore), its
networks (DisperserNetworks) and the dispersal logic (da/dispersal.py).

A Disperser refuses a blob its quorum's reachable DA nodes could not certify,
persists each blob it accepts (payload included) before answering, encodes blobs
on the encoder pool, batches them per (network, epoch, quorum), gathers the
signatures that count (dispersal.SignatureTally), aggregates them into a
certificate tx on the least loaded network, and tracks each blob to FINALIZED;
restarted, it resumes the blobs it had not finished.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import numpy as np
import ray

from zg_actors.config import config_from_dict
from zg_actors.crypto import bls
from zg_actors.da.blob import BlobHeader, check_size
from zg_actors.da.certificate import Batch, DACertificate, member_bitmap, verified_signatures
from zg_actors.da.dispersal import (
    BatchKey,
    BatchQueue,
    Collected,
    PendingBlob,
    Resume,
    check_quorum_live,
    encode_blobs,
    resume_action,
)
from zg_actors.da.disperser_networks import POLL_INTERVAL_S, DisperserNetworks
from zg_actors.da.disperser_nodes import DA_CALL_TIMEOUT_S, DANodes
from zg_actors.da.disperser_store import DisperserStore, status_of
from zg_actors.da.errors import Overloaded
from zg_actors.da.keys import disperser_account
from zg_actors.da.params import BlobStatus
from zg_actors.da.status import Status, StatusFeed
from zg_actors.errors import InvalidInput, Unavailable, ZgError
from zg_actors.metrics import DA_METRICS, Metrics
from zg_actors.placement import node_data_dir
from zg_actors.staking.actors import STAKING_ACTOR_NAME

log = logging.getLogger(__name__)

DISPERSER_PREFIX = "zg-da-disperser-"
LATENCIES_KEPT = 20_000  # dispersal latencies (FINALIZED blobs) kept for stats()


def disperser_name(index: int) -> str:
    return f"{DISPERSER_PREFIX}{index}"


@ray.remote(max_restarts=-1, max_task_retries=0)
class Disperser:
    """Encodes, batches, certifies and tracks blobs; retrieves them from DA nodes."""

    def __init__(self, config_dict: dict, index: int, data_dir: str) -> None:
        self.config = config_from_dict(config_dict)
        bls.use(self.config.da.bls_backend)  # a DA process does DA work only
        self.index = index
        self.account = disperser_account(self.config.devnet.key_seed, index)
        self.store = DisperserStore(node_data_dir(data_dir, self.config.data_dir_per_node)
                                    / f"da-disperser-{index}", index,
                                    self.config.lmdb_map_mb)
        self.networks = DisperserNetworks(self.config, index, self.account)
        self.routes = self.networks.routes
        da = self.config.da
        self.queue = BatchQueue(da.batch_interval_s, da.batch_max_blobs, da.batch_max_bytes,
                                da.batches_signing)
        self.pool: Any = None
        self.certificates: dict[int, int] = {}  # {network id: certificates sent}
        self.latencies: list[float] = []
        self.confirmed_bytes = 0  # payload bytes certified since start (`zg status` MB/s)
        self.nodes = DANodes(self.config)  # which DA nodes count, for admission and batches
        self._tasks: list[asyncio.Task] = []
        self._starting: asyncio.Task | None = None
        self._start_lock = asyncio.Lock()
        self._inflight: set[asyncio.Task] = set()
        self.epoch_interval_s = da.epoch_interval_s
        self._rotator: asyncio.Task | None = None
        self.rotations = 0
        # Status changes for the gateway's cache (da/status.py); new process, new feed.
        self.feed = StatusFeed()
        self.metrics = Metrics(DA_METRICS)

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
            if self.pool is None:
                from zg_actors.erasure.actors import EncoderPool

                self.pool = await asyncio.get_running_loop().run_in_executor(
                    None, EncoderPool, self.config.codec)
            if self.networks.epoch is None:
                current = await ray.get_actor(STAKING_ACTOR_NAME).da_current_epoch.remote()
                if current < 0:
                    raise Unavailable("no DA epoch is sealed yet: run deploy_da", epochs=0)
                self.networks.epoch = current
            await self.networks.refresh()
            if not self._tasks:
                await self.nodes.probe()  # admission needs to know which nodes are up
                self._tasks = [self._spawn(self.networks.refresh_forever()),
                               self._spawn(self._batches_forever()),
                               self._spawn(self.nodes.probe_forever()),
                               self._spawn(self._resume())]
                if self.index == 0 and self.epoch_interval_s > 0:
                    await self.set_epoch_interval(self.epoch_interval_s)
            return {"epoch": self.networks.epoch, "networks": self.routes.networks}

    def _spawn(self, coroutine: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return task

    async def _resume(self) -> None:
        """Take up the blobs a previous process acknowledged and did not finish: follow
        a certificate already on chain, or encode the persisted payload and batch it
        again in its own (network, epoch, quorum)."""
        unfinished, self.store.unfinished = self.store.unfinished, []
        deadline = time.time() + self.config.da.confirm_timeout_s
        while unfinished:
            key = unfinished.pop()
            record = self.store.record(key)
            header = BlobHeader.decode(bytes.fromhex(record["header"]))
            pending = PendingBlob(header, None, record["created"], record["status"])
            if header.network_id not in self.routes:
                self._finish([pending], BlobStatus.FAILED, f"network {header.network_id} "
                             "was retired before the blob was certified")
                continue
            try:
                on_chain = BlobStatus(await self.networks.blob_status(header.network_id, key))
            except Unavailable as exc:  # its validators busy or restarting: again later
                if time.time() > deadline:
                    self._finish([pending], BlobStatus.FAILED, str(exc)[:300])
                else:
                    unfinished.insert(0, key)
                    await asyncio.sleep(POLL_INTERVAL_S)
                continue
            payload = self.store.payload(key)
            action, why = resume_action(on_chain, payload is not None)
            if action == Resume.FAIL:
                self._finish([pending], BlobStatus.FAILED, why)
                continue
            if action == Resume.REDISPERSE:
                assert payload is not None
                [pending.blob] = await encode_blobs(
                    self.pool, [np.frombuffer(payload, dtype=np.uint8)], self.config.da.k,
                    self.config.da.n)
                if pending.blob.data_root != header.data_root:  # a damaged payload record
                    self._finish([pending], BlobStatus.FAILED, "the persisted payload no "
                                 "longer encodes to the blob's data root")
                    continue
            self.routes.add(header.network_id)
            if action == Resume.TRACK:
                self._spawn(self._track(header.network_id, [pending]))
            else:
                self.queue.add((header.network_id, header.epoch, header.quorum_id), pending,
                               time.time())
            log.info("disperser %d: resumed blob 0x%s (%s)", self.index, key.hex()[:12],
                     action.value)

    async def use_epoch(self, epoch: int) -> dict:
        """Send new blobs to `epoch` once its registry is on every network we route to;
        batches already open finish in the epoch they started in."""
        await self.networks.use_epoch(epoch)
        return {"epoch": epoch, "networks": self.routes.networks}

    async def set_batching(self, interval_s: float | None = None, max_blobs: int | None = None,
                           max_bytes: int | None = None) -> dict:
        """Seal batches at these limits from now on (da.batch_interval_s, batch_max_blobs,
        batch_max_bytes at start; None keeps one): longer and bigger fill batches of big
        blobs, so one certificate (and its BLS work) covers more bytes."""
        return self.queue.set_limits(interval_s, max_blobs, max_bytes)

    # ---- epoch rotation on a timer ----------------------------------------------------
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
        from zg_actors.da.deploy import next_epoch, running_dispersers  # deploy.py starts us

        epoch = await next_epoch(self.nodes.handles(), running_dispersers(self.config))
        self.rotations += 1
        log.info("disperser %d: rotated to DA epoch %d", self.index, epoch)
        return epoch

    # ---- dispersal -------------------------------------------------------------------
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
        if self.pool is None or not self.routes.networks:
            await self.start()
        da = self.config.da
        routes = await asyncio.gather(*[self._route(data) for data in blobs],
                                      return_exceptions=True)
        ok = [i for i, route in enumerate(routes) if not isinstance(route, BaseException)]
        try:
            for route in routes:
                if isinstance(route, BaseException) and not isinstance(route, ZgError):
                    raise route  # a bug, not a refused blob: fail loudly
            encoded = dict(zip(ok, await encode_blobs(self.pool, [blobs[i] for i in ok],
                                                      da.k, da.n), strict=True))
        except BaseException:
            for i in ok:  # none of them is queued: they no longer load their network
                self.routes.release(routes[i][0])
            raise
        now = time.time()
        answers: list[dict | ZgError] = []
        accepted: list[tuple[PendingBlob, bytes]] = []
        for i, route in enumerate(routes):
            if isinstance(route, ZgError):
                answers.append(route)
                continue
            network_id, quorum_id = route
            blob = encoded[i]
            header = BlobHeader(blob.data_root, len(blobs[i]), self.networks.epoch, quorum_id,
                                network_id)
            accepted.append((PendingBlob(header, blob, now), blobs[i].tobytes()))
            answers.append(status_of(header, BlobStatus.PROCESSING, ""))
        if accepted:
            try:  # persisted before any request id is answered: _resume takes them up
                self.store.accept(accepted)
            except Overloaded:
                for pending, _ in accepted:
                    self.routes.release(pending.header.network_id)
                raise
            self.feed.publish([a for a in answers if isinstance(a, dict)])
            for pending, _ in accepted:
                self.metrics.inc("zg_da_blobs", network_id=pending.header.network_id,
                                 status=BlobStatus.PROCESSING.name)
        for pending, _ in accepted:
            header = pending.header
            self.queue.add((header.network_id, header.epoch, header.quorum_id), pending, now)
        return answers

    async def _route(self, data: np.ndarray) -> tuple[int, int]:
        """Check one blob and pick its (network, quorum); typed errors refuse it."""
        da = self.config.da
        check_size(len(data), da.max_blob_bytes)
        if len(self.queue) + self.routes.in_flight() >= da.max_pending_blobs:
            raise Overloaded(f"disperser {self.index} has {da.max_pending_blobs} blobs in "
                             "flight; retry later", pending=da.max_pending_blobs)
        network_id = self.routes.route()
        try:
            registry, quorums = await self.networks.quorums(network_id)
            quorum_id = self.routes.next_quorum(len(quorums))
            quorum = quorums[quorum_id]
            check_quorum_live(quorum, self.nodes.live_signers(quorum, registry),
                              self.nodes.why_down(registry),
                              f"quorum {quorum_id} of DA epoch {self.networks.epoch} on "
                              f"network {network_id}")
        except BaseException:
            self.routes.release(network_id)
            raise
        return network_id, quorum_id

    async def _batches_forever(self) -> None:
        while True:
            await asyncio.sleep(min(0.05, self.queue.interval_s / 4))
            for key in self.queue.due(time.time()):
                self._spawn(self._certify(key, self.queue.pop(key)))

    async def _certify(self, key: BatchKey, blobs: list[PendingBlob]) -> None:
        network_id = key[0]
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
            self.routes.release(network_id, len(blobs))
            return
        await self._track(network_id, blobs)

    async def _gather_and_submit(self, key: BatchKey,
                                 blobs: list[PendingBlob]) -> tuple[BlobStatus, str]:
        """Send the batch's slices to the quorum's DA nodes, certify with the signatures
        that count; (CONFIRMED, "") once the certificate tx is in, else
        (INSUFFICIENT_SIGNATURES, which slots are missing and why)."""
        network_id, epoch, quorum_id = key
        registry, quorum = await self.networks.epoch_quorum(network_id, epoch, quorum_id)
        batch = Batch(network_id, epoch, quorum_id, tuple(p.header for p in blobs))
        encoded = [p.blob for p in blobs if p.blob is not None]
        if len(encoded) != len(blobs):
            raise InvalidInput("a batch's slices were already sent", blobs=len(blobs))
        for pending in blobs:  # sign() frees the slices (3x the blob) once they are sent
            pending.blob = None
        tally = await self.nodes.sign(batch, registry, quorum, encoded,
                                      self.account.sign_hash(batch.sign_bytes))
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
        await self.networks.send_tx(network_id, "certify", [cert.encode()])
        self.certificates[network_id] = self.certificates.get(network_id, 0) + 1
        self.metrics.observe("zg_da_batch_signatures", len(signers), network_id=network_id)
        return BlobStatus.CONFIRMED, ""

    async def _track(self, network_id: int, blobs: list[PendingBlob]) -> None:
        """Follow the batch's blobs on the network until FINALIZED (or time out: FAILED)."""
        confirmed = False
        try:
            async for status in self.networks.blob_statuses(
                    network_id, blobs[0].header.key, self.config.da.confirm_timeout_s):
                if status == BlobStatus.CONFIRMED and not confirmed:
                    confirmed = True
                    self._finish(blobs, status, "")
                if status in (BlobStatus.FINALIZED, BlobStatus.FAILED):
                    self._finish(blobs, status, "")
                    return
            self._finish(blobs, BlobStatus.FAILED, "certificate not final before the timeout")
        finally:
            self.routes.release(network_id, len(blobs))

    def _finish(self, blobs: list[PendingBlob], status: BlobStatus, error: str) -> None:
        now = time.time()
        self.store.finish(blobs, status, error, now)
        if status == BlobStatus.FINALIZED:
            self.latencies += [now - pending.created for pending in blobs]
            del self.latencies[:-LATENCIES_KEPT]
        for pending in blobs:
            network_id = pending.header.network_id
            self.metrics.inc("zg_da_blobs", network_id=network_id, status=status.name)
            if status == BlobStatus.CONFIRMED:
                self.confirmed_bytes += pending.header.size
                self.metrics.inc("zg_da_dispersed_bytes", pending.header.size,
                                 network_id=network_id)
                self.metrics.observe("zg_da_certificate_latency_seconds",
                                     now - pending.created, network_id=network_id)
        self.feed.publish([status_of(p.header, status, error) for p in blobs])

    async def status_changes(self, since: int, wait_s: float = 0.0) -> dict:
        """Status changes after `since` (StatusFeed.since; -1: where the feed is now),
        waiting up to `wait_s` for one when there is none yet (a long poll)."""
        self._ensure_started()
        return await self.feed.wait_since(since, min(wait_s, DA_CALL_TIMEOUT_S))

    # ---- queries and retrieval -------------------------------------------------------
    async def status(self, request_id: bytes) -> Status:
        self._ensure_started()
        return self.store.status(request_id)

    async def find(self, data_root: bytes, epoch: int, quorum_id: int) -> bytes:
        return self.store.find(data_root, epoch, quorum_id)

    async def retrieve(self, request_id: bytes) -> np.ndarray:
        """Ask the quorum's DA nodes in parallel; decode once k slices verified."""
        if self.pool is None:
            await self.start()
        header = self.store.header(request_id)
        registry, quorum = await self.networks.epoch_quorum(header.network_id, header.epoch,
                                                            header.quorum_id)
        k, n = self.config.da.k, self.config.da.n
        good = await self.nodes.slices(header, registry, quorum)
        if len(good) < k:
            raise Unavailable(f"only {len(good)} verified slices of blob 0x"
                              f"{request_id.hex()[:16]} reachable, need {k}",
                              have=len(good), need=k)
        chosen = dict(sorted(good.items())[:k])
        payload = await self.pool.decode_async(chosen, k, n - k, header.size)
        return np.frombuffer(payload, dtype=np.uint8)

    async def stats(self) -> dict:
        self._ensure_started()
        counts = {s: c for s, c in self.store.status_counts.items() if c}
        return {"index": self.index, "epoch": self.networks.epoch,
                "networks": self.routes.networks, "load": dict(self.routes.load),
                "certificates": dict(self.certificates),
                "statuses": {BlobStatus(s).name: c for s, c in counts.items()},
                "confirmed_bytes": self.confirmed_bytes,
                "latencies": list(self.latencies), "queued": len(self.queue),
                "nodes_down": dict(self.nodes.liveness.down),
                "epoch_rotations": self.rotations,
                "rotating": self._rotator is not None and not self._rotator.done()}
