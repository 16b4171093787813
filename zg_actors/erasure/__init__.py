"""The canonical erasure code and its backends (docs/spec/erasure.md); no Ray in here.

    shards = encode(payload, k=10, m=4)                # (14, L) uint8
    payload = decode({i: shards[i] for i in (0, 3, 5, 6, 7, 8, 9, 10, 11, 13)},
                     k=10, m=4, length=len(payload))

The Ray shell (EncoderActor, EncoderPool) is in `zg_actors.erasure.actors`.
"""

from zg_actors.erasure.backends import (
    ENV_BACKEND,
    Backend,
    available_backends,
    backend_name,
    get_backend,
    use,
    use_fastest,
)
from zg_actors.erasure.code import (
    SECTOR_BYTES,
    data_matrix,
    decode,
    encode,
    encode_data,
    encode_parity,
    recover_data,
    shard_length,
)
from zg_actors.erasure.errors import (
    InvalidCodeParameters,
    InvalidShardData,
    TooFewShards,
    UnequalShardLengths,
    UnknownBackend,
    UnknownShardIndex,
)
from zg_actors.erasure.field import MAX_SHARDS, encoding_matrix, parity_matrix

__all__ = [
    "ENV_BACKEND", "MAX_SHARDS", "SECTOR_BYTES", "Backend", "InvalidCodeParameters",
    "InvalidShardData", "TooFewShards", "UnequalShardLengths", "UnknownBackend",
    "UnknownShardIndex", "available_backends", "backend_name", "data_matrix", "decode", "encode",
    "encode_data", "encode_parity", "encoding_matrix", "get_backend", "parity_matrix",
    "recover_data", "shard_length", "use", "use_fastest",
]
