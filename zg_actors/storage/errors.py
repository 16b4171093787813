"""Typed storage errors; each names the offending value."""

from __future__ import annotations

from zg_actors.chain.modules.base import ModuleError
from zg_actors.errors import InsufficientBalance, InvalidInput, InvalidProof, NotFound, Unavailable


class InvalidSubmission(ModuleError, InvalidInput):
    """A flow submission whose nodes do not match its length."""

    code = "INVALID_SUBMISSION"


class StorageFeeTooLow(ModuleError, InsufficientBalance):
    code = "STORAGE_FEE_TOO_LOW"


class NotAMiner(ModuleError, InvalidInput):
    code = "NOT_A_MINER"


class UnknownEntry(ModuleError, NotFound):
    code = "UNKNOWN_ENTRY"


class FileTooLarge(InvalidInput):
    code = "FILE_TOO_LARGE"


class SegmentRejected(InvalidProof):
    """A segment whose data or proof does not match the on-chain root: nothing is stored."""

    code = "SEGMENT_REJECTED"


class WrongEntry(SegmentRejected):
    """Shards sent for a root that is not the one the chain records at that tx sequence."""

    code = "WRONG_ENTRY"


class NotAssigned(InvalidInput):
    code = "NOT_ASSIGNED"


class UnknownFile(NotFound):
    code = "UNKNOWN_FILE"


class DataUnavailable(Unavailable):
    """Fewer than k verified shards of a segment could be fetched."""

    code = "DATA_UNAVAILABLE"


class UploadIncomplete(Unavailable):
    """An upload whose entry did not become FINALIZED by its deadline: names the segments
    and miners still missing."""

    code = "UPLOAD_INCOMPLETE"
