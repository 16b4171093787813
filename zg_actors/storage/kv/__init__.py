"""0G Storage's KV layer (docs/spec/kv.md): structured data on the log.

Pure core, no Ray: `encoding.py` (the KV tx body, the STREAM tag, stream ids),
`store.py` (the ordered store interface and an in-memory one), `state.py` (values by
version, ACL rows, results, progress and the reads kv_* answers), `replay.py` (0G's
replay rules), `follow.py` (following a flow into the replayer) and `rpc.py` (the kv_*
JSON-RPC methods). With Ray: `actors.py` (KVNode, the Serve app), `client.py` (Batcher,
Iterator), `cli.py` (`zg kv ...`).
"""

from zg_actors.storage.kv.encoding import (
    STREAM_DOMAIN,
    AccessControl,
    AclOp,
    KVTx,
    StreamRead,
    StreamWrite,
    decode_tx,
    encode_tx,
    parse_stream_id,
    stream_id_from_name,
    stream_tags,
    tag_stream_ids,
)
from zg_actors.storage.kv.replay import FlowEntry, Replayer
from zg_actors.storage.kv.state import KeyValue, KVState
from zg_actors.storage.kv.store import LmdbStore, MemoryStore, OrderedStore

__all__ = ["STREAM_DOMAIN", "AccessControl", "AclOp", "FlowEntry", "KVState", "KVTx",
           "KeyValue", "LmdbStore", "MemoryStore", "OrderedStore", "Replayer", "StreamRead",
           "StreamWrite", "decode_tx", "encode_tx", "parse_stream_id", "stream_id_from_name",
           "stream_tags", "tag_stream_ids"]
