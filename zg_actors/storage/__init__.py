"""0G Storage log layer (docs/spec/storage.md): file roots, the flow, miners, client.

The pure core is `file.py` (file roots, segments, submissions), `flow.py` (the
incremental flow tree and the `flow` chain module), `placement.py` (which miner
keeps which shard) and `miner.py` (a miner's checks and LMDB store). The Ray
shell is `actors.py`; `sdk.py` is the client behind `zg upload/download`. The KV
layer on top of the log is `kv/` (docs/spec/kv.md).
"""

from zg_actors.storage.constants import (
    SECTOR_BYTES,
    SECTORS_PER_SEGMENT,
    SEGMENT_BYTES,
)
from zg_actors.storage.file import FileTree, file_root, file_tree, submission_nodes

__all__ = ["SECTOR_BYTES", "SECTORS_PER_SEGMENT", "SEGMENT_BYTES", "FileTree", "file_root",
           "file_tree", "submission_nodes"]
