"""Typed errors of the erasure code: each names the offending value and what was expected."""

from __future__ import annotations

from zg_actors.errors import InvalidInput


class InvalidCodeParameters(InvalidInput):
    """k, m or the padding unit is outside what the code defines."""

    code = "EC_PARAMETERS"


class TooFewShards(InvalidInput):
    """Decoding needs any k shards; fewer cannot determine the payload."""

    code = "EC_TOO_FEW_SHARDS"


class UnequalShardLengths(InvalidInput):
    """Shards of one encoding always have one length; a mix means a caller mixed encodings."""

    code = "EC_SHARD_LENGTHS"


class UnknownShardIndex(InvalidInput):
    """A shard index outside 0 .. k + m - 1 cannot belong to this code."""

    code = "EC_SHARD_INDEX"


class InvalidShardData(InvalidInput):
    """A payload, shard or data matrix that is not bytes-like uint8 data of the right shape."""

    code = "EC_SHARD_DATA"


class UnknownBackend(InvalidInput):
    """A backend name that does not exist, or one that is not installed on this machine."""

    code = "EC_BACKEND"
