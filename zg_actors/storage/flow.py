"""The flow: one append-only log of sectors per consensus network, and the `flow` module.

The flow root is a Merkle tree over every flow sector (padding sectors hash to
zeros(0) = keccak(256 zero bytes)) over the next power of two of the flow
length. Each submission node is placed at the next position aligned to its
size, so the tree grows by whole subtrees and only a frontier of at most one
root per level is kept (as Ethereum's deposit contract does).
"""

from __future__ import annotations

from functools import lru_cache

from zg_actors.chain.modules import token
from zg_actors.chain.modules.base import ArgDecoder, Context, Module, ModuleState
from zg_actors.config import StorageConfig
from zg_actors.crypto.encoding import Decoded, EncodingError, as_bytes, as_int, as_list, encode
from zg_actors.crypto.keccak import HASH_BYTES, keccak256
from zg_actors.storage.constants import (
    BPS,
    SECTOR_BYTES,
    SECTORS_PER_SEGMENT,
    STATUS_FINALIZED,
    STATUS_UPLOADING,
)
from zg_actors.storage.errors import (
    InvalidSubmission,
    NotAMiner,
    StorageFeeTooLow,
    UnknownEntry,
)
from zg_actors.storage.file import Node, chunk_count, node_heights, segment_count, submission_root
from zg_actors.storage.placement import TREASURY, assigned_miners, miner_account
from zg_actors.store import u64

MODULE = "flow"
MAX_TAGS_BYTES = 4096
_args = ArgDecoder(InvalidSubmission)
Frontier = dict[int, bytes]  # {level: root of the complete subtree at that level}


@lru_cache(maxsize=128)
def zero_hash(height: int) -> bytes:
    """Root of 2^height empty sectors."""
    if height == 0:
        return keccak256(bytes(SECTOR_BYTES))
    below = zero_hash(height - 1)
    return keccak256(below + below)


def append_subtree(frontier: Frontier, length: int, height: int, root: bytes) -> int:
    """Append a complete subtree of 2^height sectors at `length` (aligned); new length."""
    if length % (1 << height):
        raise InvalidSubmission(f"flow position {length} is not aligned to 2^{height} sectors",
                                position=length, height=height)
    node, level = root, height
    while length >> level & 1:
        node = keccak256(frontier.pop(level) + node)
        level += 1
    frontier[level] = node
    return length + (1 << height)


def align_up(position: int, height: int) -> int:
    size = 1 << height
    return -(-position // size) * size


def pad_to(frontier: Frontier, length: int, position: int) -> int:
    """Fill [length, position) with empty sectors, as the largest aligned subtrees."""
    while length < position:
        height = (length & -length).bit_length() - 1 if length else (position).bit_length() - 1
        while length + (1 << height) > position:
            height -= 1
        length = append_subtree(frontier, length, height, zero_hash(height))
    return length


def flow_root(frontier: Frontier, length: int) -> bytes:
    """Root over the next power of two of `length` sectors, the tail being empty sectors."""
    if length == 0:
        return zero_hash(0)
    depth = (length - 1).bit_length()
    if length == 1 << depth:
        return frontier[depth]
    node: bytes | None = None
    for level in range(depth):
        if length >> level & 1:
            node = keccak256(frontier[level] + (node if node is not None else zero_hash(level)))
        elif node is not None:
            node = keccak256(node + zero_hash(level))
    assert node is not None
    return node


def node_positions(start_position: int, nodes: list[Node]) -> list[int]:
    """Flow sector of each node of an entry whose first node sits at `start_position`."""
    positions, position = [], start_position
    for _, height in nodes:
        position = align_up(position, height)
        positions.append(position)
        position += 1 << height
    return positions


def storage_fee(nodes: list[Node], price_per_sector: int) -> int:
    """Minimum value of a submission: every sector it adds to the flow, at the unit price."""
    return sum(1 << height for _, height in nodes) * price_per_sector


def _seq_key(tx_seq: int) -> bytes:
    return b"entry/" + u64(tx_seq)


def _tx_key(tx_hash: bytes) -> bytes:
    return b"tx/" + tx_hash


def _parse_nodes(raw: Decoded) -> list[Node]:
    try:
        return [(as_bytes(item[0], HASH_BYTES), as_int(item[1]))
                for item in (as_list(n, 2) for n in as_list(raw))]
    except (EncodingError, TypeError, IndexError) as exc:
        raise InvalidSubmission(f"nodes must be a list of [32-byte root, height]: {exc}") from exc


def entry_info(record: Decoded) -> dict:
    """A stored entry as a plain dict (what queries return)."""
    fields = as_list(record)
    length = as_int(fields[3])
    return {"tx_seq": as_int(fields[0]), "sender": as_bytes(fields[1]),
            "root": as_bytes(fields[2]), "size": length, "start_position": as_int(fields[4]),
            "end_position": as_int(fields[5]),
            "nodes": [(as_bytes(n[0]), as_int(n[1])) for n in as_list(fields[6])],
            "tags": as_bytes(fields[7]), "height": as_int(fields[8]),
            "status": fields[9].decode(), "confirmed_by": [as_int(m) for m in as_list(fields[10])],
            "fee": as_int(fields[11]), "segments": segment_count(length),
            "entries": 1}


def _record(info: dict) -> list:
    return [info["tx_seq"], info["sender"], info["root"], info["size"], info["start_position"],
            info["end_position"], [[r, h] for r, h in info["nodes"]], info["tags"],
            info["height"], info["status"], info["confirmed_by"], info["fee"]]


class FlowModule(Module):
    """`flow`: submissions, the flow root, tx sequence numbers, finalization, mining contexts.

    State: `length`, `frontier/<level>`, `seq` (next tx sequence number),
    `entry/<tx_seq>` (tags included), `root/<file root>` -> [tx_seq, ...],
    `tx/<submit tx hash>` -> tx_seq, `pool/<pricing segment>`,
    `full/<pricing segment>` (height it filled), `treasury`, `context/<epoch>`.
    """

    name = MODULE

    def __init__(self, storage: StorageConfig, key_seed: str) -> None:
        self.storage = storage
        self.shards = storage.shards
        self.miners = {miner_account(key_seed, i).address: i for i in range(storage.miners)}

    # ---- flow tree over state ------------------------------------------------------------
    def _frontier(self, state: ModuleState, length: int) -> Frontier:
        return {level: state.get(b"frontier/" + bytes([level]))
                for level in range(length.bit_length()) if length >> level & 1}

    def _save_frontier(self, state: ModuleState, before: int, after: int,
                       frontier: Frontier) -> None:
        for level in range(max(before.bit_length(), after.bit_length())):
            key = b"frontier/" + bytes([level])
            if level in frontier:
                state.put(key, frontier[level])
            elif before >> level & 1:
                state.delete(key)

    # ---- txs -------------------------------------------------------------------------------
    def tx_submit(self, ctx: Context, length: Decoded, tags: Decoded, nodes: Decoded,
                  value: Decoded) -> Decoded:
        """Append a file's nodes to the flow; the sender pays `value` >= sectors x unit price."""
        size, paid = _args.uint(length, "length"), _args.uint(value, "value")
        parsed = _parse_nodes(nodes)
        if not isinstance(tags, bytes):
            raise InvalidSubmission("tags must be bytes", argument="tags")
        tag_bytes = tags
        if size > self.storage.max_entry_bytes:
            raise InvalidSubmission(f"entry of {size} bytes exceeds the per-entry limit "
                                    f"{self.storage.max_entry_bytes}", size=size)
        if len(tag_bytes) > MAX_TAGS_BYTES:
            raise InvalidSubmission(f"tags are {len(tag_bytes)} bytes, limit {MAX_TAGS_BYTES}",
                                    tags=len(tag_bytes))
        expected = node_heights(chunk_count(size))
        if [h for _, h in parsed] != expected:
            raise InvalidSubmission(f"node heights {[h for _, h in parsed]} do not match a "
                                    f"{size}-byte file (expected {expected})", size=size)
        required = storage_fee(parsed, self.storage.price_per_sector)
        if paid < required:
            raise StorageFeeTooLow(f"storage fee {paid} below {required} "
                                   f"({self.storage.price_per_sector} per sector)",
                                   value=paid, required=required)
        state = ctx.state(MODULE)
        token.debit(ctx.state(token.MODULE), ctx.sender, paid)
        before = state.get_int(b"length")
        frontier = self._frontier(state, before)
        position = before
        start = None
        for root, height in parsed:
            aligned = align_up(position, height)
            position = pad_to(frontier, position, aligned)
            start = aligned if start is None else start
            position = append_subtree(frontier, position, height, root)
        self._save_frontier(state, before, position, frontier)
        state.put_int(b"length", position)
        self._distribute_fee(state, start, position, paid)
        span = self.storage.pricing_segment_sectors
        for segment in range(before // span, position // span):
            # A pricing segment starts releasing its pool once the flow has filled it.
            state.put_int(b"full/" + u64(segment), ctx.block.height)
        tx_seq = state.get_int(b"seq")
        state.put_int(b"seq", tx_seq + 1)
        file_root = submission_root(parsed)
        info = {"tx_seq": tx_seq, "sender": ctx.sender, "root": file_root, "size": size,
                "start_position": start, "end_position": position, "nodes": parsed,
                "tags": tag_bytes, "height": ctx.block.height, "status": STATUS_UPLOADING,
                "confirmed_by": [], "fee": paid}
        state.put_obj(_seq_key(tx_seq), _record(info))
        by_root = b"root/" + file_root
        state.put_obj(by_root, [*(state.get_obj(by_root) or []), tx_seq])
        state.put_int(_tx_key(ctx.tx_hash), tx_seq)
        # 0G's Submit event carries the whole submission, tags included: a KV node learns
        # of KV txs (tags = STREAM + stream ids) from it.
        ctx.emit(MODULE, "Submit", ctx.sender, tx_seq, start, size, [r for r, _ in parsed],
                 tag_bytes)
        return tx_seq

    def _distribute_fee(self, state: ModuleState, start: int, end: int, paid: int) -> None:
        """Service fee to the treasury; the rest to the pricing segments the entry covers."""
        service = paid * self.storage.service_fee_bps // BPS
        state.add_int(b"treasury", service)
        rest = paid - service
        span = self.storage.pricing_segment_sectors
        sectors = end - start
        first, last = start // span, (end - 1) // span
        given = 0
        for segment in range(first, last + 1):
            covered = min(end, (segment + 1) * span) - max(start, segment * span)
            share = rest * covered // sectors if segment < last else rest - given
            given += share
            state.add_int(b"pool/" + u64(segment), share)

    def tx_confirm(self, ctx: Context, tx_seq: Decoded) -> Decoded:
        """A miner states it holds all its shards of the entry; FINALIZED when all did."""
        seq = _args.uint(tx_seq, "tx_seq")
        miner = self.miners.get(ctx.sender)
        if miner is None:
            raise NotAMiner(f"0x{ctx.sender.hex()} is not a registered storage miner",
                            sender=ctx.sender)
        state = ctx.state(MODULE)
        info = self._entry(state, seq)
        assigned = assigned_miners(seq, info["segments"], len(self.miners), self.shards)
        if miner not in assigned:
            raise NotAMiner(f"miner {miner} keeps no shard of entry {seq}", miner=miner,
                            tx_seq=seq)
        if miner in info["confirmed_by"]:
            return b""
        if not info["confirmed_by"]:
            # The first miner to hold the entry owns the royalty records of its loads.
            for load in range(info["start_position"] // SECTORS_PER_SEGMENT,
                              (info["end_position"] - 1) // SECTORS_PER_SEGMENT + 1):
                key = b"royalty/" + u64(load)
                if state.get(key) is None:
                    state.put(key, ctx.sender)
        info["confirmed_by"] = sorted([*info["confirmed_by"], miner])
        if info["confirmed_by"] == assigned:
            info["status"] = STATUS_FINALIZED
            ctx.emit(MODULE, "Finalized", seq, info["root"])
        state.put_obj(_seq_key(seq), _record(info))
        return b""

    # ---- epochs ------------------------------------------------------------------------------
    def begin_block(self, ctx: Context) -> None:
        """Fix the mining context at each epoch's first block (spec: PoRA mining context)."""
        if ctx.block.height % self.storage.blocks_per_epoch != 1:
            return
        state = ctx.state(MODULE)
        epoch = ctx.block.height // self.storage.blocks_per_epoch
        length = state.get_int(b"length")
        root = flow_root(self._frontier(state, length), length)
        # BlockInfo carries no block hash; this digest of the header fields every
        # validator agrees on stands in for it.
        block_seed = keccak256(encode([ctx.block.network_id, ctx.block.height,
                                       ctx.block.time_ms, ctx.block.proposer]))
        digest = keccak256(block_seed + root + length.to_bytes(32, "big"))
        state.put_obj(b"context/" + u64(epoch),
                      [digest, root, length, ctx.block.height])

    # ---- queries -----------------------------------------------------------------------------
    def _entry(self, state: ModuleState, tx_seq: int) -> dict:
        record = state.get_obj(_seq_key(tx_seq))
        if record is None:
            raise UnknownEntry(f"no flow entry with tx sequence {tx_seq}", tx_seq=tx_seq)
        return entry_info(record)

    def query_entry(self, state: ModuleState, tx_seq: int) -> dict:
        return self._entry(state, tx_seq)

    def query_entry_of_tx(self, state: ModuleState, tx_hash: bytes) -> dict | None:
        """The entry the submit tx `tx_hash` created; None if it made none (yet)."""
        key = _tx_key(bytes(tx_hash))
        if state.get(key) is None:
            return None
        return self._entry(state, state.get_int(key))

    def query_file_info(self, state: ModuleState, root: bytes) -> dict | None:
        """The entry of a file root (a FINALIZED one first, else the earliest); None if unknown."""
        seqs = state.get_obj(b"root/" + bytes(root))
        if not seqs:
            return None
        infos = [self._entry(state, as_int(s)) for s in as_list(seqs)]
        finalized = [i for i in infos if i["status"] == STATUS_FINALIZED]
        return (finalized or infos)[0]

    def query_flow(self, state: ModuleState) -> dict:
        length = state.get_int(b"length")
        return {"length": length, "root": flow_root(self._frontier(state, length), length),
                "entries": state.get_int(b"seq"), "treasury": state.get_int(b"treasury")}

    def query_context(self, state: ModuleState, epoch: int) -> dict | None:
        raw = state.get_obj(b"context/" + u64(epoch))
        if raw is None:
            return None
        digest, root, length, height = as_list(raw, 4)
        return {"epoch": epoch, "digest": as_bytes(digest), "flow_root": as_bytes(root),
                "flow_length": as_int(length), "height": as_int(height)}

    def query_pool(self, state: ModuleState, segment: int) -> int:
        return state.get_int(b"pool/" + u64(segment))

    def query_royalty_owner(self, state: ModuleState, load: int) -> bytes | None:
        return state.get(b"royalty/" + u64(load))

    def query_treasury(self, state: ModuleState) -> dict:
        return {"address": TREASURY, "balance": state.get_int(b"treasury")}

