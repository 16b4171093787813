"""Which miner keeps which shard, and the devnet identities of miners and clients (pure).

Shard j of segment i of entry tx_seq goes to miner (tx_seq + i + j) mod miners:
the k + m shards of one segment land on k + m distinct miners (miners >= k + m),
and consecutive segments rotate so that every miner holds a similar share.
"""

from __future__ import annotations

from functools import lru_cache

from zg_actors.crypto.accounts import Account
from zg_actors.crypto.keccak import keccak256

# The storage treasury: receives the service fee. No key exists for it on a devnet.
TREASURY = keccak256(b"zg-storage/treasury")[:20]


def shard_miner(tx_seq: int, segment: int, shard: int, miners: int) -> int:
    return (tx_seq + segment + shard) % miners


def miner_shard(tx_seq: int, segment: int, miner: int, miners: int, shards: int) -> int | None:
    """The shard index `miner` keeps of this segment, or None when it keeps none."""
    shard = (miner - tx_seq - segment) % miners
    return shard if shard < shards else None


def assigned_segments(tx_seq: int, segments: int, miner: int, miners: int,
                      shards: int) -> list[int]:
    return [i for i in range(segments)
            if miner_shard(tx_seq, i, miner, miners, shards) is not None]


def assigned_miners(tx_seq: int, segments: int, miners: int, shards: int) -> list[int]:
    """Miners that keep at least one shard of the entry."""
    return sorted({shard_miner(tx_seq, i, j, miners)
                   for i in range(min(segments, miners)) for j in range(shards)})


@lru_cache(maxsize=256)
def miner_account(seed: str, index: int) -> Account:
    """Devnet key of storage miner `index` (signs its confirmations and PoRA answers)."""
    return Account.from_seed(f"{seed}/storage-miner/{index}".encode())


@lru_cache(maxsize=16)
def client_account(seed: str) -> Account:
    """Devnet key of the storage client (`zg upload`), funded on every network."""
    return Account.from_seed(f"{seed}/storage-client".encode())
