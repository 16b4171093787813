"""The KV client (Python SDK) in the shapes of 0G's Go client (0g-storage-client kv/):
reads through a KV node's kv_* JSON-RPC, writes as tagged flow entries.

    kv = KvClient(kv_rpc_url(config))                 # reads
    batcher = Batcher(kv, storage_client, network_id) # writes, at the latest version
    batcher.set(stream_id, b"key", b"value")
    batcher.grant_writer_role(stream_id, bob)
    receipt = batcher.exec(wait=True)                 # {"tx_seq", "result", ...}
    it = kv.iterator(stream_id)                       # at the node's latest version
    it.seek_to_first()
    while it.valid(): print(it.key, it.data); it.next()
"""

from __future__ import annotations

import base64
import time
from typing import Any

from zg_actors.errors import Unavailable
from zg_actors.rpc.jsonrpc import JsonRpcClient
from zg_actors.storage.kv.encoding import (
    SKIP_CHECKS_VERSION,
    AccessControl,
    AclOp,
    KVTx,
    StreamRead,
    StreamWrite,
    encode_tx,
    stream_tags,
    tx_stream_ids,
)
from zg_actors.storage.kv.rpc import MAX_QUERY_LEN_BYTES
from zg_actors.storage.kv.state import KeyValue

RESULT_WAIT_S = 60.0  # exec(wait=True): how long the tx's result may take to be recorded
RESULT_POLL_S = 0.2  # between asks for the result (a KV node replays once per block)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _hex(raw: bytes) -> str:
    return "0x" + raw.hex()


class KvClient:
    """0G's KV client: every read of a KV node, values joined from 256 KiB pages."""

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        self.rpc = JsonRpcClient(url, timeout_s)

    def applied_seq(self) -> int | None:
        """The last tx_seq the node replayed (None before the first)."""
        return self.rpc.call("kv_getReplayProgress")["appliedSeq"]

    def latest_version(self) -> int:
        """The version "now" is: the last tx_seq the node replayed (0 before any)."""
        return self.applied_seq() or 0

    def _rest(self, stream_id: bytes, key: bytes, first: dict,
              version: int | None) -> KeyValue:
        """A whole value from its first page and the pages after it, at the version the
        first page came from."""
        data = base64.b64decode(first["data"])
        at = first["version"] if version is None else version
        while len(data) < first["size"]:
            page = self.rpc.call("kv_getValue", _hex(stream_id), _b64(key), len(data),
                                 MAX_QUERY_LEN_BYTES, at)
            data += base64.b64decode(page["data"])
        return KeyValue(key, first["version"], data)

    def get_value(self, stream_id: bytes, key: bytes, version: int | None = None) -> KeyValue:
        """The key's value at `version` (default the latest); version 0 and empty data
        when it was never written (or is deleted)."""
        first = self.rpc.call("kv_getValue", _hex(stream_id), _b64(key), 0,
                              MAX_QUERY_LEN_BYTES, version)
        return self._rest(stream_id, key, first, version)

    def _neighbour(self, method: str, stream_id: bytes, key: bytes | None, inclusive: bool,
                   version: int | None) -> KeyValue | None:
        params: list[Any] = [_hex(stream_id)]
        if key is not None:
            params.append(_b64(key))
        params += [0, MAX_QUERY_LEN_BYTES]
        if key is not None:
            params.append(inclusive)
        found = self.rpc.call(method, *params, version)
        if found is None:
            return None
        return self._rest(stream_id, base64.b64decode(found["key"]), found, version)

    def get_next(self, stream_id: bytes, key: bytes, inclusive: bool = False,
                 version: int | None = None) -> KeyValue | None:
        return self._neighbour("kv_getNext", stream_id, key, inclusive, version)

    def get_prev(self, stream_id: bytes, key: bytes, inclusive: bool = False,
                 version: int | None = None) -> KeyValue | None:
        return self._neighbour("kv_getPrev", stream_id, key, inclusive, version)

    def get_first(self, stream_id: bytes, version: int | None = None) -> KeyValue | None:
        return self._neighbour("kv_getFirst", stream_id, None, False, version)

    def get_last(self, stream_id: bytes, version: int | None = None) -> KeyValue | None:
        return self._neighbour("kv_getLast", stream_id, None, False, version)

    def transaction_result(self, tx_seq: int) -> str | None:
        return self.rpc.call("kv_getTransactionResult", tx_seq)

    def wait_result(self, tx_seq: int, timeout_s: float = RESULT_WAIT_S) -> str:
        """The tx's recorded result once a KV node replayed it."""
        deadline = time.monotonic() + timeout_s
        while (result := self.transaction_result(tx_seq)) is None:
            if time.monotonic() > deadline:
                raise Unavailable(f"KV tx {tx_seq} has no result after {timeout_s:.0f} s "
                                  f"(node at {self.applied_seq()})", tx_seq=tx_seq)
            time.sleep(RESULT_POLL_S)
        return result

    def iterator(self, stream_id: bytes, version: int | None = None) -> Iterator:
        """An iterator over the stream at `version` (default: the node's latest now)."""
        return Iterator(self, stream_id, self.latest_version() if version is None else version)


class Iterator:
    """0G's iterator: seek, then walk live keys in order, all at one fixed version."""

    def __init__(self, client: KvClient, stream_id: bytes, version: int) -> None:
        self.client, self.stream_id, self.version = client, stream_id, version
        self.current: KeyValue | None = None

    def valid(self) -> bool:
        return self.current is not None

    @property
    def key(self) -> bytes:
        assert self.current is not None, "seek first"
        return self.current.key

    @property
    def data(self) -> bytes:
        assert self.current is not None, "seek first"
        return self.current.data

    def seek_to_first(self) -> None:
        self.current = self.client.get_first(self.stream_id, self.version)

    def seek_to_last(self) -> None:
        self.current = self.client.get_last(self.stream_id, self.version)

    def seek_before(self, key: bytes) -> None:
        """To the last key <= `key`."""
        self.current = self.client.get_prev(self.stream_id, key, True, self.version)

    def seek_after(self, key: bytes) -> None:
        """To the first key >= `key`."""
        self.current = self.client.get_next(self.stream_id, key, True, self.version)

    def next(self) -> None:
        self.current = self.client.get_next(self.stream_id, self.key, False, self.version)

    def prev(self) -> None:
        self.current = self.client.get_prev(self.stream_id, self.key, False, self.version)


class Batcher:
    """0G's batcher: collect writes, reads and ACL ops, then `exec` uploads them as one KV
    tx (one flow entry tagged STREAM + the streams written or whose ACLs change).

    `version` is the snapshot the tx claims to have read at: by default the KV node's
    latest version, fixed at the first `get` (or at `exec`); SKIP_CHECKS_VERSION skips
    the conflict check. "Latest" is what the node has replayed: a blind write sent right
    after another tx the node has not replayed yet is a VersionConfliction if both write
    one key (wait for results, or choose the version). `storage` is a StorageClient; its
    account sends the tx.
    """

    def __init__(self, client: KvClient, storage: Any, network_id: int | None = None,
                 version: int | None = None) -> None:
        self.client, self.storage, self.network_id = client, storage, network_id
        self.version = version
        self.reads: list[StreamRead] = []
        self.writes: list[StreamWrite] = []
        self.controls: list[AccessControl] = []

    def _at(self) -> int:
        if self.version is None:
            self.version = self.client.latest_version()
        return self.version

    # ---- reads and writes -----------------------------------------------------------------
    def get(self, stream_id: bytes, key: bytes) -> bytes:
        """Read `key` at the batch's version and put it in the read set: the tx will not
        commit if the key was written after that version."""
        self.reads.append(StreamRead(stream_id, key))
        return self.client.get_value(stream_id, key, self._at()).data

    def set(self, stream_id: bytes, key: bytes, data: bytes) -> None:
        self.writes.append(StreamWrite(stream_id, key, data))

    def delete(self, stream_id: bytes, key: bytes) -> None:
        """A zero-length value: the key reads as deleted."""
        self.writes.append(StreamWrite(stream_id, key, b""))

    # ---- access control ---------------------------------------------------------------
    def _acl(self, op: AclOp, stream_id: bytes, key: bytes | None = None,
             account: bytes | None = None) -> None:
        self.controls.append(AccessControl(op, stream_id, key, account))

    def grant_admin_role(self, stream_id: bytes, account: bytes) -> None:
        self._acl(AclOp.GRANT_ADMIN_ROLE, stream_id, account=account)

    def renounce_admin_role(self, stream_id: bytes) -> None:
        self._acl(AclOp.RENOUNCE_ADMIN_ROLE, stream_id)

    def set_key_to_special(self, stream_id: bytes, key: bytes) -> None:
        self._acl(AclOp.SET_KEY_TO_SPECIAL, stream_id, key=key)

    def set_key_to_normal(self, stream_id: bytes, key: bytes) -> None:
        self._acl(AclOp.SET_KEY_TO_NORMAL, stream_id, key=key)

    def grant_writer_role(self, stream_id: bytes, account: bytes) -> None:
        self._acl(AclOp.GRANT_WRITER_ROLE, stream_id, account=account)

    def revoke_writer_role(self, stream_id: bytes, account: bytes) -> None:
        self._acl(AclOp.REVOKE_WRITER_ROLE, stream_id, account=account)

    def renounce_writer_role(self, stream_id: bytes) -> None:
        self._acl(AclOp.RENOUNCE_WRITER_ROLE, stream_id)

    def grant_special_writer_role(self, stream_id: bytes, key: bytes, account: bytes) -> None:
        self._acl(AclOp.GRANT_SPECIAL_WRITER_ROLE, stream_id, key=key, account=account)

    def revoke_special_writer_role(self, stream_id: bytes, key: bytes,
                                   account: bytes) -> None:
        self._acl(AclOp.REVOKE_SPECIAL_WRITER_ROLE, stream_id, key=key, account=account)

    def renounce_special_writer_role(self, stream_id: bytes, key: bytes) -> None:
        self._acl(AclOp.RENOUNCE_SPECIAL_WRITER_ROLE, stream_id, key=key)

    # ---- sending ----------------------------------------------------------------------
    def build(self) -> KVTx:
        """The tx as it stands (encode_tx checks its limits)."""
        version = SKIP_CHECKS_VERSION if not (self.reads or self.writes) else self._at()
        return KVTx(version, tuple(self.reads), tuple(self.writes), tuple(self.controls))

    def exec(self, wait: bool = False, timeout_s: float = RESULT_WAIT_S) -> dict:
        """Upload the tx as a tagged flow entry (FINALIZED before this returns); its
        tx_seq, root and version, and with `wait` the result a KV node recorded."""
        tx = self.build()
        body = encode_tx(tx)
        receipt = self.storage.upload(body, network_id=self.network_id,
                                      tags=stream_tags(tx_stream_ids(tx)))
        out = {"tx_seq": receipt["tx_seq"], "root": receipt["root"],
               "network_id": receipt["network_id"], "version": tx.version,
               "size": len(body), "result": None}
        if wait:
            out["result"] = self.client.wait_result(receipt["tx_seq"], timeout_s)
        return out
