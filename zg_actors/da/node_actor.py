"""The DANode Ray actor (one per DA signer): messaging, timers and persistence around
its core, DANodeStore (da/node_store.py).

A DANode accepts a batch's slices only from a disperser with a deposit on the
batch's network, checks them against its slots of the epoch's quorum (the store
checks slots, shapes and proofs), persists them, and only then signs the batch
root. It answers sampling rounds for the newest blobs it holds and prunes what is
past retention.
"""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np
import ray

from zg_actors.chain.tx import make_tx
from zg_actors.config import ZG, config_from_dict
from zg_actors.crypto import bls
from zg_actors.crypto.accounts import recover_address
from zg_actors.da.blob import BlobHeader
from zg_actors.da.certificate import Batch
from zg_actors.da.chains import NetworkChains
from zg_actors.da.errors import NotADisperser
from zg_actors.da.keys import da_signer_identity
from zg_actors.da.node_store import DANodeStore, Held
from zg_actors.da.quorum import EpochRegistry, epoch_message
from zg_actors.errors import Unavailable
from zg_actors.metrics import DA_METRICS, Metrics
from zg_actors.placement import node_data_dir
from zg_actors.staking.actors import STAKING_ACTOR_NAME
from zg_actors.staking.ledger import C0_NETWORK_ID

log = logging.getLogger(__name__)

DA_NODE_PREFIX = "zg-da-node-"
PRUNE_INTERVAL_S = 10.0
SAMPLE_INTERVAL_S = 2.0  # how often a DA node looks for a new sampling round
SAMPLE_ANSWERS_PER_ROUND = 4  # answers a node sends per round and network (0G caps 40 total)


def da_node_name(index: int) -> str:
    return f"{DA_NODE_PREFIX}{index}"


@ray.remote(max_restarts=-1, max_task_retries=0)
class DANode:
    """One DA signer: verifies, persists and signs for its slots; serves them back."""

    def __init__(self, config_dict: dict, index: int, data_dir: str) -> None:
        self.config = config_from_dict(config_dict)
        bls.use(self.config.da.bls_backend)  # a DA process does DA work only
        self.index = index
        self.identity = da_signer_identity(self.config.devnet.key_seed, index)
        self.store = DANodeStore(node_data_dir(data_dir, self.config.data_dir_per_node)
                                 / f"da-node-{index}", index,
                                 self.config.da.k, self.config.da.n, self.config.lmdb_map_mb)
        self.chains = NetworkChains(prefer=index + 1)  # dispersers start at the first
        self._dispersers: set[tuple[int, bytes]] = set()
        self._pruner: asyncio.Task | None = None
        self._sampler: asyncio.Task | None = None
        self._answered_round: dict[int, int] = {}  # {network id: last round answered}
        self.batches_signed = 0
        self.answers_sent = 0
        self.metrics = Metrics(DA_METRICS, node=index)
        self.metrics.set("zg_da_node_blobs", self.store.blobs())

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
        sent = 0
        for network_id in self.store.networks():
            try:
                round_info = await self.chains(network_id).query("da", "sampling")
            except Unavailable:
                continue  # a retired network
            if round_info["round"] <= self._answered_round.get(network_id, 0):
                continue
            self._answered_round[network_id] = round_info["round"]
            answers = self.store.sampling_answers(network_id, round_info["seed"],
                                                  round_info["target"],
                                                  SAMPLE_ANSWERS_PER_ROUND)
            if answers:
                await self.chains(network_id).send_batch(
                    self.identity.account, [("da", "sample", args) for args in answers])
                sent += len(answers)
        self.answers_sent += sent
        return sent

    async def _prune_forever(self) -> None:
        while True:
            await asyncio.sleep(PRUNE_INTERVAL_S)
            self.prune(time.time() - self.config.da.retention_s)

    def prune(self, before: float) -> int:
        """Delete slices of blobs stored before `before` (unix seconds): past retention."""
        pruned = self.store.prune(before)
        self.metrics.set("zg_da_node_blobs", self.store.blobs())
        return pruned

    async def register(self) -> None:
        """Register this signer at C0 with its stake and a BLS proof of possession."""
        staking = ray.get_actor(STAKING_ACTOR_NAME)
        pop = await asyncio.get_running_loop().run_in_executor(
            None, bls.pop_prove, self.identity.bls_secret)
        nonce = await staking.nonce_of.remote(self.identity.address)
        tx = make_tx(self.identity.account, C0_NETWORK_ID, nonce, "staking",
                     "register_da_signer",
                     [self.identity.bls_pubkey, pop, self.config.da.node_stake_zg * ZG])
        await staking.submit_tx.remote(tx.encoded)

    async def join_epoch(self, epoch: int) -> bytes:
        """Sign the epoch seed (the VRF input of this signer's tickets) and hand it to C0."""
        staking = ray.get_actor(STAKING_ACTOR_NAME)
        registry = EpochRegistry.decode(await staking.da_epoch_registry.remote(epoch))
        signature = bls.sign(self.identity.bls_secret, epoch_message(epoch, registry.seed))
        await staking.da_submit_ticket.remote(epoch, self.identity.address, signature)
        return signature

    async def _check_disperser(self, network_id: int, disperser: bytes) -> None:
        """Registered dispersers are the ones with a deposit on the batch's network: they
        lose it if they commit to a bad encoding."""
        if (network_id, disperser) in self._dispersers:
            return
        deposit = await self.chains(network_id).query("da", "deposit", disperser)
        if deposit < self.config.da.disperser_deposit:
            raise NotADisperser(f"0x{disperser.hex()} has deposited {deposit} on network "
                                f"{network_id}, not a registered disperser",
                                disperser=disperser, deposit=deposit)
        self._dispersers.add((network_id, disperser))

    async def store_batch(self, network_id: int, epoch: int, quorum_id: int,
                          headers: list[bytes], slots: list[int], slices: list[np.ndarray],
                          slice_roots: list[bytes], disperser_signature: bytes) -> bytes:
        """Verify and persist this node's slices of every blob of the batch, then return
        its BLS signature of the batch root (DANodeStore.verify_batch says what is
        checked)."""
        self._ensure_pruning()
        batch = Batch(network_id, epoch, quorum_id,
                      tuple(BlobHeader.decode(h) for h in headers))
        disperser = recover_address(batch.sign_bytes, disperser_signature)
        await self._check_disperser(network_id, disperser)
        registry, quorum = await self.chains.epoch_quorum(network_id, epoch, quorum_id)
        mine = quorum.slots_of(registry.index_of(self.identity.address))
        verified = self.store.verify_batch(batch, mine, slots, slices, slice_roots)
        stored_at = int(time.time() * 1000)  # unix ms
        # In a thread: with py_ecc a signature takes ~0.2 s, which would stall this
        # node's other calls (pure Python still yields the GIL every few ms).
        signature = await asyncio.get_running_loop().run_in_executor(
            None, bls.sign, self.identity.bls_secret, batch.sign_bytes)
        self.store.put_batch(verified, signature, stored_at)  # persisted before it leaves
        self.batches_signed += 1
        self.metrics.inc("zg_da_node_slices_stored", len(verified.rows) * len(verified.slots))
        self.metrics.set("zg_da_node_blobs", self.store.blobs())
        return signature

    async def get_slices(self, blob_key: bytes) -> Held:
        """{slot: (slice, proof)} of every slot of the blob this node stores."""
        return self.store.held(blob_key)

    async def status(self) -> dict:
        return {"index": self.index, "address": self.identity.address,
                "blobs": self.store.blobs(), "batches_signed": self.batches_signed,
                "sampling_answers_sent": self.answers_sent,
                "path": str(self.store.path)}
