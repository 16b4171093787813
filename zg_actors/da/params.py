"""Protocol constants of 0G DA as this project runs it (docs/spec/da.md), each with its unit."""

from __future__ import annotations

from enum import IntEnum

from zg_actors.crypto.merkle import SECTOR_BYTES  # leaves of a slice's Merkle tree

DEFAULT_K = 32  # data slices per blob (any k of n recover it)
DEFAULT_N = 96  # slices per blob = slots per quorum; k / n = 1/3 as 0G's 1024 / 3072
MAX_SLICES = 256  # the GF(2^8) code has at most 256 shards
MAX_BLOB_BYTES = 32_505_852  # 0G's maximum blob
SUBLINE_BYTES = 1024  # sampling answers prove one 1 KiB subline of a slice
SECTORS_PER_SUBLINE = SUBLINE_BYTES // SECTOR_BYTES
MAX_QUORUMS = 10  # 0G: at most 10 quorums per epoch
SAMPLING_ROUND_BLOCKS = 30  # 0G: a sampling round every 30 blocks
SAMPLING_TARGET_ANSWERS = 20  # 0G: difficulty aims at 20 valid answers per round
SAMPLING_MAX_ANSWERS = 2 * SAMPLING_TARGET_ANSWERS  # 0G: at most 2 x 20 answers a round
SAMPLING_EPOCH_WINDOW = 300  # 0G: answers only for blobs of the last 300 epochs
# Initial sampling target: an answer is valid when two uniform 256-bit qualities sum to
# <= target, probability target^2 / 2^513; 2^255 makes about 1 subline in 8 valid.
SAMPLING_INITIAL_TARGET = 2**255
SAMPLING_MAX_TARGET = 2**257
BLS_DOMAIN_BATCH = b"zg-da-batch"  # domain tag of what DA nodes sign
BLS_DOMAIN_EPOCH = b"zg-da-epoch"  # domain tag of a signer's epoch (ticket) signature
# C0 seals an epoch's registry once every signer sent its ticket, or this many C0 ticks
# after the epoch opened (signers that missed it get no slots that epoch).
TICKET_WINDOW_TICKS = 10

class BlobStatus(IntEnum):
    """0G's BlobStatus values, as on the gRPC wire."""

    UNKNOWN = 0
    PROCESSING = 1
    CONFIRMED = 2
    FAILED = 3
    FINALIZED = 4
    INSUFFICIENT_SIGNATURES = 5


def signing_threshold(n: int) -> int:
    """Signed slots a certificate needs: ceil(2n / 3), so honest signed slots >= n / 3."""
    return -(-2 * n // 3)
