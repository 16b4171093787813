"""Sampling rewards (0G's DA sampling, docs/spec/da.md): qualities, validity, difficulty.

Every SAMPLING_ROUND_BLOCKS blocks a network starts a round with a fresh
seed. For a stored line (slice) of a blob, line quality = keccak(seed, epoch,
quorum, data root, line index); for each 1 KiB subline, data quality =
keccak(line quality, subline index, data). An answer is valid when the two,
read as 256-bit integers, sum to at most the target; the target moves toward
SAMPLING_TARGET_ANSWERS valid answers per round.
"""

from __future__ import annotations

from zg_actors.crypto.encoding import encode
from zg_actors.crypto.keccak import keccak256
from zg_actors.crypto.merkle import merkle_levels, proof_from_levels
from zg_actors.da.params import (
    SAMPLING_MAX_TARGET,
    SAMPLING_TARGET_ANSWERS,
    SECTOR_BYTES,
    SECTORS_PER_SUBLINE,
    SUBLINE_BYTES,
)


def line_quality(seed: bytes, epoch: int, quorum_id: int, data_root: bytes, line: int) -> bytes:
    return keccak256(encode([seed, epoch, quorum_id, data_root, line]))


def data_quality(line_q: bytes, subline: int, data: bytes) -> bytes:
    return keccak256(encode([line_q, subline, data]))


def answer_quality(seed: bytes, epoch: int, quorum_id: int, data_root: bytes, line: int,
                   subline: int, data: bytes) -> int:
    return quality_in_line(line_quality(seed, epoch, quorum_id, data_root, line), subline,
                           data)


def quality_in_line(line_q: bytes, subline: int, data: bytes) -> int:
    """answer_quality from the line's quality (the same for every subline of a line)."""
    return int.from_bytes(line_q, "big") + int.from_bytes(
        data_quality(line_q, subline, data), "big")


def is_valid_answer(quality: int, target: int) -> bool:
    return quality <= target


def next_round_seed(previous: bytes, network_id: int, height: int, time_ms: int,
                    proposer: bytes) -> bytes:
    """Seed of the round starting at `height`; chained so a proposer sways one input only."""
    return keccak256(encode([b"zg-da-sampling", previous, network_id, height, time_ms,
                             proposer]))


def adjust_target(target: int, answers: int) -> int:
    """Scale the target by wanted / seen answers, at most x2 or /2 per round, so a burst
    or a dry round does not swing difficulty wildly."""
    scaled = target * SAMPLING_TARGET_ANSWERS // max(answers, 1)
    return max(1, min(scaled, target * 2, SAMPLING_MAX_TARGET), target // 2)


def find_answers(seed: bytes, target: int, epoch: int, quorum_id: int, data_root: bytes,
                 line: int, slice_bytes: bytes, limit: int) -> list[tuple[int, list, list]]:
    """Valid answers a holder of `line` can give this round: (subline, its sectors, each
    sector's Merkle proof into the slice root), at most `limit`."""
    found: list[tuple[int, list, list]] = []
    levels = None
    line_q = line_quality(seed, epoch, quorum_id, data_root, line)  # once per line
    for subline in range(-(-len(slice_bytes) // SUBLINE_BYTES)):
        data = slice_bytes[subline * SUBLINE_BYTES:(subline + 1) * SUBLINE_BYTES]
        if not is_valid_answer(quality_in_line(line_q, subline, data), target):
            continue
        if levels is None:  # the sector tree is built only for slices with an answer
            levels = merkle_levels([keccak256(slice_bytes[i:i + SECTOR_BYTES])
                                    for i in range(0, len(slice_bytes), SECTOR_BYTES)])
        first = subline * SECTORS_PER_SUBLINE
        indexes = range(first, first + len(data) // SECTOR_BYTES)
        found.append((subline, [slice_bytes[i * SECTOR_BYTES:(i + 1) * SECTOR_BYTES]
                                for i in indexes],
                      [proof_from_levels(levels, i).to_list() for i in indexes]))
        if len(found) >= limit:
            break
    return found
