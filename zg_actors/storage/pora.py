"""Proof of Random Access (docs/spec/storage.md "PoRA mining"; 0G node `miner/`, `Mine.sol`).

Pure: sealing, the scratchpad, recall, quality, difficulty, the answer a miner
sends and its complete check. A miner needs its own sealed replica of the
recalled load, because the quality is computed over sealed data that is tied
to its miner id and the epoch's context.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from zg_actors.crypto.keccak import keccak256
from zg_actors.errors import InvalidInput, InvalidProof
from zg_actors.storage.constants import (
    SEAL_BYTES,
    SECTOR_BYTES,
    SECTORS_PER_SEAL,
    SECTORS_PER_SEGMENT,
)
from zg_actors.storage.flow import zero_hash

WORD_BYTES = 32
SEALS_PER_LOAD = SECTORS_PER_SEGMENT // SECTORS_PER_SEAL  # 64
SEAL_HEIGHT = 4  # log2(SECTORS_PER_SEAL)
SCRATCHPAD_ROUNDS = 256  # 256 x 64 bytes = 16 KiB
SCRATCHPAD_BYTES = SCRATCHPAD_ROUNDS * 64
NO_SHARD_MASK = 2**64 - 1  # shard mask of a miner that keeps the whole range
MAX_TARGET = 2**256 - 1


class InvalidAnswer(InvalidProof):
    code = "INVALID_ANSWER"


def miner_id(beneficiary: bytes, seed: bytes) -> bytes:
    """keccak(beneficiary || seed): what a miner registers and what sealing binds to."""
    return keccak256(beneficiary + seed)


def _first_mask(miner: bytes, context_digest: bytes, start_sector: int) -> bytes:
    return keccak256(miner + context_digest + bytes(24) + start_sector.to_bytes(8, "big"))


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def seal(data: bytes, miner: bytes, context_digest: bytes, start_sector: int) -> bytes:
    """Seal one 4 KiB seal at flow sector `start_sector`: each word is masked by the hash
    of the sealed word before it, so sealing is sequential and unsealing is not."""
    if len(data) != SEAL_BYTES:
        raise InvalidInput(f"a seal is {SEAL_BYTES} bytes, got {len(data)}", length=len(data))
    mask = _first_mask(miner, context_digest, start_sector)
    out = []
    for i in range(0, SEAL_BYTES, WORD_BYTES):
        word = _xor(data[i:i + WORD_BYTES], mask)
        out.append(word)
        mask = keccak256(word)
    return b"".join(out)


def unseal(sealed: bytes, miner: bytes, context_digest: bytes, start_sector: int) -> bytes:
    if len(sealed) != SEAL_BYTES:
        raise InvalidAnswer(f"a sealed seal is {SEAL_BYTES} bytes, got {len(sealed)}",
                            length=len(sealed))
    mask = _first_mask(miner, context_digest, start_sector)
    out = []
    for i in range(0, SEAL_BYTES, WORD_BYTES):
        word = sealed[i:i + WORD_BYTES]
        out.append(_xor(word, mask))
        mask = keccak256(word)
    return b"".join(out)


@dataclass(frozen=True)
class RecallRange:
    start: int  # sectors, a multiple of the pricing-segment size
    length: int  # sectors, whole loads
    shard_id: int = 0
    shard_mask: int = NO_SHARD_MASK

    def digest(self) -> bytes:
        return keccak256(b"".join(v.to_bytes(32, "big") for v in
                                  (self.start, self.length, self.shard_id, self.shard_mask)))


def mining_range(flow_length: int, max_range: int, start: int = 0) -> RecallRange:
    """The whole-loads range a miner without sharding mines from `start`."""
    loads_end = flow_length // SECTORS_PER_SEGMENT * SECTORS_PER_SEGMENT
    return RecallRange(start, max(0, min(loads_end - start, max_range)))


def subtask_digest(context_digest: bytes, miner: bytes) -> bytes:
    """keccak(context, miner id): the miner's subtask of a context (spec: subtasks); it
    enters every pad seed and places the miner's answer window (subtask_opens)."""
    return keccak256(context_digest + miner)


def subtask_opens(context_height: int, context_digest: bytes, miner: bytes,
                  spread_blocks: int) -> int:
    """First block height at which `miner` may answer this context: the context's block
    plus keccak(context, miner id) mod spread_blocks, so miners' answers spread out."""
    if spread_blocks <= 0:
        return context_height
    offset = int.from_bytes(subtask_digest(context_digest, miner)[:8], "big") % spread_blocks
    return context_height + offset


def pad_seed(miner: bytes, nonce: bytes, subtask: bytes, range_digest: bytes) -> bytes:
    return hashlib.blake2b(miner + nonce + subtask + range_digest, digest_size=64).digest()


def scratchpad(seed: bytes) -> tuple[bytes, bytes]:
    """(16 KiB scratchpad, recall seed) from a 64-byte pad seed."""
    d = bytearray(seed)
    parts = []
    for _ in range(SCRATCHPAD_ROUNDS):
        d[0:32] = keccak256(bytes(d))
        d[32:64] = keccak256(bytes(d))
        parts.append(bytes(d))
    return b"".join(parts), keccak256(bytes(d))


def load_position(recall_seed: bytes, rng: RecallRange) -> int:
    """Flow sector where the recalled 256 KiB load starts."""
    loads = rng.length // SECTORS_PER_SEGMENT
    if loads == 0:
        raise InvalidAnswer("the recall range holds no whole load", length=rng.length)
    offset = (int.from_bytes(recall_seed, "big") % loads) & rng.shard_mask | rng.shard_id
    return rng.start + SECTORS_PER_SEGMENT * offset


def quality(seal_index: int, seed: bytes, sealed: bytes, pad: bytes) -> int:
    """Blake2b-512 of the sealed seal mixed with a quarter of the scratchpad, first 32 bytes."""
    part = pad[(seal_index % 4) * SEAL_BYTES:(seal_index % 4 + 1) * SEAL_BYTES]
    mixed = (np.frombuffer(sealed, dtype=np.uint8) ^ np.frombuffer(part, dtype=np.uint8))
    digest = hashlib.blake2b(bytes(24) + seal_index.to_bytes(8, "big") + seed + bytes(32)
                             + mixed.tobytes(), digest_size=64).digest()
    return int.from_bytes(digest[:32], "big")


def hit_threshold(target: int, flow_length: int, max_range: int, shard_bits: int = 0) -> int:
    """(target / scale) << 64 with scale = 2^64 min(L, R) / min(L >> bits, R), in integers."""
    whole = min(flow_length, max_range)
    mine = min(flow_length >> shard_bits, max_range)
    return target * mine // max(whole, 1)


def initial_target(difficulty: int) -> int:
    return MAX_TARGET // difficulty


def retarget(target: int, wanted: int, actual: int) -> int:
    """target' = (19 t + t wanted / actual) / 20, clamped to [t / 2, 2 t] (0 answers: 2 t)."""
    if actual == 0:
        return min(2 * target, MAX_TARGET)
    new = (19 * target + target * wanted // actual) // 20
    return max(target // 2, min(new, 2 * target, MAX_TARGET))


# ---- the flow replica a miner mines over ------------------------------------------------
def _hash_sectors(data: bytes) -> list[bytes]:
    return [keccak256(data[i:i + SECTOR_BYTES]) for i in range(0, len(data), SECTOR_BYTES)]


class FlowReplica:
    """A miner's full copy of the flow up to a context's length: sector data and the
    tree levels over it, from which seal proofs to the flow root are read."""

    def __init__(self, data: bytes) -> None:
        if len(data) % SECTOR_BYTES:
            raise InvalidInput("flow data must be whole sectors", length=len(data))
        self.data = data
        self.length = len(data) // SECTOR_BYTES
        depth = max(0, (self.length - 1).bit_length())
        level = _hash_sectors(data) + [zero_hash(0)] * ((1 << depth) - self.length)
        self.levels = [level]
        while len(level) > 1:
            level = [keccak256(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
            self.levels.append(level)

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def seal_data(self, position: int) -> bytes:
        return self.data[position * SECTOR_BYTES:(position + SECTORS_PER_SEAL) * SECTOR_BYTES]

    def seal_proof(self, position: int) -> list[bytes]:
        """Siblings from the seal's subtree (height 4) up to the root."""
        index = position // SECTORS_PER_SEAL
        return [self.levels[level][(index >> (level - SEAL_HEIGHT)) ^ 1]
                for level in range(SEAL_HEIGHT, len(self.levels) - 1)]


def verify_seal_proof(data: bytes, position: int, siblings: list[bytes], flow_length: int,
                      root: bytes) -> None:
    """The unsealed seal at `position` is in the flow whose root is `root`."""
    depth = max(0, (flow_length - 1).bit_length())
    if len(siblings) != depth - SEAL_HEIGHT:
        raise InvalidAnswer(f"seal proof has {len(siblings)} hashes, a flow of {flow_length} "
                            f"sectors needs {depth - SEAL_HEIGHT}", proof=len(siblings))
    leaves = _hash_sectors(data)
    while len(leaves) > 1:
        leaves = [keccak256(leaves[i] + leaves[i + 1]) for i in range(0, len(leaves), 2)]
    node, index = leaves[0], position // SECTORS_PER_SEAL
    for sibling in siblings:
        node = keccak256(sibling + node) if index & 1 else keccak256(node + sibling)
        index >>= 1
    if node != root:
        raise InvalidAnswer(f"seal at flow sector {position} does not prove to the context's "
                            "flow root", position=position)


@dataclass(frozen=True)
class Answer:
    epoch: int
    context_digest: bytes
    nonce: bytes  # 32 bytes
    miner_id: bytes
    range: RecallRange
    recall_position: int  # flow sector of the answering seal
    seal_index: int  # 0..63 within the load
    sealed: bytes  # the 4 KiB sealed seal
    proof: tuple[bytes, ...]

    def to_args(self) -> list:
        r = self.range
        return [self.epoch, self.context_digest, self.nonce, self.miner_id,
                [r.start, r.length, r.shard_id, r.shard_mask], self.recall_position,
                self.seal_index, self.sealed, list(self.proof)]


def search(replica: FlowReplica, miner: bytes, context_digest: bytes, epoch: int, target: int,
           max_range: int, nonces: range, sealed_loads: dict[int, list[bytes]]) -> tuple[
               Answer | None, int]:
    """Try nonces over the replica; returns (the first hit or None, iterations run).

    `sealed_loads` caches the miner's sealed seals per load position across calls.
    """
    rng = mining_range(replica.length, max_range)
    subtask, rdigest = subtask_digest(context_digest, miner), rng.digest()
    threshold = hit_threshold(target, replica.length, max_range)
    iterations = 0
    for n in nonces:
        iterations += 1
        nonce = n.to_bytes(32, "big")
        seed = pad_seed(miner, nonce, subtask, rdigest)
        pad, recall_seed = scratchpad(seed)
        load = load_position(recall_seed, rng)
        if load not in sealed_loads:
            sealed_loads[load] = [
                seal(replica.seal_data(load + SECTORS_PER_SEAL * i), miner, context_digest,
                     load + SECTORS_PER_SEAL * i) for i in range(SEALS_PER_LOAD)]
        for i, sealed in enumerate(sealed_loads[load]):
            if quality(i, seed, sealed, pad) <= threshold:
                position = load + SECTORS_PER_SEAL * i
                return Answer(epoch, context_digest, nonce, miner, rng, position, i, sealed,
                              tuple(replica.seal_proof(position))), iterations
    return None, iterations


def check_answer(answer: Answer, flow_root: bytes, flow_length: int, target: int,
                 max_range: int) -> int:
    """Re-derive everything of an answer against its context; returns its quality.

    Raises InvalidAnswer naming what does not hold.
    """
    rng = answer.range
    expected = mining_range(flow_length, max_range, rng.start)
    if (rng.shard_id, rng.shard_mask) != (0, NO_SHARD_MASK) or rng != expected:
        raise InvalidAnswer(f"recall range {rng} is not the context's range {expected}",
                            start=rng.start, length=rng.length)
    if len(answer.nonce) != 32:
        raise InvalidAnswer(f"nonce must be 32 bytes, got {len(answer.nonce)}")
    if not 0 <= answer.seal_index < SEALS_PER_LOAD:
        raise InvalidAnswer(f"seal index {answer.seal_index} outside 0..{SEALS_PER_LOAD - 1}",
                            seal_index=answer.seal_index)
    seed = pad_seed(answer.miner_id, answer.nonce,
                    subtask_digest(answer.context_digest, answer.miner_id), rng.digest())
    pad, recall_seed = scratchpad(seed)
    position = load_position(recall_seed, rng) + SECTORS_PER_SEAL * answer.seal_index
    if position != answer.recall_position:
        raise InvalidAnswer(f"recall position {answer.recall_position} is not the recalled "
                            f"{position}", recall_position=answer.recall_position,
                            expected=position)
    data = unseal(answer.sealed, answer.miner_id, answer.context_digest, position)
    verify_seal_proof(data, position, list(answer.proof), flow_length, flow_root)
    score = quality(answer.seal_index, seed, answer.sealed, pad)
    threshold = hit_threshold(target, flow_length, max_range)
    if score > threshold:
        raise InvalidAnswer(f"quality {score:#x} misses the target {threshold:#x}",
                            quality=score, threshold=threshold)
    return score
