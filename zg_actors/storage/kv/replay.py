"""Replay of flow entries into KV state, as 0G's KV node does it (docs/spec/kv.md "Replay"
and "ACL rules"; 0g-storage-kv node/stream/src/stream_manager/stream_replayer.rs).

    replayer = Replayer(KVState(MemoryStore()), streams=[stream_id])
    for entry in flow_entries:                       # in tx_seq order
        data = fetch(entry) if replayer.needs_data(entry) else None
        replayer.apply(entry, data)                  # the recorded result, or None

Every check reads the state before the tx (rows of versions < tx_seq), and a tx that
fails changes nothing but its recorded result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from zg_actors.storage.kv.encoding import (
    RENOUNCE_OPS,
    AccessControl,
    AclOp,
    BodyReader,
    padded_entry,
    tag_stream_ids,
    writes_of,
)
from zg_actors.storage.kv.errors import DataParseError, EntryDataMissing, ReplayOutOfOrder
from zg_actors.storage.kv.state import ZERO_ADDRESS, AclRow, KVState

COMMIT = "Commit"
VERSION_CONFLICTION = "VersionConfliction"
TAGS_MISMATCH = "TagsMismatch"
SENDER_NO_WRITE_PERMISSION = "SenderNoWritePermission"
TRUNCATED_KEY_CHARS = 32  # a result names at most this much of a key
ADMIN_OPS = frozenset({AclOp.GRANT_ADMIN_ROLE, AclOp.SET_KEY_TO_SPECIAL,
                       AclOp.SET_KEY_TO_NORMAL, AclOp.REVOKE_WRITER_ROLE,
                       AclOp.REVOKE_SPECIAL_WRITER_ROLE})


def result_kind(result: str) -> str:
    """A recorded result without what it names (stream, key, account): its first word,
    e.g. "WritePermissionDenied" or "DataParseError"."""
    return result.split(":", 1)[0]


@dataclass(frozen=True)
class FlowEntry:
    """What a KV node learns of a flow entry from the flow's Submit event."""

    tx_seq: int
    sender: bytes
    tags: bytes


class Rejected(Exception):
    """A tx that does not commit; `result` is what is recorded for it."""

    def __init__(self, result: str) -> None:
        super().__init__(result)
        self.result = result


def truncated_key(key: bytes) -> str:
    """A key as 0G's results print it: UTF-8 (else UNKNOWN), its first 32 characters."""
    if not key:
        return "NONE"
    try:
        return key.decode()[:TRUNCATED_KEY_CHARS]
    except UnicodeDecodeError:
        return "UNKNOWN"


def write_permission_denied(stream_id: bytes, key: bytes) -> str:
    return f"WritePermissionDenied: stream: 0x{stream_id.hex()}, key: {truncated_key(key)}"


def access_control_permission_denied(row: AclRow) -> str:
    return (f"AccessControlPermissionDenied: operation: {row.op.name}, stream: "
            f"0x{row.stream_id.hex()}, key: {truncated_key(row.key)}, "
            f"account: 0x{row.account.hex()}")


class Replayer:
    """Applies flow entries, in tx_seq order, to the KV state of the followed streams."""

    def __init__(self, state: KVState, streams: Iterable[bytes]) -> None:
        self.state = state
        self.streams = frozenset(streams)

    def followed_ids(self, entry: FlowEntry) -> list[bytes]:
        """The entry's stream ids if it is a KV tx of followed streams only, else []
        (0G skips an entry with any stream it does not follow)."""
        ids = tag_stream_ids(entry.tags)
        return ids if all(s in self.streams for s in ids) else []

    def _sender_may_write(self, entry: FlowEntry, ids: list[bytes]) -> bool:
        return any(self.state.can_write(entry.sender, s, entry.tx_seq) for s in ids)

    def needs_data(self, entry: FlowEntry) -> bool:
        """Whether applying `entry` reads its data (a node downloads only those)."""
        ids = self.followed_ids(entry)
        return bool(ids) and self._sender_may_write(entry, ids)

    def apply(self, entry: FlowEntry, data: bytes | None) -> str | None:
        """Apply the next entry; returns its recorded result (None: not a KV tx of the
        followed streams, nothing recorded). `data` is needed when needs_data() says so."""
        expected = self.state.next_tx_seq
        if entry.tx_seq != expected:
            raise ReplayOutOfOrder(f"entry {entry.tx_seq} given, replay is at {expected}",
                                   tx_seq=entry.tx_seq, expected=expected)
        ids = self.followed_ids(entry)
        if not ids:
            self.state.commit(entry.tx_seq, None)
            return None
        if not self._sender_may_write(entry, ids):
            self.state.commit(entry.tx_seq, SENDER_NO_WRITE_PERMISSION)
            return SENDER_NO_WRITE_PERMISSION
        if data is None:
            raise EntryDataMissing(f"entry {entry.tx_seq} must be replayed: its data is "
                                   "needed", tx_seq=entry.tx_seq)
        try:
            writes, controls = self._judge(entry, ids, BodyReader(padded_entry(data)))
        except (DataParseError, Rejected) as exc:
            self.state.commit(entry.tx_seq, exc.result)
            return exc.result
        self.state.commit(entry.tx_seq, COMMIT, writes, controls)
        return COMMIT

    def _judge(self, entry: FlowEntry, ids: list[bytes],
               reader: BodyReader) -> tuple[list[tuple[bytes, bytes, bytes]], list[AclRow]]:
        """The tx's writes and ACL rows if it commits; Rejected (or DataParseError) if
        not. Sections are parsed and judged in 0G's order: reads, writes, ACL ops."""
        seq, state = entry.tx_seq, self.state
        version = reader.version()
        for read in reader.reads():
            if read.stream_id not in self.streams:
                raise Rejected(TAGS_MISMATCH)
            if state.latest_version(read.stream_id, read.key, seq) > version:
                raise Rejected(VERSION_CONFLICTION)
        writes = writes_of(reader.writes())
        tagged = set(ids)
        for stream_id, key in writes:
            if stream_id not in tagged:
                raise Rejected(TAGS_MISMATCH)
            if state.latest_version(stream_id, key, seq) > version:
                raise Rejected(VERSION_CONFLICTION)
            if not state.has_write_permission(entry.sender, stream_id, key, seq):
                raise Rejected(write_permission_denied(stream_id, key))
        rows, admin_of = self._acl_rows(entry, ids, reader.controls())
        for row in rows:
            self._check_acl(entry, row, tagged, admin_of)
        return [(s, k, d) for (s, k), d in writes.items()], rows

    def _acl_rows(self, entry: FlowEntry, ids: list[bytes],
                  controls: list[AccessControl]) -> tuple[list[AclRow], set[bytes]]:
        """The tx's ACL rows after de-duplication, and the tagged streams whose admin the
        sender is. A new stream's first tx makes its sender admin (an implicit grant)."""
        seq, sender = entry.tx_seq, entry.sender
        rows: dict[tuple[int, bytes, bytes, bytes], AclRow] = {}
        admin_of: set[bytes] = set()
        for stream_id in ids:
            if self.state.is_new_stream(stream_id, seq):
                rows[(AclOp.GRANT_ADMIN_ROLE, stream_id, b"", sender)] = AclRow(
                    AclOp.GRANT_ADMIN_ROLE, stream_id, b"", sender, ZERO_ADDRESS)
                admin_of.add(stream_id)
            elif self.state.is_admin(sender, stream_id, seq):
                admin_of.add(stream_id)
        for control in controls:
            if control.account is not None:
                account = control.account
            elif control.op in RENOUNCE_OPS:
                account = sender  # a renounce is about its sender
            else:
                account = ZERO_ADDRESS  # SET_KEY_* are about a key, not an account
            key = control.key or b""
            meta = (control.op & 0xF0, control.stream_id, key, account)
            # The last op of each (category, stream, key, account) wins; a grant-admin to
            # oneself, or to an account already granted in this tx, is dropped.
            if control.op != AclOp.GRANT_ADMIN_ROLE or (meta not in rows and account != sender):
                rows[meta] = AclRow(control.op, control.stream_id, key, account, sender)
        return list(rows.values()), admin_of

    def _check_acl(self, entry: FlowEntry, row: AclRow, tagged: set[bytes],
                   admin_of: set[bytes]) -> None:
        """Admin ops need admin; granting a writer role needs admin or that role; a
        renounce needs nothing."""
        if row.stream_id not in tagged:
            raise Rejected(TAGS_MISMATCH)
        admin = row.stream_id in admin_of
        if row.op in ADMIN_OPS:
            allowed = admin
        elif row.op == AclOp.GRANT_WRITER_ROLE:
            allowed = admin or self.state.is_writer_of_stream(entry.sender, row.stream_id,
                                                              entry.tx_seq)
        elif row.op == AclOp.GRANT_SPECIAL_WRITER_ROLE:
            allowed = admin or self.state.is_writer_of_key(entry.sender, row.stream_id,
                                                           row.key, entry.tx_seq)
        else:
            allowed = True
        if not allowed:
            raise Rejected(access_control_permission_denied(row))
