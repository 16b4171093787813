"""The storage client (Python SDK) behind `zg upload`, `zg download` and `zg file-info`.

    client = StorageClient(config)            # inside a connected Ray driver
    receipt = client.upload(data)             # root, tx_seq, network_id
    data = client.download(receipt["root"])   # every proof and the file root checked

Upload follows docs/spec/storage.md: compute the tree, submit to the `flow` module,
wait until the entry is on chain, then send each segment (put once into the
object store) with its proof to the k + m miners that keep its shards.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import ray

from zg_actors.chain.client import SyncChainClient
from zg_actors.chain.network_manager import NETWORK_MANAGER_NAME
from zg_actors.chain.tx import Transaction
from zg_actors.config import Config
from zg_actors.crypto import sector_tree
from zg_actors.erasure import data_matrix
from zg_actors.errors import InvalidInput, InvalidProof, Unavailable
from zg_actors.metrics import STORAGE_METRICS, Metrics
from zg_actors.runtime import call as _call
from zg_actors.storage.actors import (
    REPAIRER_NAME,
    find_miners,
    hash_rows,
    redundancy_of,
    start_miners,
    start_repairer,
)
from zg_actors.storage.constants import SEGMENT_BYTES, STATUS_FINALIZED, STATUS_UPLOADING
from zg_actors.storage.errors import (
    DataUnavailable,
    FileTooLarge,
    UnknownFile,
    UploadIncomplete,
    WrongEntry,
)
from zg_actors.storage.file import (
    FileTree,
    RowHasher,
    data_shard_height,
    file_tree,
    pad,
    sector_roots,
    segment_count,
    segment_length,
    split_fragments,
    verify_file,
)
from zg_actors.storage.flow import MODULE, storage_fee
from zg_actors.storage.miner import EntryRef, collect_shards, rebuild_segment
from zg_actors.storage.placement import assigned_miners, client_account, shard_miner

CALL_TIMEOUT_S = 60.0  # a miner's answer to a window; a loaded 2-core machine is slow
COMMIT_TIMEOUT_S = 60.0  # how long a submission may take to be committed
MIN_SEGMENTS_PER_PIECE = 16  # smaller files are hashed in this process alone
WINDOW_SEGMENTS = 16  # segments per call to a miner (4 MiB of a file)
WINDOWS_IN_FLIGHT = 8  # windows sent before waiting for the oldest: 32 MiB of a file,
# (1 + m) times that in the object store
FETCH_RETRIES = 5  # extra rounds when fewer than k shards came back
FETCH_RETRY_WAIT_S = 1.0
RESEND_WAIT_S = 1.0  # between re-sends of unacknowledged shards (a miner restarts in ~1 s)
REPAIR_ROUND_TIMEOUT_S = 300.0  # one repair round asked for by repair()
Progress = Callable[[int, int], None]  # (segments done, segments total)


def _by_miner(pairs: set[tuple[int, int]]) -> dict[int, list[int]]:
    """{miner: [segments]} of (miner, segment) pairs."""
    out: dict[int, list[int]] = {}
    for miner, segment in sorted(pairs):
        out.setdefault(miner, []).append(segment)
    return out


def _describe_missing(pairs: set[tuple[int, int]]) -> str:
    return "; ".join(f"miner {miner} has not acknowledged segments {_ranges(segments)}"
                     for miner, segments in _by_miner(pairs).items())


def _ranges(values: list[int]) -> str:
    """[0, 1, 2, 5] -> "0-2, 5": segment lists stay short in messages."""
    runs: list[list[int]] = []
    for value in values:
        if runs and value == runs[-1][-1] + 1:
            runs[-1].append(value)
        else:
            runs.append([value])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


class StorageClient:
    """Uploads, downloads and looks up files on the deployment's networks and miners."""

    def __init__(self, config: Config, start: bool = True, detached: bool = False) -> None:
        self.config = config
        self.redundancy = redundancy_of(config)
        # Height of the subtrees a data miner checks its row against (None: rows are not
        # subtrees, data miners get whole segments); a property of the config, not the file.
        self._keep_height = data_shard_height(SEGMENT_BYTES, self.redundancy.data_shards)
        self.account = client_account(config.devnet.key_seed)
        try:
            self.manager = ray.get_actor(NETWORK_MANAGER_NAME)
        except ValueError as exc:
            raise Unavailable("no zg-actors deployment in this Ray namespace: run `zg up` "
                              "first", namespace=config.ray.namespace) from exc
        self.detached = detached
        self.metrics = Metrics(STORAGE_METRICS)
        self._chains: dict[int, SyncChainClient] = {}
        self._nonce_lock = threading.Lock()
        self._next_nonce: dict[int, int] = {}  # {network: the client's next unsent nonce}
        # {network: the tx sequence after this client's last submission}: its submissions
        # commit in nonce order, so uploads running at once expect consecutive sequences
        self._next_tx_seq: dict[int, int] = {}
        self.miners: list[Any] = []
        if start:
            self.start()
        # On a CPU, file trees are hashed in pieces by Ray workers beside this process; one
        # small piece now starts a worker, so the first upload does not wait for one.
        self._tree_pieces = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._warm = hash_rows.remote(np.zeros((1, SEGMENT_BYTES), dtype=np.uint8))

    def start(self) -> None:
        """Start (or find) the miners and the repairer; holding their handles keeps
        non-detached ones alive as long as this client."""
        if not self.miners:
            self.miners = [*start_miners(self.config, self.detached),
                           start_repairer(self.config, self.detached)]

    # ---- chain helpers ------------------------------------------------------------------
    def networks(self) -> list[int]:
        return _call(self.manager.active_networks.remote())

    def chain(self, network_id: int) -> SyncChainClient:
        """The one chain client of `network_id` (kept: it remembers who answers)."""
        if network_id not in self._chains:
            self._chains[network_id] = SyncChainClient(network_id)
        return self._chains[network_id]

    def _query(self, network_id: int, method: str, *args: Any) -> Any:
        return self.chain(network_id).query(MODULE, method, *args)

    def file_info(self, root: bytes, network_id: int | None = None) -> dict:
        """The flow entry of `root` (size, tx_seq, status, network); UnknownFile if none."""
        for net in [network_id] if network_id is not None else self.networks():
            info = self._query(net, "file_info", root)
            if info is not None:
                return {**info, "network_id": net}
        raise UnknownFile(f"no network has a file with root 0x{root.hex()}", root=root)

    def _send_submission(self, network_id: int, tree: Any,
                         tags: bytes) -> tuple[Transaction, int]:
        """Sign and send the `flow.submit` tx of `tree` with its submission `tags`; also
        the tx sequence it should get (the flow's next entry after the client's pending
        submissions; another client's submission in between can still take it)."""
        nodes = [[root, height] for root, height in tree.nodes]
        value = storage_fee(list(tree.nodes), self.config.storage.price_per_sector)
        chain = self.chain(network_id)
        # Uploads running at once from one client take consecutive nonces: each reading
        # the committed nonce would give two submissions the same one.
        with self._nonce_lock:
            nonce = max(chain.nonce(self.account.address),
                        self._next_nonce.get(network_id, 0))
            expected = max(self._query(network_id, "flow")["entries"],
                           self._next_tx_seq.get(network_id, 0))
            tx = chain.send(self.account, MODULE, "submit", [tree.size, tags, nodes, value],
                            nonce=nonce)
            self._next_nonce[network_id] = tx.nonce + 1
            self._next_tx_seq[network_id] = expected + 1
        return tx, expected

    def _await_nonce(self, network_id: int, nonce: int, what: str) -> None:
        """Wait until the client's tx with `nonce` is committed; Unavailable after
        COMMIT_TIMEOUT_S."""
        self.chain(network_id).wait_nonce(self.account.address, nonce, COMMIT_TIMEOUT_S, what)

    def _await_submission(self, network_id: int, tree: Any, tx: Transaction) -> dict:
        """The flow entry the submission `tx` created, once committed."""
        self._await_nonce(network_id, tx.nonce, "submission")
        info = self._query(network_id, "entry_of_tx", tx.hash)
        if info is None:  # committed but failed: the receipt's error is the reason
            raise InvalidInput(f"network {network_id} rejected the submission of "
                               f"0x{tree.root.hex()}", network=network_id)
        return info

    def donate(self, amount: int, network_id: int) -> None:
        """Fund the `mine` module's base reward pool from the client account."""
        tx = self.chain(network_id).send(self.account, "mine", "donate", [amount])
        self._await_nonce(network_id, tx.nonce, "donation")

    def mine(self, network_id: int, miners: list[int], epochs: int = 1,
             timeout_s: float = 120.0) -> list[dict]:
        """Let the given miners mine `epochs` contexts each (in parallel); their reports."""
        found = find_miners(self.config)
        refs = [found[i].mine.remote(network_id, epochs, timeout_s=timeout_s)
                for i in miners if i in found]
        return _call(refs, timeout=timeout_s + 60)

    # ---- upload -------------------------------------------------------------------------
    def upload(self, data: bytes, network_id: int | None = None,
               on_progress: Progress | None = None, wait: bool = True,
               tags: bytes = b"") -> dict:
        """Submit `data` and store its segments; returns root, tx_seq, network, status and
        timings.

        With `wait` (the default) it returns only once every entry is FINALIZED (every
        assigned shard held and confirmed on chain): shards a miner did not acknowledge
        are sent again (Ray restarts a crashed miner) until storage.upload_deadline_s,
        then UploadIncomplete names the segments and miners still missing. Without
        `wait` every shard is sent once and `status` says UPLOADING unless the entry is
        already FINALIZED; `missing` lists {miner: [segments]} not acknowledged.
        `shards_resent` counts the shards that needed more than one send;
        `sequence_misses` the entries whose shards went out for a tx sequence another
        submission took (sent again for the one it got).

        A file over storage.max_entry_bytes is split (like 0G's client with
        --fragment-size) into consecutive fragments, each its own flow entry with its own
        root and tx_seq. `root`/`tx_seq` are the first fragment's; `roots` lists every
        fragment root in file order (download them with download_fragments(roots)) and
        `fragments` gives each one's root, size, tx_seq and segments.

        `tags` are the submission's tags (0G's `Submission.tags`, e.g. a KV tx's STREAM
        tag), given to every fragment. A tagged upload always submits a new entry, as 0G's
        client does: each is a message (a KV tx) of its own, even with a root seen before.
        """
        networks = self.networks()
        if not networks:
            raise Unavailable("no active consensus network")
        net = networks[0] if network_id is None else network_id
        if net not in networks:
            raise InvalidInput(f"network {net} is not active (active: {networks})", network=net)
        started = time.time()
        pieces = split_fragments(len(data), self.config.storage.max_entry_bytes)
        total = sum(segment_count(length) for _, length in pieces)
        fragments: list[dict] = []
        done_before = 0
        for offset, length in pieces:
            def step(done: int, _count: int, base: int = done_before) -> None:
                if on_progress:
                    on_progress(base + done, total)

            entry = self._upload_entry(net, data[offset:offset + length], step, wait, tags)
            fragments.append(entry)
            done_before += entry["segments"]
        done = time.time()
        self.metrics.inc("zg_storage_uploads", network_id=net)
        self.metrics.inc("zg_storage_upload_bytes", len(data), network_id=net)
        first = fragments[0]
        finalized = all(f["status"] == STATUS_FINALIZED for f in fragments)
        return {"root": first["root"], "tx_seq": first["tx_seq"], "network_id": net,
                "size": len(data), "segments": total, "tags": tags,
                "status": STATUS_FINALIZED if finalized else STATUS_UPLOADING,
                "shard_acks": sum(f["shard_acks"] for f in fragments),
                "shards_resent": sum(f["shards_resent"] for f in fragments),
                "sequence_misses": sum(f["sequence_misses"] for f in fragments),
                "roots": [f["root"] for f in fragments],
                "fragments": [{k: f[k] for k in ("root", "size", "tx_seq", "segments",
                                                 "status", "missing")}
                              for f in fragments],
                "seconds": done - started}

    def _upload_entry(self, net: int, data: bytes, on_progress: Progress | None,
                      wait: bool, tags: bytes = b"") -> dict:
        """One flow entry: submit (unless the root is already on chain and untagged),
        store, and with `wait` see it FINALIZED."""
        if len(data) > self.config.storage.max_entry_bytes:  # split_fragments prevents it
            raise FileTooLarge(f"entry of {len(data)} bytes exceeds storage.max_entry_bytes "
                               f"{self.config.storage.max_entry_bytes}", size=len(data))
        started = time.time()
        deadline = time.monotonic() + self.config.storage.upload_deadline_s
        tree = file_tree(data, self._keep_height, self._row_hasher(len(data)))
        padded = pad(data)
        info = None if tags else self._query(net, "file_info", tree.root)
        acks, missing, sequence_misses = 0, set(), 0
        if info is not None and info["status"] == STATUS_FINALIZED:
            if on_progress:
                on_progress(tree.segments, tree.segments)
        elif info is not None:  # submitted before: store what is missing
            acks, missing = self._send_segments(net, info["tx_seq"], tree, padded, on_progress)
        else:
            # The shards go out while the submission commits, for the tx sequence the flow
            # gives next; miners check them at once and store them once the chain has this
            # root there. If another submission took that sequence, they refuse (WrongEntry)
            # and the shards are sent again for the sequence this one got.
            tx, expected = self._send_submission(net, tree, tags)
            committed: dict = {}

            def await_commit() -> None:
                committed.update(self._await_submission(net, tree, tx))
                if committed["tx_seq"] != expected:
                    raise WrongEntry(f"tx sequence {expected} went to another submission",
                                     tx_seq=expected)

            try:
                acks, missing = self._send_segments(net, expected, tree, padded, on_progress,
                                                    before_wait=await_commit)
            except WrongEntry:
                sequence_misses = 1
                committed = committed or self._await_submission(net, tree, tx)
                acks, missing = self._send_segments(net, committed["tx_seq"], tree, padded,
                                                    on_progress)
            info = committed
        unacknowledged = len(missing)  # after the first pass
        if wait and info["status"] != STATUS_FINALIZED:
            acks += self._resend_missing(net, info["tx_seq"], tree, padded, missing, deadline)
            missing = set()
            info = self._await_finalized(net, info["tx_seq"], tree, deadline)
        elif not wait:
            info = self._query(net, "entry", info["tx_seq"])
        return {"root": tree.root, "tx_seq": info["tx_seq"], "size": len(data),
                "segments": tree.segments, "status": info["status"], "shard_acks": acks,
                "shards_resent": unacknowledged if wait else 0, "missing": _by_miner(missing),
                "sequence_misses": sequence_misses, "seconds": time.time() - started}

    def _resend_missing(self, network_id: int, tx_seq: int, tree: FileTree, padded: bytes,
                        missing: set[tuple[int, int]], deadline: float) -> int:
        """Send the (miner, segment) shards not acknowledged again, every RESEND_WAIT_S,
        until all are; returns the acknowledgements. UploadIncomplete at `deadline`."""
        acks = 0
        while missing:
            if time.monotonic() >= deadline:
                raise UploadIncomplete(
                    f"entry {tx_seq} (root 0x{tree.root.hex()}) not stored within "
                    f"storage.upload_deadline_s = {self.config.storage.upload_deadline_s} s: "
                    f"{_describe_missing(missing)}", root=tree.root, tx_seq=tx_seq,
                    missing=_by_miner(missing))
            time.sleep(RESEND_WAIT_S)
            got, missing = self._send_segments(network_id, tx_seq, tree, padded, None,
                                               wanted=missing)
            acks += got
        return acks

    def _await_finalized(self, network_id: int, tx_seq: int, tree: FileTree,
                         deadline: float) -> dict:
        """The entry once FINALIZED (every assigned miner confirmed it on chain), one look
        per block; UploadIncomplete at `deadline` naming the miners that did not confirm."""
        height = 0
        while True:
            info = self._query(network_id, "entry", tx_seq)
            if info["status"] == STATUS_FINALIZED:
                return info
            waiting = [m for m in assigned_miners(tx_seq, tree.segments,
                                                  self.redundancy.miners,
                                                  self.redundancy.shards)
                       if m not in info["confirmed_by"]]
            left = deadline - time.monotonic()
            if left <= 0:
                raise UploadIncomplete(
                    f"entry {tx_seq} (root 0x{tree.root.hex()}): every shard was "
                    f"acknowledged, but miners {waiting} did not confirm it on chain within "
                    f"storage.upload_deadline_s = {self.config.storage.upload_deadline_s} s",
                    root=tree.root, tx_seq=tx_seq, miners=str(waiting))
            # A miner that Ray restarted resumes its pending confirmations on its first call.
            found = find_miners(self.config)
            for miner in waiting:
                if miner in found:
                    found[miner].ping.remote()
            height = self.chain(network_id).wait_height(height + 1, left)

    def warm_up(self, timeout_s: float = 60.0) -> None:
        """Wait until the Ray worker that hashes file-tree pieces is up (until then,
        uploads hash their trees in this process alone)."""
        _call(self._warm, timeout=timeout_s)

    def _row_hasher(self, size: int) -> RowHasher:
        """How file_tree hashes the rows of a `size`-byte file: in this process (in one
        pass on a GPU), or, on a CPU, in pieces: this process hashes one, Ray workers the
        others (one per cluster CPU), once a worker is up."""
        pieces = min(self._tree_pieces, max(1, size // (MIN_SEGMENTS_PER_PIECE * SEGMENT_BYTES)))
        if pieces == 1 or sector_tree.resolve().name != "cpu" \
                or not ray.wait([self._warm], timeout=0)[0]:
            return sector_roots

        def in_pieces(rows: np.ndarray) -> list[bytes]:
            bounds = [len(rows) * i // pieces for i in range(pieces + 1)]
            refs = [hash_rows.remote(rows[bounds[i]:bounds[i + 1]]) for i in range(1, pieces)]
            own = sector_roots(rows[bounds[0]:bounds[1]])
            return own + [root for piece in _call(refs) for root in piece]

        return in_pieces

    def _send_segments(self, network_id: int, tx_seq: int, tree: FileTree, padded: bytes,
                       on_progress: Progress | None,
                       before_wait: Callable[[], None] | None = None,
                       wanted: set[tuple[int, int]] | None = None
                       ) -> tuple[int, set[tuple[int, int]]]:
        """Send every miner its shards (only the `wanted` (miner, segment) ones if given), a
        window of segments per call, several windows in flight; returns the shard
        acknowledgements and the (miner, segment) shards not acknowledged (that miner was
        down or restarting). `before_wait` runs once, before the first acknowledgement is
        awaited.

        A data miner gets its own row of each segment and the segment's k subtree roots
        and checks that row alone; a parity miner gets all k data rows (docs/spec/storage.md
        "Redundancy"). Each miner's rows of a window travel as one packed array.
        """
        miners = find_miners(self.config)
        k = self.redundancy.data_shards
        alone = self._keep_height is not None
        array = np.frombuffer(padded, dtype=np.uint8)
        indexes = sorted({i for _, i in wanted}) if wanted is not None else range(tree.segments)
        acks = 0
        missing: set[tuple[int, int]] = set()
        in_flight: deque[tuple[dict[int, list[int]], dict[int, Any], int]] = deque()
        for first in range(0, len(indexes), WINDOW_SEGMENTS):
            window = indexes[first:first + WINDOW_SEGMENTS]
            # {miner: ([delivery], [rows it needs, in delivery order])}
            batches: dict[int, tuple[list[list], list[np.ndarray]]] = {}
            for index in window:
                start = index * SEGMENT_BYTES
                segment = array[start:start + segment_length(tree.size, index)]
                rows = data_matrix(segment, k)
                proof = tree.proof(index).to_list()
                own_row = alone and len(segment) == SEGMENT_BYTES
                for shard in range(self.redundancy.shards):
                    owner = shard_miner(tx_seq, index, shard, self.redundancy.miners)
                    if wanted is not None and (owner, index) not in wanted:
                        continue
                    deliveries, parts = batches.setdefault(owner, ([], []))
                    if own_row and shard < k:
                        deliveries.append([index, [shard], rows.shape[1],
                                           list(tree.subtree_roots[index]), proof])
                        parts.append(rows[shard])
                    else:
                        deliveries.append([index, list(range(k)), rows.shape[1], [], proof])
                        parts.extend(rows)
            # One packed array per miner: Ray stores it once, the miner reads it in place.
            refs = {owner: miners[owner].store_shards.remote(
                        network_id, tx_seq, tree.root, tree.size, np.concatenate(parts),
                        deliveries)
                    for owner, (deliveries, parts) in batches.items() if owner in miners}
            in_flight.append(({o: [d[0] for d in b[0]] for o, b in batches.items()}, refs,
                              window[-1] + 1))
            if len(in_flight) >= WINDOWS_IN_FLIGHT:
                if before_wait:
                    before_wait()
                    before_wait = None
                acks += self._await_window(*in_flight.popleft(), missing, tree.segments,
                                           on_progress)
        if before_wait:
            before_wait()
        while in_flight:
            acks += self._await_window(*in_flight.popleft(), missing, tree.segments,
                                       on_progress)
        return acks, missing

    def _await_window(self, segments_of: dict[int, list[int]], refs: dict[int, Any],
                      done: int, missing: set[tuple[int, int]], total: int,
                      on_progress: Progress | None) -> int:
        """Wait for a window's acknowledgements; adds the (miner, segment) shards of the
        miners that were gone or failed to `missing`, returns the acknowledgements."""
        acks = 0
        for owner, indexes in segments_of.items():
            try:
                if owner not in refs:
                    raise Unavailable(f"miner {owner} is not running", miner=owner)
                _call(refs[owner], timeout=CALL_TIMEOUT_S)
                acks += len(indexes)
            except (InvalidInput, InvalidProof):  # the shards themselves are wrong
                raise
            except Exception:  # down or restarting: its shards are sent again
                missing.update((owner, index) for index in indexes)
        if on_progress:
            on_progress(done, total)
        return acks

    # ---- download -----------------------------------------------------------------------
    def download(self, root: bytes, on_progress: Progress | None = None) -> bytes:
        """The file with root `root`: each segment decoded from k verified shards, every
        segment proof checked, then the file root over the segment roots.

        Windows of segments are fetched with one call per miner, the next window while
        this one is checked. The data shards come first (no decoding needed); a segment
        they do not rebuild is fetched again from all of its miners.
        """
        info = self.file_info(root)
        entry = EntryRef(info["network_id"], info["tx_seq"], root, info["size"])
        miners = find_miners(self.config)
        count = segment_count(entry.size)
        windows = [range(first, min(first + WINDOW_SEGMENTS, count))
                   for first in range(0, count, WINDOW_SEGMENTS)]
        parts: list[bytes] = []
        leaves: list[bytes] = []
        requested = self._request_window(miners, entry, windows[0])
        for number, window in enumerate(windows):
            current = requested
            if number + 1 < len(windows):
                requested = self._request_window(miners, entry, windows[number + 1])
            fetched = self._collect_window(current)
            for index in window:
                shards, proof = fetched.get(index, ({}, None))
                try:
                    if proof is None:
                        raise DataUnavailable(f"segment {index}: no shard came back")
                    segment, leaf = rebuild_segment(entry, index, shards, proof,
                                                    self.redundancy)
                except DataUnavailable:
                    segment, leaf = self._segment_from_all(entry, index)
                parts.append(segment)
                leaves.append(leaf)
            if on_progress:
                on_progress(window.stop, count)
        verify_file(root, entry.size, leaves)
        self.metrics.inc("zg_storage_download_bytes", entry.size, network_id=entry.network_id)
        return b"".join(parts)[:entry.size]

    def _request_window(self, miners: dict[int, Any], entry: EntryRef, window: range,
                        owners: int | None = None) -> list[tuple[list[int], Any]]:
        """Ask `owners` (default k) miners for their shard of each segment of the window,
        data shards first, skipping miners that are gone: one get_shards call per miner.
        Miners are taken in the segment's rotation order: its own k + m miners, then
        those that may keep a shard in place of a lost one (repair.rebuild_target)."""
        count = owners or self.redundancy.data_shards
        wanted: dict[int, list[int]] = {}
        for index in window:
            holders = [shard_miner(entry.tx_seq, index, position, self.redundancy.miners)
                       for position in range(self.redundancy.miners)]
            for owner in [o for o in holders if o in miners][:count]:
                wanted.setdefault(owner, []).append(index)
        return [(indexes, miners[owner].get_shards.remote(entry.network_id, entry.tx_seq,
                                                          indexes))
                for owner, indexes in wanted.items()]

    def _collect_window(self, requested: list[tuple[list[int], Any]]
                        ) -> dict[int, tuple[dict[int, np.ndarray], Any]]:
        """{segment: ({shard: data}, proof)} from the answers that came back."""
        answered = []
        for indexes, ref in requested:
            try:
                answered.append((indexes, _call(ref, timeout=CALL_TIMEOUT_S)))
            except Exception:  # that miner is down: the segment is fetched again
                continue
        return collect_shards(answered)

    def _segment_from_all(self, entry: EntryRef, index: int) -> tuple[bytes, bytes]:
        """Segment `index` from every miner that keeps a shard of it, retrying while
        miners restart; (segment, segment root) or DataUnavailable."""
        miners = find_miners(self.config)
        shards, proof = self._fetch_shards(miners, entry, index)
        for _ in range(FETCH_RETRIES):
            if len(shards) >= self.redundancy.data_shards:
                try:
                    return rebuild_segment(entry, index, shards, proof, self.redundancy)
                except DataUnavailable:
                    pass  # a corrupt shard among them: ask again
            # A miner that Ray is restarting fails calls for a moment: ask again.
            time.sleep(FETCH_RETRY_WAIT_S)
            miners = find_miners(self.config)
            shards, proof = self._fetch_shards(miners, entry, index)
        if proof is None:
            raise DataUnavailable(f"no miner returned segment {index} of 0x{entry.root.hex()}",
                                  segment=index, root=entry.root)
        # The proof comes from a miner: rebuild_segment checks it against the on-chain root.
        return rebuild_segment(entry, index, shards, proof, self.redundancy)

    def download_fragments(self, roots: list[bytes],
                           on_progress: Progress | None = None) -> bytes:
        """A file uploaded as several entries (upload()'s `roots`): each fragment is
        downloaded and verified like a whole file, then they are joined in order."""
        if not roots:
            raise InvalidInput("no roots to download", roots=0)
        sizes = [self.file_info(root)["size"] for root in roots]
        total = sum(segment_count(size) for size in sizes)
        parts: list[bytes] = []
        done_before = 0
        for root, size in zip(roots, sizes, strict=True):
            def step(done: int, _count: int, base: int = done_before) -> None:
                if on_progress:
                    on_progress(base + done, total)

            parts.append(self.download(root, on_progress=step))
            done_before += segment_count(size)
        return b"".join(parts)

    def fragments_info(self, roots: list[bytes]) -> dict:
        """file_info of each fragment root and the whole file: total size and segments,
        FINALIZED only once every fragment is."""
        infos = [{**self.file_info(root), "root": root} for root in roots]
        if not infos:
            raise InvalidInput("no roots given", roots=0)
        finalized = all(i["status"] == STATUS_FINALIZED for i in infos)
        status = STATUS_FINALIZED if finalized else STATUS_UPLOADING
        return {"roots": list(roots), "size": sum(i["size"] for i in infos),
                "segments": sum(segment_count(i["size"]) for i in infos),
                "entries": len(infos), "status": status, "fragments": infos}

    def _fetch_shards(self, miners: dict[int, Any], entry: EntryRef,
                      index: int) -> tuple[dict[int, np.ndarray], Any]:
        """Every shard of a segment the live miners return (stand-ins included), and the
        segment's proof."""
        requested = self._request_window(miners, entry, range(index, index + 1),
                                         owners=self.redundancy.miners)
        return self._collect_window(requested).get(index, ({}, None))

    def repair(self, root: bytes) -> dict:
        """Have the repairer run a round now, without its grace period; its report for
        the entry of `root`: {"rebuilt": {miner: [segments]}, "failed": {segment: reason},
        "lost": [segments below k]} (empty when nothing was missing)."""
        info = self.file_info(root)
        try:
            repairer = ray.get_actor(REPAIRER_NAME)
        except ValueError as exc:
            raise Unavailable("the storage repairer is not running", root=root) from exc
        report = _call(repairer.repair_round.remote(False), timeout=REPAIR_ROUND_TIMEOUT_S)
        return report.get(f"{info['network_id']}/{info['tx_seq']}", {})

    def wait_finalized(self, root: bytes, timeout_s: float = 60.0) -> dict:
        deadline = time.time() + timeout_s
        while True:
            info = self.file_info(root)
            if info["status"] == STATUS_FINALIZED or time.time() > deadline:
                return info
            time.sleep(0.3)
