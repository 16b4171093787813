"""StorageMiner: the Ray shell around a miner's core (miner.py).

It owns the LMDB store, asks the network's validators for the on-chain root of
an entry before accepting any segment, acknowledges only after the shard is
synced to disk, confirms complete entries on chain in the background, and
rebuilds missing shards from the other miners.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray

from zg_actors import runtime
from zg_actors.chain.client import ChainClient, TxRefused
from zg_actors.config import ZG, Config, config_from_dict
from zg_actors.crypto.keccak import keccak256
from zg_actors.crypto.merkle import proof_from_list
from zg_actors.errors import Unavailable, ZgError
from zg_actors.metrics import STORAGE_METRICS, Metrics
from zg_actors.placement import MINER_RESOURCE, control_options, node_data_dir, role_options
from zg_actors.storage.constants import SECTOR_BYTES, SECTORS_PER_SEGMENT, SEGMENT_BYTES
from zg_actors.storage.errors import DataUnavailable, UnknownEntry, WrongEntry
from zg_actors.storage.file import sector_roots, segment_count
from zg_actors.storage.flow import node_positions
from zg_actors.storage.miner import (
    EntryRef,
    MinerStore,
    Redundancy,
    collect_shards,
    rebuild_segment,
    unpack_deliveries,
)
from zg_actors.storage.placement import miner_account, shard_miner
from zg_actors.storage.pora import FlowReplica, miner_id, search, subtask_opens
from zg_actors.storage.repair import ShortageClock, plan_repairs

log = logging.getLogger(__name__)
CALL_TIMEOUT_S = 20.0  # a peer miner that does not answer in this time is skipped
TX_COMMIT_WAIT_S = 20.0  # a miner's txs not committed by then are sent again next round
CONFIRM_INTERVAL_S = 0.5  # how often pending confirmations are sent on chain
ENTRY_WAIT_S = 30.0  # how long shards sent ahead of their submission wait for its commit
REBUILD_TIMEOUT_S = 120.0  # one miner's rebuilds of one entry in a repair round
REPAIRER_NAME = "zg-storage-repairer"
REPAIRER_NUM_CPUS = 0.05  # it plans and calls; the miners do the decoding
REPAIRER_CONCURRENCY = 4  # status and repair() calls answer while a round runs
TREE_TASK_NUM_CPUS = 0.25  # a file-tree piece is pure hashing: one core's worth at most


def miner_name(index: int) -> str:
    return f"zg-storage-miner-{index}"


def redundancy_of(config: Config) -> Redundancy:
    s = config.storage
    if s.replication_factor:  # whole copies: one "data shard", the other copies its twins
        return Redundancy(s.miners, 1, s.replication_factor - 1, replicated=True)
    return Redundancy(s.miners, s.data_shards, s.parity_shards)


@ray.remote(max_restarts=-1, max_task_retries=0)
class StorageMiner:
    """Miner `index`: keeps the shards assigned to it (docs/spec/storage.md "Redundancy")."""

    def __init__(self, config_dict: dict, index: int, data_dir: str) -> None:
        self.config = config_from_dict(config_dict)
        self.index = index
        self.redundancy = redundancy_of(self.config)
        self.account = miner_account(self.config.devnet.key_seed, index)
        self.core = MinerStore(
            node_data_dir(data_dir, self.config.data_dir_per_node) / "storage" / f"miner-{index}",
            index, self.redundancy, self.config.lmdb_map_mb)
        self._chains: dict[int, ChainClient] = {}
        self._entries: dict[tuple[int, int], EntryRef] = {}
        self._entry_lookups: dict[tuple[int, int], asyncio.Future] = {}
        self._confirm_task: asyncio.Task | None = None
        self.rejected = 0
        self._tx_lock = asyncio.Lock()
        self._flow: dict[int, bytearray] = {}  # {network: the flow's bytes this miner rebuilt}
        self._flow_entries: dict[int, int] = {}  # {network: entries placed in _flow}
        self._sources: dict[int, set[int]] = {}  # {network: loads whose source is registered}
        self._sealed: dict[tuple[int, int], dict] = {}  # {(network, epoch): sealed loads}
        self.mining = {"iterations": 0, "seconds": 0.0, "answers": 0}  # totals since start
        self.metrics = Metrics(STORAGE_METRICS, miner=index)
        self._stored(0)

    async def ping(self) -> int:
        self._ensure_confirmer()
        return self.index

    def _stored(self, shards: int) -> None:
        """`shards` more shards persisted: counted, and the store's total shown."""
        self.metrics.inc("zg_storage_segments_stored", shards)
        self.metrics.set("zg_storage_segments_held", self.core.stats()["shards"])

    # ---- chain access -------------------------------------------------------------------
    def _chain(self, network_id: int) -> ChainClient:
        """The network's chain client; miners spread their reads over its validators."""
        if network_id not in self._chains:
            self._chains[network_id] = ChainClient(network_id, prefer=self.index)
        return self._chains[network_id]

    async def _entry(self, network_id: int, tx_seq: int, wait_s: float = 0.0) -> EntryRef:
        """The entry's root and size as the chain records them (immutable once submitted);
        with `wait_s`, an entry not committed yet is waited for that long. Concurrent
        callers (one per window of an upload) share one lookup."""
        key = (network_id, tx_seq)
        deadline = time.monotonic() + wait_s
        while key not in self._entries:
            lookup = self._entry_lookups.get(key)
            if lookup is None or lookup.done():
                lookup = asyncio.ensure_future(self._look_up_entry(
                    network_id, tx_seq, max(0.0, deadline - time.monotonic())))
                self._entry_lookups[key] = lookup
                lookup.add_done_callback(lambda _done, k=key: self._entry_lookups.pop(k, None))
            try:
                await asyncio.shield(lookup)
            except UnknownEntry:  # that lookup gave up sooner than this caller would
                if time.monotonic() >= deadline:
                    raise
        return self._entries[key]

    async def _look_up_entry(self, network_id: int, tx_seq: int, wait_s: float) -> None:
        """Ask for the entry after each new block (Validator.wait_height) until `wait_s`."""
        deadline = time.monotonic() + wait_s
        chain = self._chain(network_id)
        height = 0
        while True:
            try:
                info = await chain.query("flow", "entry", tx_seq)
                break
            except UnknownEntry:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                height = await chain.wait_height(height + 1, left)
        self._entries[(network_id, tx_seq)] = EntryRef(network_id, tx_seq, info["root"],
                                                       info["size"])

    # ---- uploads ------------------------------------------------------------------------
    async def store_segment(self, network_id: int, tx_seq: int, index: int,
                            segment: np.ndarray, proof: list) -> dict:
        """Verify segment `index` against the on-chain root, persist this miner's shard, ack."""
        self._ensure_confirmer()
        entry = await self._entry(network_id, tx_seq)
        try:
            shard = self.core.accept_segment(entry, index, segment, proof_from_list(proof))
        except ZgError:
            self.rejected += 1
            raise
        self._stored(1)
        return {"miner": self.index, "segment": index, "shard": shard}

    async def store_shards(self, network_id: int, tx_seq: int, root: bytes, size: int,
                           rows: np.ndarray, deliveries: list[list]) -> dict:
        """Store this miner's shard of several segments of entry `tx_seq` in one call and
        one synced LMDB write; the answer is the acknowledgement.

        `rows` packs the data rows of every delivery, in order; each delivery is
        [segment index, [data row indexes], row bytes, subtree roots, segment proof]
        (miner.ShardDelivery): a data miner gets its own row and the k subtree roots, a
        parity miner all k rows. The shards are checked against `root` and `size` as
        soon as they arrive, so a client may send them while its submission is being
        committed; they are stored only once the chain records that root at `tx_seq`
        (WrongEntry if it records another).
        """
        self._ensure_confirmer()
        claimed = EntryRef(network_id, tx_seq, bytes(root), int(size))
        try:
            parsed = unpack_deliveries(rows, deliveries)
            verified = self.core.verify_deliveries(claimed, parsed)
            entry = await self._entry(network_id, tx_seq, wait_s=ENTRY_WAIT_S)
            if (entry.root, entry.size) != (claimed.root, claimed.size):
                raise WrongEntry(f"network {network_id} records root 0x{entry.root.hex()} of "
                                 f"{entry.size} bytes at tx sequence {tx_seq}, not "
                                 f"0x{claimed.root.hex()} of {claimed.size} bytes",
                                 tx_seq=tx_seq, root=claimed.root)
            self.core.put_shards(entry, verified)
        except ZgError:
            self.rejected += 1
            raise
        self._stored(len(verified))
        return {"miner": self.index, "segments": [d.index for d in parsed],
                "shards": [shard for _, shard, _, _ in verified]}

    def _ensure_confirmer(self) -> None:
        if self._confirm_task is None or self._confirm_task.done():
            self._confirm_task = asyncio.get_running_loop().create_task(self._confirm_loop())

    async def _confirm_loop(self) -> None:
        """Send `flow.confirm` for complete entries; drop them from LMDB once on chain."""
        while True:
            await asyncio.sleep(CONFIRM_INTERVAL_S)
            try:
                await self._confirm_pending()
            except Exception as exc:  # a validator restarting: try again next round
                log.warning("miner %d: confirmation round failed: %s", self.index, exc)

    async def _confirm_pending(self) -> None:
        by_network: dict[int, list[int]] = {}
        for network_id, tx_seq in self.core.pending_confirmations():
            by_network.setdefault(network_id, []).append(tx_seq)
        for network_id, seqs in by_network.items():
            chain = self._chain(network_id)
            done = []
            for tx_seq in seqs:
                info = await chain.query("flow", "entry", tx_seq)
                if self.index in info["confirmed_by"]:
                    done.append((network_id, tx_seq))
            self.core.confirmed(done)
            todo = [s for s in seqs if (network_id, s) not in done]
            if not todo:
                continue
            await self._send_txs(network_id, [("flow", "confirm", [s]) for s in todo])

    async def _send_txs(self, network_id: int, calls: list[tuple[str, str, list]]) -> None:
        """Sign and submit txs, then wait for their inclusion: one batch at a time, so
        confirmations and PoRA answers never reuse a nonce."""
        async with self._tx_lock:
            chain = self._chain(network_id)
            try:
                txs = await chain.send_batch(self.account, calls)
                await chain.wait_nonce(self.account.address, txs[-1].nonce, TX_COMMIT_WAIT_S,
                                       f"{calls[0][0]}.{calls[0][1]}")
            except (TxRefused, Unavailable) as exc:  # the next round sends them again
                log.warning("miner %d: txs not committed: %s", self.index, exc)

    # ---- downloads and repair --------------------------------------------------------------
    async def get_shards(self, network_id: int, tx_seq: int,
                         indexes: list[int]) -> list[dict | None]:
        """get_shard for several segments in one call."""
        self._ensure_confirmer()
        return self.core.get_shards(network_id, tx_seq, indexes)

    async def get_shard(self, network_id: int, tx_seq: int, index: int) -> dict | None:
        """This miner's shard of a segment with the segment's proof, or None."""
        self._ensure_confirmer()  # after a restart, pending confirmations resume on first use
        return self.core.get_shard(network_id, tx_seq, index)

    async def holdings(self) -> dict[tuple[int, int], tuple[bytes, int, dict[int, int]]]:
        """What this miner keeps: {(network, tx_seq): (root, size, {segment: shard})}."""
        self._ensure_confirmer()  # the repairer's periodic call resumes a restarted miner
        return self.core.holdings()

    async def rebuild_shards(self, network_id: int, tx_seq: int,
                             rebuilds: list[tuple[int, int, list[int]]]) -> dict:
        """Rebuild shards of entry `tx_seq` that no live miner holds, each given as
        (segment, shard, source miners), from the sources' shards; keep them (synced) and
        return the segments kept and, per segment, why one could not be rebuilt."""
        self._ensure_confirmer()
        entry = await self._entry(network_id, tx_seq)
        by_source: dict[int, list[int]] = {}
        for segment, _, sources in rebuilds:
            for source in sources:
                by_source.setdefault(source, []).append(segment)
        answers = await asyncio.gather(*(self._peer_shards(entry, source, segments)
                                         for source, segments in by_source.items()))
        fetched = collect_shards(zip(by_source.values(), answers, strict=True))
        kept: list[int] = []
        failed: dict[int, str] = {}
        for segment, shard, _ in rebuilds:
            shards, proof = fetched.get(segment, ({}, None))
            try:
                if proof is None:
                    raise DataUnavailable(f"no source returned segment {segment} of entry "
                                          f"{tx_seq}", segment=segment, tx_seq=tx_seq)
                kept += self.core.keep_rebuilt(entry, [(segment, shard, shards, proof)])
            except ZgError as exc:  # this one waits for the next round; the others go on
                failed[segment] = str(exc)
        self._stored(len(kept))
        return {"miner": self.index, "rebuilt": kept, "failed": failed}

    async def _peer_shards(self, entry: EntryRef, peer: int,
                           segments: list[int]) -> list[dict | None]:
        """Peer `peer`'s shards of the given segments; all None if it does not answer."""
        try:
            handle = ray.get_actor(miner_name(peer))
            return await asyncio.wait_for(
                handle.get_shards.remote(entry.network_id, entry.tx_seq, segments),
                CALL_TIMEOUT_S)
        except (TimeoutError, ValueError, ray.exceptions.RayActorError):
            return [None] * len(segments)

    async def _fetch_shards(self, entry: EntryRef, index: int) -> tuple[dict, Any]:
        shards: dict[int, np.ndarray] = {}
        proof = None
        # Every miner in the segment's rotation order: its own miners first, then those
        # that may keep a shard in place of a lost one (repair.rebuild_target).
        for position in range(self.redundancy.miners):
            owner = shard_miner(entry.tx_seq, index, position, self.redundancy.miners)
            got = (self.core.get_shard(entry.network_id, entry.tx_seq, index)
                   if owner == self.index
                   else (await self._peer_shards(entry, owner, [index]))[0])
            if got is not None:
                shards[got["shard"]] = got["data"]
                proof = proof_from_list(got["proof"])
            if len(shards) > self.redundancy.data_shards:
                break
        return shards, proof

    # ---- PoRA mining -------------------------------------------------------------------------
    async def _file_data(self, entry: EntryRef) -> bytes:
        """The padded bytes of an entry, decoded from k shards of each segment."""
        parts = []
        for index in range(entry.segments):
            shards, proof = await self._fetch_shards(entry, index)
            if proof is None:
                raise DataUnavailable(f"no miner holds segment {index} of entry "
                                      f"{entry.tx_seq}", segment=index, tx_seq=entry.tx_seq)
            parts.append(rebuild_segment(entry, index, shards, proof, self.redundancy)[0])
        return b"".join(parts)

    async def _replica(self, network_id: int, length: int) -> FlowReplica:
        """This miner's own copy of the flow's first `length` sectors (synced from peers)."""
        data = await self._sync_flow(network_id, length)
        return FlowReplica(bytes(data[:length * SECTOR_BYTES]))

    async def _sync_flow(self, network_id: int, length: int) -> bytearray:
        data = self._flow.setdefault(network_id, bytearray())
        seq = self._flow_entries.get(network_id, 0)
        chain = self._chain(network_id)
        while len(data) < length * SECTOR_BYTES:
            info = await chain.query("flow", "entry", seq)
            padded = await self._file_data(EntryRef(network_id, seq, info["root"],
                                                    info["size"]))
            data.extend(bytes(max(0, info["end_position"] * SECTOR_BYTES - len(data))))
            offset = 0
            for position, (_, height) in zip(node_positions(info["start_position"],
                                                            info["nodes"]), info["nodes"],
                                             strict=True):
                size = SECTOR_BYTES << height
                chunk = padded[offset:offset + size]
                data[position * SECTOR_BYTES:position * SECTOR_BYTES + len(chunk)] = chunk
                offset += size
            seq += 1
            self._flow_entries[network_id] = seq
        return data

    async def _register_sources(self, network_id: int) -> None:
        """Loads this miner synced from their first holder share its rewards (royalty)."""
        chain = self._chain(network_id)
        loads = len(self._flow.get(network_id, b"")) // SEGMENT_BYTES
        known = self._sources.setdefault(network_id, set())
        new = []
        for load in range(loads):
            if load in known:
                continue
            owner = await chain.query("flow", "royalty_owner", load)
            if owner is not None:
                known.add(load)
                if owner != self.account.address:
                    new.append(load)
        if new:
            await self._send_txs(network_id, [("mine", "register_source", [new])])

    async def mine(self, network_id: int, epochs: int = 1, answers_per_epoch: int = 2,
                   iterations_per_epoch: int = 2_000, timeout_s: float = 120.0) -> dict:
        """Register, then for the next `epochs` mining contexts search nonces over a sealed
        replica and submit the hits to the `mine` module."""
        self._ensure_confirmer()
        chain = self._chain(network_id)
        seed = keccak256(f"zg-storage-miner-seed/{self.index}".encode())
        await self._send_txs(network_id, [("mine", "register", [seed])])
        mid = miner_id(self.account.address, seed)
        epoch_blocks = self.config.storage.blocks_per_epoch
        max_range = self.config.storage.max_mining_range_sectors
        done: list[dict] = []
        deadline = time.time() + timeout_s
        last_epoch = None
        while len(done) < epochs and time.time() < deadline:
            # Sync the whole flow first, so that answering a fresh context is not late.
            try:
                await self._sync_flow(network_id,
                                      (await chain.query("flow", "flow"))["length"])
            except DataUnavailable:  # an entry still uploading: its shards are on the way
                await asyncio.sleep(0.5)
                continue
            await self._register_sources(network_id)
            height = await chain.committed_height()
            epoch = height // epoch_blocks
            context = await chain.query("flow", "context", epoch)
            fresh = context is not None and \
                height - context["height"] <= self.config.storage.answer_window_blocks // 2
            if not fresh or epoch == last_epoch or context["flow_length"] < SECTORS_PER_SEGMENT:
                await asyncio.sleep(0.2)  # wait for a new context: answers to an old one are late
                continue
            last_epoch = epoch
            replica = await self._replica(network_id, context["flow_length"])
            target = await chain.query("mine", "target")
            sealed = self._sealed.setdefault((network_id, epoch), {})
            found, tried, started = [], 0, time.time()
            nonce = 0
            while len(found) < answers_per_epoch and tried < iterations_per_epoch:
                batch = range(nonce, min(nonce + 50, iterations_per_epoch))
                answer, ran = search(replica, mid, context["digest"], epoch, target, max_range,
                                     batch, sealed)
                tried += ran
                nonce = batch.start + ran
                if answer is not None and all(a.recall_position != answer.recall_position
                                              for a in found):
                    found.append(answer)
                await asyncio.sleep(0)  # let downloads and confirmations run between batches
            self.mining["iterations"] += tried
            self.mining["seconds"] += time.time() - started
            if found:
                # Subtasks: this miner's answers count from its own window's first block.
                opens = subtask_opens(context["height"], context["digest"], mid,
                                      self.config.storage.subtask_spread_blocks)
                while await chain.wait_height(opens - 1, TX_COMMIT_WAIT_S) + 1 < opens:
                    pass
                await self._send_txs(network_id, [("mine", "submit_answer", a.to_args())
                                                  for a in found])
            self.mining["answers"] += len(found)
            self.metrics.inc("zg_storage_pora_answers", len(found), network_id=network_id)
            self._sealed.pop((network_id, epoch), None)
            done.append({"epoch": epoch, "iterations": tried, "answers": len(found)})
        paid = await chain.query("mine", "rewards", self.account.address)
        self.metrics.set("zg_storage_rewards", paid / ZG, network_id=network_id)
        return {"miner": self.index, "epochs": done, "rewards_paid": paid, **self.mining}

    async def stats(self) -> dict:
        return {**self.core.stats(), "rejected": self.rejected}


@ray.remote(max_restarts=-1, max_task_retries=0, max_concurrency=REPAIRER_CONCURRENCY)
class StorageRepairer:
    """Restores redundancy without being asked: every storage.repair_interval_s it asks
    the live miners what they keep, plans the rebuilds of shards no live miner holds
    (repair.plan_repairs) and has each target miner rebuild its share from k peers.
    It keeps nothing on disk: the miners' stores are the state it plans from. Its rounds
    run in a thread started by __init__, so a repairer that Ray restarts resumes alone."""

    def __init__(self, config_dict: dict) -> None:
        self.config = config_from_dict(config_dict)
        self.redundancy = redundancy_of(self.config)
        self.clock = ShortageClock(self.config.storage.repair_grace_s)
        self._round_lock = threading.Lock()
        # Totals since start, and the latest round's shortages.
        self.report: dict[str, Any] = {"rounds": 0, "rebuilt": 0, "failed": 0, "short": {},
                                       "lost": {}}
        self.metrics = Metrics(STORAGE_METRICS)
        threading.Thread(target=self._loop, name="storage-repair", daemon=True).start()

    def _loop(self) -> None:
        while True:
            time.sleep(self.config.storage.repair_interval_s)
            try:
                self.repair_round()
            except Exception as exc:  # a miner restarting mid-round: the next round retries
                log.warning("storage repair round failed: %s", exc)

    def repair_round(self, wait: bool = True) -> dict:
        """One round; with wait=False a shard is rebuilt as soon as it is missing (not only
        after storage.repair_grace_s). Returns {"network/tx_seq": {"rebuilt": {miner:
        [segments]}, "failed": {segment: reason}, "lost": [segments]}} for the entries
        it touched."""
        with self._round_lock:
            holdings, live = self._holdings()
            plans = {key: plan_repairs(key[1], segment_count(size), held, live,
                                       self.redundancy)
                     for key, (size, held) in holdings.items()}
            missing = [(*key, r.segment, r.shard) for key, plan in plans.items()
                       for r in plan.rebuilds]
            due = self.clock.due(missing, time.monotonic()) if wait else set(missing)
            calls = []
            for (network_id, tx_seq), plan in plans.items():
                by_miner: dict[int, list[tuple[int, int, list[int]]]] = {}
                for r in plan.rebuilds:
                    if (network_id, tx_seq, r.segment, r.shard) in due:
                        by_miner.setdefault(r.miner, []).append(
                            (r.segment, r.shard, list(r.sources)))
                calls += [((network_id, tx_seq), miner, self._rebuild(network_id, tx_seq,
                                                                      miner, work), work)
                          for miner, work in by_miner.items()]
            out: dict[str, dict] = {}
            for key, miner, ref, work in calls:
                result = self._answer(ref, work)
                entry = out.setdefault(f"{key[0]}/{key[1]}", {"rebuilt": {}, "failed": {}})
                entry["rebuilt"][miner] = result["rebuilt"]
                entry["failed"].update(result["failed"])
                self.report["rebuilt"] += len(result["rebuilt"])
                self.report["failed"] += len(result["failed"])
            for (network_id, tx_seq), plan in plans.items():
                if plan.lost:
                    out.setdefault(f"{network_id}/{tx_seq}", {"rebuilt": {}, "failed": {}})[
                        "lost"] = list(plan.lost)
            self.report["rounds"] += 1
            self.report["short"] = {f"{n}/{s}": len(p.short) for (n, s), p in plans.items()
                                    if p.short}
            self.report["lost"] = {f"{n}/{s}": list(p.lost) for (n, s), p in plans.items()
                                   if p.lost}
            self.metrics.set("zg_storage_segments_short", sum(self.report["short"].values()))
            self.metrics.set("zg_storage_segments_lost",
                             sum(len(lost) for lost in self.report["lost"].values()))
            return out

    def _holdings(self) -> tuple[dict[tuple[int, int], tuple[int, dict]], set[int]]:
        """{(network, tx_seq): (size, {miner: {segment: shard}})} from the miners that
        answered, and the set of those miners."""
        refs = {index: handle.holdings.remote()
                for index, handle in find_miners(self.config).items()}
        if refs:
            ray.wait(list(refs.values()), num_returns=len(refs), timeout=CALL_TIMEOUT_S)
        entries: dict[tuple[int, int], tuple[int, dict]] = {}
        live = set()
        for index, ref in refs.items():
            try:
                answer = ray.get(ref, timeout=0)
            except Exception:  # down, restarting or slow: what it keeps counts as missing
                continue
            live.add(index)
            for key, (_root, size, segments) in answer.items():
                entries.setdefault(key, (size, {}))[1][index] = segments
        return entries, live

    def _rebuild(self, network_id: int, tx_seq: int, miner: int,
                 work: list[tuple[int, int, list[int]]]) -> Any:
        try:
            return ray.get_actor(miner_name(miner)).rebuild_shards.remote(network_id, tx_seq,
                                                                          work)
        except ValueError as exc:  # gone since it answered: planned again next round
            return exc

    def _answer(self, ref: Any, work: list[tuple[int, int, list[int]]]) -> dict:
        try:
            if isinstance(ref, Exception):
                raise ref
            return ray.get(ref, timeout=REBUILD_TIMEOUT_S)
        except Exception as exc:  # the target went down: its shards are planned again
            return {"rebuilt": [], "failed": {segment: str(exc)[:200]
                                              for segment, _, _ in work}}

    def status(self) -> dict:
        return dict(self.report)


@ray.remote(num_cpus=TREE_TASK_NUM_CPUS)
def hash_rows(rows: np.ndarray) -> list[bytes]:
    """file.sector_roots of some rows of a file tree, in a Ray worker."""
    return sector_roots(rows)


def start_miners(config: Config, detached: bool = False) -> list[Any]:
    """Start (or find) the named StorageMiner actors of the config."""
    data_dir = str(Path(config.data_dir).resolve())
    lifetime = {"lifetime": "detached"} if detached else {}
    config_dict = config.to_dict()
    options = role_options(MINER_RESOURCE, spread=True)
    miners = [StorageMiner.options(name=miner_name(i), num_cpus=config.storage.miner_num_cpus,
                                   get_if_exists=True, **lifetime, **options).remote(
        config_dict, i, data_dir) for i in range(config.storage.miners)]
    ray.get([m.ping.remote() for m in miners], timeout=120)
    return miners


def start_repairer(config: Config, detached: bool = False) -> Any:
    """Start (or find) the named StorageRepairer of the config; its rounds begin at once."""
    lifetime = {"lifetime": "detached"} if detached else {}
    repairer = StorageRepairer.options(name=REPAIRER_NAME, num_cpus=REPAIRER_NUM_CPUS,
                                       get_if_exists=True, **lifetime,
                                       **control_options()).remote(config.to_dict())
    ray.get(repairer.status.remote(), timeout=120)
    return repairer


def find_miners(config: Config) -> dict[int, Any]:
    """The miners that are alive now, by index."""
    found = {}
    for i in range(config.storage.miners):
        try:
            found[i] = ray.get_actor(miner_name(i))
        except ValueError:
            continue
    return found


def stop_miners(config: Config) -> list[str]:
    """Kill the miners and the repairer (their data stays on disk); the names killed."""
    return runtime.kill_named([REPAIRER_NAME] + [miner_name(i)
                                                 for i in range(config.storage.miners)])
