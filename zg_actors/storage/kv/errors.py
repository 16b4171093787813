"""Typed KV errors; each names the offending value."""

from __future__ import annotations

from zg_actors.errors import InvalidInput, NotFound

# 0G's ParseError texts (0g-storage-kv node/stream/src/stream_manager/error.rs): the
# recorded result of a tx whose body does not parse is "DataParseError: " + one of them.
INVALID_DATA = "Invalid stream data"
LIST_TOO_LONG = "Stream read/write/access_control list too long"


class DataParseError(InvalidInput):
    """A KV tx body (or a value given to the encoder) that does not follow the layout.

    `result` is what a KV node records for the tx (0G's exact string); the message adds
    what was wrong and where.
    """

    code = "DATA_PARSE_ERROR"

    def __init__(self, reason: str, detail: str, **details: object) -> None:
        super().__init__(f"DataParseError: {reason}: {detail}", **details)
        self.result = f"DataParseError: {reason}"


class InvalidStreamId(InvalidInput):
    code = "INVALID_STREAM_ID"


class ReplayOutOfOrder(InvalidInput):
    """A flow entry handed to the replayer out of tx_seq order."""

    code = "REPLAY_OUT_OF_ORDER"


class EntryDataMissing(InvalidInput):
    """A flow entry that must be replayed, handed over without its data."""

    code = "ENTRY_DATA_MISSING"


class UnknownStream(NotFound):
    code = "UNKNOWN_STREAM"
