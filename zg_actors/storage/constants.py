"""Protocol units of 0G Storage (docs/spec/storage.md "Units"), named once with their unit."""

from __future__ import annotations

from zg_actors.crypto.merkle import SECTOR_BYTES

SECTORS_PER_SEAL = 16  # a 4 KiB seal
SEAL_BYTES = SECTOR_BYTES * SECTORS_PER_SEAL
SECTORS_PER_SEGMENT = 1024  # a segment (= a PoRA load) is 256 KiB
SEGMENT_BYTES = SECTOR_BYTES * SECTORS_PER_SEGMENT
SEGMENT_HEIGHT = 10  # log2(SECTORS_PER_SEGMENT)
PADDING_UNITS = 16  # padding granularity: next power of two / 16 sectors
BPS = 10_000  # basis points in a whole

STATUS_UPLOADING = "UPLOADING"
STATUS_FINALIZED = "FINALIZED"
