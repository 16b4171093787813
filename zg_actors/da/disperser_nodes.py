"""A disperser's side of the DA nodes: their handles, which of them are live, a batch's
slices out to the quorum and its signatures back, slices back for a retrieval."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import ray

from zg_actors.config import Config
from zg_actors.da.blob import BlobHeader, EncodedBlob
from zg_actors.da.certificate import Batch
from zg_actors.da.dispersal import (
    NodeLiveness,
    SignatureTally,
    collect_signatures,
    slices_for,
    slots_by_signer,
    verified_slices,
)
from zg_actors.da.keys import da_signer_identity
from zg_actors.da.node_actor import da_node_name
from zg_actors.da.quorum import EpochRegistry, Quorum

DA_CALL_TIMEOUT_S = 10.0  # a call to a DA node or disperser not answered by then has failed
PROBE_INTERVAL_S = 1.0  # how often a disperser asks each DA node whether it is up


class DANodes:
    """The deployment's DA nodes as one disperser sees them (NodeLiveness: which count)."""

    def __init__(self, config: Config) -> None:
        self.count = config.da.nodes
        self.k, self.n = config.da.k, config.da.n
        self.signature_deadline_s = config.da.signature_deadline_s
        self.signature_wait_max_s = config.da.signature_wait_max_s
        seed = config.devnet.key_seed
        # {signer address: DA node index}
        self.node_of = {da_signer_identity(seed, i).address: i for i in range(self.count)}
        self.liveness = NodeLiveness()
        self._handles: dict[int, Any] = {}

    def handle(self, index: int | None) -> Any:
        """A DA node's handle, looked up once (a blocking GCS call) and kept: Ray restarts
        an actor behind its handle. None while the node's name is not registered."""
        if index is None:
            return None
        if index not in self._handles:
            try:
                self._handles[index] = ray.get_actor(da_node_name(index))
            except ValueError:
                return None
        return self._handles[index]

    def handles(self) -> list[Any]:
        """The handles of every DA node whose name is registered."""
        return [h for i in range(self.count) if (h := self.handle(i)) is not None]

    def forget(self, node: int, exc: BaseException) -> None:
        """After a failed call: a node gone for good is looked up by name again (Ray
        restarts a crashed one behind the same handle)."""
        if isinstance(exc, ray.exceptions.RayActorError):
            self._handles.pop(node, None)

    def signer_node(self, registry: EpochRegistry, signer: int) -> int | None:
        return self.node_of.get(registry.signers[signer].address)

    def live_signers(self, quorum: Quorum, registry: EpochRegistry) -> set[int]:
        return self.liveness.live_signers(quorum, registry, self.node_of)

    def why_down(self, registry: EpochRegistry) -> dict[int, str]:
        return self.liveness.why_down(registry, self.node_of)

    async def probe_forever(self) -> None:
        while True:
            await asyncio.sleep(PROBE_INTERVAL_S)
            await self.probe()

    async def probe(self) -> None:
        """Ask every DA node for its status: one that is not running, or whose call fails
        or is not answered within DA_CALL_TIMEOUT_S, is down until it answers again."""
        async def probe(node: int) -> None:
            handle = self.handle(node)
            if handle is None:
                self.liveness.failed(node, "not running")
                return
            try:
                await asyncio.wait_for(handle.status.remote(), DA_CALL_TIMEOUT_S)
            except Exception as exc:  # dead, restarting, or hung
                self.forget(node, exc)
                self.liveness.failed(node, f"not answering ({type(exc).__name__})")
                return
            self.liveness.answered(node)

        await asyncio.gather(*[probe(i) for i in range(self.count)])

    async def sign(self, batch: Batch, registry: EpochRegistry, quorum: Quorum,
                   blobs: list[EncodedBlob], disperser_signature: bytes) -> SignatureTally:
        """Send each live member of the quorum its slices of the batch's blobs and tally
        the signatures that come back (dispersal.collect_signatures)."""
        headers = [h.encode() for h in batch.blobs]
        roots = [b.roots_bytes for b in blobs]  # the same n roots go to every node
        waiting: dict[asyncio.Future, tuple[int, int]] = {}  # {store_batch: (signer, node)}
        why_down = self.why_down(registry)
        for signer, slots in slots_by_signer(quorum).items():
            node = self.signer_node(registry, signer)
            handle = self.handle(node) if self.liveness.is_live(node) else None
            if node is None or handle is None:
                continue  # down: not asked, not counted (its reason is in why_down)
            ref = handle.store_batch.remote(batch.network_id, batch.epoch, batch.quorum_id,
                                            headers, slots, [slices_for(b, slots) for b in blobs],
                                            roots, disperser_signature)
            waiting[asyncio.ensure_future(asyncio.wrap_future(ref.future()))] = (signer, node)
        blobs.clear()  # the calls hold copies: the caller frees the slices (3x the blob)
        asked = {signer for signer, _ in waiting.values()}
        tally = SignatureTally(quorum, waiting=set(asked),
                               missed={s: why_down.get(s, "not reachable")
                                       for s in quorum.members if s not in asked})
        await collect_signatures(waiting, tally, self.liveness, self.signature_deadline_s,
                                 self.signature_wait_max_s, PROBE_INTERVAL_S, self.forget)
        return tally

    async def slices(self, header: BlobHeader, registry: EpochRegistry,
                     quorum: Quorum) -> dict[int, np.ndarray]:
        """Verified slices of the blob from the quorum's DA nodes, asked in parallel: at
        least k once k verified, else as many as came back in time."""
        futures = []
        for signer in quorum.members:
            handle = self.handle(self.signer_node(registry, signer))
            if handle is not None:
                futures.append(asyncio.ensure_future(asyncio.wrap_future(
                    handle.get_slices.remote(header.key).future())))
        good: dict[int, np.ndarray] = {}
        for future in asyncio.as_completed(futures, timeout=DA_CALL_TIMEOUT_S * 2):
            try:
                served = await future
            except Exception:
                continue
            good.update(verified_slices(header, self.n, served))
            if len(good) >= self.k:
                break
        for future in futures:
            future.cancel()
        return good
