"""Replay of KV txs (docs/spec/kv.md "Replay" and "ACL rules"), with 0G's result strings
(0g-storage-kv stream_replayer.rs ReplayResult's Display)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zg_actors.storage.kv.encoding import (
    OPS_WITH_ACCOUNT,
    OPS_WITH_KEY,
    SKIP_CHECKS_VERSION,
    STREAM_DOMAIN,
    AccessControl,
    AclOp,
    KVTx,
    StreamRead,
    StreamWrite,
    encode_tx,
    stream_tags,
    tx_stream_ids,
    writes_of,
)
from zg_actors.storage.kv.errors import EntryDataMissing, ReplayOutOfOrder
from zg_actors.storage.kv.replay import FlowEntry, Replayer, result_kind
from zg_actors.storage.kv.state import KeyValue, KVState
from zg_actors.storage.kv.store import LmdbStore, MemoryStore
from zg_actors.store import Store

S = bytes([0xAA]) * 32
T = bytes([0xBB]) * 32
UNFOLLOWED = bytes([0xCC]) * 32
ALICE, BOB, CAROL = (bytes([n]) * 20 for n in (1, 2, 3))
SKIP = SKIP_CHECKS_VERSION


def node(*streams: bytes) -> Replayer:
    return Replayer(KVState(MemoryStore()), streams or (S, T))


def send(replayer: Replayer, sender: bytes, tx: KVTx | bytes,
         tags: bytes | None = None) -> str | None:
    """Append `tx` as the next flow entry and replay it; its recorded result."""
    if tags is None:
        assert isinstance(tx, KVTx)
        tags = stream_tags(tx_stream_ids(tx))
    entry = FlowEntry(replayer.state.next_tx_seq, sender, tags)
    data = tx if isinstance(tx, bytes) else encode_tx(tx)
    result = replayer.apply(entry, data if replayer.needs_data(entry) else None)
    assert replayer.state.tx_result(entry.tx_seq) == result
    return result


def put(stream: bytes, key: bytes, data: bytes, version: int = SKIP,
        reads: tuple[StreamRead, ...] = (), *controls: AccessControl) -> KVTx:
    return KVTx(version, reads, (StreamWrite(stream, key, data),), tuple(controls))


def acl(*controls: AccessControl) -> KVTx:
    return KVTx(SKIP, controls=tuple(controls))


def grant_writer(stream: bytes, account: bytes) -> AccessControl:
    return AccessControl(AclOp.GRANT_WRITER_ROLE, stream, account=account)


def value(replayer: Replayer, key: bytes, version: int | None = None,
          stream: bytes = S) -> bytes | None:
    found = replayer.state.get_value(stream, key, version)
    return found.data if found else None


def rows(replayer: Replayer) -> dict:
    """Every row but the results and the progress: what a failed tx must not change."""
    return {k: v for k, v in replayer.state.store.items(b"") if k[:1] not in (b"r", b"p")}


# ---- which entries replay -------------------------------------------------------------------
def test_untagged_and_unfollowed_entries_are_skipped_with_no_result() -> None:
    replayer = node(S)
    assert send(replayer, ALICE, encode_tx(put(S, b"k", b"v")), tags=b"") is None
    assert send(replayer, ALICE, encode_tx(put(S, b"k", b"v")), tags=b"\x01" * 32) is None
    both = put(S, b"k", b"v")
    # one stream this node does not follow is enough to skip the whole entry
    assert send(replayer, ALICE, encode_tx(both), tags=stream_tags([S, UNFOLLOWED])) is None
    assert replayer.state.next_tx_seq == 3 and value(replayer, b"k") is None
    assert replayer.state.is_new_stream(S)


def test_entries_replay_in_tx_seq_order_and_need_their_data() -> None:
    replayer = node()
    tx = put(S, b"k", b"v")
    tags = stream_tags([S])
    with pytest.raises(ReplayOutOfOrder, match="entry 1 given, replay is at 0"):
        replayer.apply(FlowEntry(1, ALICE, tags), encode_tx(tx))
    entry = FlowEntry(0, ALICE, tags)
    assert replayer.needs_data(entry)
    with pytest.raises(EntryDataMissing, match="entry 0"):
        replayer.apply(entry, None)
    assert replayer.state.next_tx_seq == 0 and replayer.state.tx_result(0) is None


# ---- the first tx and commits --------------------------------------------------------------
def test_the_first_tx_of_a_stream_makes_its_sender_admin_and_commits_at_tx_seq() -> None:
    replayer = node()
    assert send(replayer, ALICE, encode_tx(put(S, b"k", b"v")), tags=b"") is None  # seq 0
    assert replayer.state.has_write_permission(BOB, S, b"k")  # a new stream: anyone
    assert send(replayer, ALICE, put(S, b"k", b"v1")) == "Commit"  # seq 1
    found = replayer.state.get_value(S, b"k")
    assert found is not None and (found.version, found.data) == (1, b"v1")
    assert replayer.state.is_admin(ALICE, S) and not replayer.state.is_admin(BOB, S)
    assert not replayer.state.is_new_stream(S) and replayer.state.is_new_stream(S, 0)
    assert not replayer.state.has_write_permission(BOB, S, b"k")


def test_a_sender_with_no_role_in_the_stream_is_refused_before_its_data_is_read() -> None:
    replayer = node()
    send(replayer, ALICE, put(S, b"k", b"v"))
    entry = FlowEntry(1, BOB, stream_tags([S]))
    assert not replayer.needs_data(entry)
    before = rows(replayer)
    assert replayer.apply(entry, None) == "SenderNoWritePermission"
    assert rows(replayer) == before and replayer.state.tx_result(1) == "SenderNoWritePermission"


# ---- the conflict rule ----------------------------------------------------------------------
def test_two_writers_that_read_at_one_version_one_commits_one_conflicts() -> None:
    replayer = node()
    send(replayer, ALICE, acl(grant_writer(S, BOB)))  # seq 0
    assert send(replayer, ALICE, put(S, b"k", b"a")) == "Commit"  # seq 1
    read = (StreamRead(S, b"k"),)
    assert send(replayer, ALICE, put(S, b"k", b"alice", 1, read)) == "Commit"  # seq 2
    assert send(replayer, BOB, put(S, b"k", b"bob", 1, read)) == "VersionConfliction"
    assert value(replayer, b"k") == b"alice"
    assert [value(replayer, b"k", v) for v in (0, 1, 2, 3)] == [None, b"a", b"alice", b"alice"]


def test_a_write_without_a_read_still_conflicts_and_u64_max_skips_the_check() -> None:
    replayer = node()
    send(replayer, ALICE, put(S, b"k", b"a"))  # seq 0
    send(replayer, ALICE, put(S, b"k", b"b"))  # seq 1
    assert send(replayer, ALICE, put(S, b"k", b"c", 0)) == "VersionConfliction"
    assert send(replayer, ALICE, put(S, b"k", b"c", 1)) == "Commit"  # latest (1) <= 1
    assert send(replayer, ALICE, put(S, b"k", b"d", SKIP)) == "Commit"


def test_a_read_of_a_key_written_after_the_version_conflicts() -> None:
    replayer = node()
    send(replayer, ALICE, put(S, b"watched", b"a"))  # seq 0
    send(replayer, ALICE, put(S, b"watched", b"b"))  # seq 1
    tx = put(S, b"other", b"x", 0, (StreamRead(S, b"watched"),))
    assert send(replayer, ALICE, tx) == "VersionConfliction"
    assert value(replayer, b"other") is None
    assert send(replayer, ALICE, put(S, b"other", b"x", 1, (StreamRead(S, b"watched"),))) \
        == "Commit"


def test_acl_changes_do_not_bump_key_versions() -> None:
    replayer = node()
    send(replayer, ALICE, put(S, b"k", b"a"))  # seq 0
    send(replayer, ALICE, acl(grant_writer(S, BOB)))  # seq 1
    assert send(replayer, BOB, put(S, b"k", b"b", 0, (StreamRead(S, b"k"),))) == "Commit"


# ---- tags -----------------------------------------------------------------------------------
def test_reads_of_unfollowed_streams_and_writes_or_acls_outside_the_tags_mismatch() -> None:
    replayer = node()
    send(replayer, ALICE, put(S, b"k", b"a"))
    unfollowed_read = put(S, b"k", b"b", SKIP, (StreamRead(UNFOLLOWED, b"x"),))
    assert send(replayer, ALICE, unfollowed_read) == "TagsMismatch"
    # T is followed but the entry is tagged with S only
    assert send(replayer, ALICE, encode_tx(put(T, b"k", b"b")), tags=stream_tags([S])) \
        == "TagsMismatch"
    tx = acl(grant_writer(T, BOB))
    assert send(replayer, ALICE, encode_tx(tx), tags=stream_tags([S])) == "TagsMismatch"
    assert value(replayer, b"k") == b"a" and value(replayer, b"k", stream=T) is None
    assert replayer.state.is_new_stream(T)


# ---- data that does not parse ---------------------------------------------------------------
def test_a_body_that_does_not_parse_records_0gs_data_parse_error() -> None:
    replayer = node()
    send(replayer, ALICE, put(S, b"k", b"a"))
    before = rows(replayer)
    head = (0).to_bytes(8, "big") + (0).to_bytes(4, "big") + (1).to_bytes(4, "big") + S \
        + (1).to_bytes(3, "big") + b"k"
    # a value of 1000 bytes in an entry of one 256-byte sector
    assert send(replayer, ALICE, head + (1000).to_bytes(8, "big"), tags=stream_tags([S])) \
        == "DataParseError: Invalid stream data"
    too_long = (0).to_bytes(8, "big") + (65_537).to_bytes(4, "big")
    assert send(replayer, ALICE, too_long, tags=stream_tags([S])) == \
        "DataParseError: Stream read/write/access_control list too long"
    zero_key = (0).to_bytes(8, "big") + (1).to_bytes(4, "big") + S + bytes(3)
    assert send(replayer, ALICE, zero_key, tags=stream_tags([S])) == \
        "DataParseError: Invalid stream data"
    unknown_op = encode_tx(KVTx(SKIP))[:-4] + (1).to_bytes(4, "big") + bytes([0x40]) + S
    assert send(replayer, ALICE, unknown_op, tags=stream_tags([S])) == \
        "DataParseError: Invalid stream data"
    assert rows(replayer) == before


def test_a_body_short_of_its_sector_reads_zeros_as_0gs_node_does() -> None:
    replayer = node()
    body = encode_tx(put(S, b"k", b"abc"))
    # without its ACL count (4 zero bytes) the body still parses: the entry is padded with
    # zeros to a whole sector and the node reads up to the sector's end
    assert send(replayer, ALICE, body[:-4], tags=stream_tags([S])) == "Commit"
    assert value(replayer, b"k") == b"abc"


# ---- write permission -----------------------------------------------------------------------
def special(stream: bytes, key: bytes) -> AccessControl:
    return AccessControl(AclOp.SET_KEY_TO_SPECIAL, stream, key=key)


def grant_special(stream: bytes, key: bytes, account: bytes) -> AccessControl:
    return AccessControl(AclOp.GRANT_SPECIAL_WRITER_ROLE, stream, key=key, account=account)


def test_writers_write_normal_keys_and_only_special_writers_write_special_keys() -> None:
    replayer = node()
    send(replayer, ALICE, acl(grant_writer(S, BOB), special(S, b"vip"),
                              grant_special(S, b"vip", CAROL)))  # seq 0
    state = replayer.state
    assert state.is_special_key(S, b"vip") and not state.is_special_key(S, b"k")
    assert state.is_writer_of_stream(BOB, S) and state.is_writer_of_key(CAROL, S, b"vip")
    assert send(replayer, BOB, put(S, b"k", b"bob")) == "Commit"
    assert send(replayer, BOB, put(S, b"vip", b"bob")) == \
        f"WritePermissionDenied: stream: 0x{S.hex()}, key: vip"
    # CAROL passes the sender pre-check as a special writer of some key ...
    assert send(replayer, CAROL, put(S, b"vip", b"carol")) == "Commit"
    # ... but may write no normal key
    assert send(replayer, CAROL, put(S, b"k", b"carol")) == \
        f"WritePermissionDenied: stream: 0x{S.hex()}, key: k"
    assert send(replayer, ALICE, put(S, b"vip", b"alice")) == "Commit"  # admin
    assert send(replayer, ALICE, acl(AccessControl(AclOp.SET_KEY_TO_NORMAL, S, key=b"vip"))) \
        == "Commit"
    assert send(replayer, BOB, put(S, b"vip", b"bob")) == "Commit"
    assert value(replayer, b"k") == b"bob" and value(replayer, b"vip") == b"bob"


def test_a_result_names_a_long_key_by_its_first_32_characters() -> None:
    replayer = node()
    send(replayer, ALICE, acl(grant_special(S, b"x", BOB)))
    long_key = b"0123456789" * 5
    assert send(replayer, BOB, put(S, long_key, b"v")) == \
        f"WritePermissionDenied: stream: 0x{S.hex()}, key: {long_key[:32].decode()}"
    assert send(replayer, BOB, put(S, b"\xff\xfe", b"v")) == \
        f"WritePermissionDenied: stream: 0x{S.hex()}, key: UNKNOWN"


def test_a_failed_tx_changes_nothing_but_its_result() -> None:
    replayer = node()
    send(replayer, ALICE, acl(grant_writer(S, BOB)))
    send(replayer, ALICE, put(S, b"k", b"a"))
    before = rows(replayer)
    # BOB's write would pass, his grant of admin fails: neither happens
    tx = put(S, b"k", b"b", SKIP, (), AccessControl(AclOp.GRANT_ADMIN_ROLE, S, account=CAROL))
    assert send(replayer, BOB, tx) == (
        f"AccessControlPermissionDenied: operation: GRANT_ADMIN_ROLE, stream: 0x{S.hex()}, "
        f"key: NONE, account: 0x{CAROL.hex()}")
    assert rows(replayer) == before and value(replayer, b"k") == b"a"
    assert not replayer.state.is_admin(CAROL, S)


# ---- ACL permissions ------------------------------------------------------------------------
def denied(op: AclOp, key: str, account: bytes) -> str:
    return (f"AccessControlPermissionDenied: operation: {op.name}, stream: 0x{S.hex()}, "
            f"key: {key}, account: 0x{account.hex()}")


def test_admin_ops_need_admin() -> None:
    replayer = node()
    send(replayer, ALICE, acl(grant_writer(S, BOB)))
    zero = bytes(20)
    cases = [
        (AccessControl(AclOp.GRANT_ADMIN_ROLE, S, account=CAROL), "NONE", CAROL),
        (special(S, b"k"), "k", zero),
        (AccessControl(AclOp.SET_KEY_TO_NORMAL, S, key=b"k"), "k", zero),
        (AccessControl(AclOp.REVOKE_WRITER_ROLE, S, account=CAROL), "NONE", CAROL),
        (AccessControl(AclOp.REVOKE_SPECIAL_WRITER_ROLE, S, key=b"k", account=CAROL), "k",
         CAROL),
    ]
    for control, key, account in cases:
        assert send(replayer, BOB, acl(control)) == denied(control.op, key, account)
        assert send(replayer, ALICE, acl(control)) == "Commit"


def test_granting_a_writer_role_needs_admin_or_that_role() -> None:
    replayer = node()
    send(replayer, ALICE, acl(grant_writer(S, BOB), grant_special(S, b"vip", CAROL)))
    # a stream writer may make more stream writers; a special writer may not
    assert send(replayer, BOB, acl(grant_writer(S, CAROL))) == "Commit"
    assert replayer.state.is_writer_of_stream(CAROL, S)
    dave = bytes([4]) * 20
    assert send(replayer, BOB, acl(grant_special(S, b"vip", dave))) == \
        denied(AclOp.GRANT_SPECIAL_WRITER_ROLE, "vip", dave)
    # a special writer of a key may make more writers of that key only
    assert send(replayer, CAROL, acl(grant_special(S, b"vip", dave))) == "Commit"
    assert send(replayer, CAROL, acl(grant_special(S, b"other", dave))) == \
        denied(AclOp.GRANT_SPECIAL_WRITER_ROLE, "other", dave)
    assert replayer.state.is_writer_of_key(dave, S, b"vip")
    assert not replayer.state.is_writer_of_key(dave, S, b"other")


def test_permissions_are_judged_on_the_state_before_the_tx() -> None:
    replayer = node()
    send(replayer, ALICE, put(S, b"k", b"a"))
    # the admin renounces and writes in one tx: the write is judged as the admin's
    renounce = AccessControl(AclOp.RENOUNCE_ADMIN_ROLE, S)
    assert send(replayer, ALICE, put(S, b"k", b"b", SKIP, (), renounce)) == "Commit"
    assert not replayer.state.is_admin(ALICE, S)
    assert send(replayer, ALICE, put(S, b"k", b"c")) == "SenderNoWritePermission"
    assert value(replayer, b"k") == b"b"


def test_renounces_need_no_permission_and_apply_to_the_sender() -> None:
    replayer = node()
    send(replayer, ALICE, acl(grant_writer(S, BOB), grant_special(S, b"vip", CAROL)))
    assert send(replayer, BOB, acl(AccessControl(AclOp.RENOUNCE_WRITER_ROLE, S))) == "Commit"
    assert not replayer.state.is_writer_of_stream(BOB, S)
    renounce_special = AccessControl(AclOp.RENOUNCE_SPECIAL_WRITER_ROLE, S, key=b"vip")
    assert send(replayer, CAROL, acl(renounce_special)) == "Commit"
    assert not replayer.state.is_writer_of_key(CAROL, S, b"vip")
    assert send(replayer, CAROL, put(S, b"vip", b"x")) == "SenderNoWritePermission"


def test_the_first_tx_may_renounce_the_admin_role_it_gives() -> None:
    # 0G's tests/kv_access_control_test.py renounce_admin_test
    replayer = node()
    renounce = AccessControl(AclOp.RENOUNCE_ADMIN_ROLE, S)
    assert send(replayer, ALICE, put(S, b"k", b"v", SKIP, (), renounce)) == "Commit"
    assert not replayer.state.is_admin(ALICE, S) and not replayer.state.is_new_stream(S)
    assert value(replayer, b"k") == b"v"


def test_ops_are_deduplicated_per_category_stream_key_and_account_the_last_wins() -> None:
    replayer = node()
    revoke = AccessControl(AclOp.REVOKE_WRITER_ROLE, S, account=BOB)
    send(replayer, ALICE, acl(grant_writer(S, BOB), revoke))
    assert not replayer.state.is_writer_of_stream(BOB, S)
    send(replayer, ALICE, acl(revoke, grant_writer(S, BOB)))
    assert replayer.state.is_writer_of_stream(BOB, S)
    # one row per (category, stream, key, account) reaches the store
    acl_rows = [k for k, _ in replayer.state.store.items(b"a" + S + bytes([0x20]))]
    assert len(acl_rows) == 2  # one per tx


def test_a_grant_admin_to_oneself_is_dropped() -> None:
    replayer = node()
    send(replayer, ALICE, put(S, b"k", b"v"))
    renounce = AccessControl(AclOp.RENOUNCE_ADMIN_ROLE, S)
    regrant = AccessControl(AclOp.GRANT_ADMIN_ROLE, S, account=ALICE)
    # were the grant kept, it would win over the renounce before it
    assert send(replayer, ALICE, acl(renounce, regrant)) == "Commit"
    assert not replayer.state.is_admin(ALICE, S)


def test_a_grant_admin_to_another_makes_a_second_admin() -> None:
    replayer = node()
    grant = AccessControl(AclOp.GRANT_ADMIN_ROLE, S, account=BOB)
    assert send(replayer, ALICE, acl(grant, grant)) == "Commit"
    assert replayer.state.is_admin(BOB, S) and replayer.state.is_admin(ALICE, S)
    assert send(replayer, BOB, acl(special(S, b"k"))) == "Commit"


# ---- values: deletes, duplicates, versions --------------------------------------------------
def test_two_writes_of_one_key_in_one_tx_the_last_wins() -> None:
    replayer = node()
    tx = KVTx(SKIP, writes=(StreamWrite(S, b"k", b"first"), StreamWrite(S, b"j", b"j"),
                            StreamWrite(S, b"k", b"second")))
    assert send(replayer, ALICE, tx) == "Commit"
    assert value(replayer, b"k") == b"second" and value(replayer, b"j") == b"j"


def test_a_zero_length_value_deletes_and_iteration_skips_deleted_keys() -> None:
    replayer = node()
    state = replayer.state
    send(replayer, ALICE, KVTx(SKIP, writes=tuple(StreamWrite(S, k, k.upper())
                                                  for k in (b"a", b"b", b"c"))))  # seq 0
    send(replayer, ALICE, put(S, b"b", b""))  # seq 1
    deleted = state.get_value(S, b"b")
    assert deleted is not None and (deleted.version, deleted.data) == (1, b"")
    assert [kv.key for kv in (state.first(S), state.next(S, b"a"), state.prev(S, b"c"),
                              state.last(S))] == [b"a", b"c", b"a", b"c"]
    assert state.next(S, b"b", inclusive=True).key == b"c"
    assert state.prev(S, b"b", inclusive=True).key == b"a"
    # before the delete, b is there
    assert state.next(S, b"a", version=0).key == b"b"
    send(replayer, ALICE, KVTx(SKIP, writes=(StreamWrite(S, b"a", b""),
                                             StreamWrite(S, b"c", b""))))  # seq 2
    assert state.first(S) is None and state.last(S) is None
    assert state.first(S, version=1).key == b"a"


def test_reads_at_a_version_see_the_latest_write_at_or_before_it() -> None:
    replayer = node()
    state = replayer.state
    send(replayer, ALICE, put(S, b"k", b"v0"))  # seq 0
    send(replayer, ALICE, acl(grant_writer(S, BOB)))  # seq 1
    send(replayer, BOB, put(S, b"k", b"v2"))  # seq 2
    send(replayer, ALICE, put(S, b"later", b"x"))  # seq 3
    assert [value(replayer, b"k", v) for v in (0, 1, 2, 3)] == [b"v0", b"v0", b"v2", b"v2"]
    assert state.get_value(S, b"k", 1).version == 0
    assert state.next(S, b"k", version=2) is None and state.next(S, b"k").key == b"later"
    assert not state.is_writer_of_stream(BOB, S, 0) and state.is_writer_of_stream(BOB, S, 1)
    assert not state.has_write_permission(BOB, S, b"k", 0)
    assert state.latest_version(S, b"k") == 2 and state.latest_version(S, b"nope") == 0


def test_keys_are_ordered_as_bytes_whatever_zero_bytes_or_prefixes_they_hold() -> None:
    replayer = node()
    keys = [b"\x00", b"\x00\x00", b"\x00\x01", b"a", b"a\x00", b"ab", b"\xff", b"\xff\xff"]
    send(replayer, ALICE, KVTx(SKIP, writes=tuple(StreamWrite(S, k, b"v" + k)
                                                  for k in reversed(keys))))
    send(replayer, ALICE, KVTx(SKIP, writes=(StreamWrite(T, b"\x00", b"t"),)))
    walked, found = [], replayer.state.first(S)
    while found is not None:
        walked.append(found.key)
        found = replayer.state.next(S, found.key)
    assert walked == keys
    walked, found = [], replayer.state.last(S)
    while found is not None:
        walked.append(found.key)
        found = replayer.state.prev(S, found.key)
    assert walked == keys[::-1]
    assert all(value(replayer, k) == b"v" + k for k in keys)


# ---- comparing and resuming nodes -----------------------------------------------------------
def history() -> list[tuple[bytes, KVTx]]:
    return [(ALICE, put(S, b"k", b"a")), (ALICE, acl(grant_writer(S, BOB))),
            (BOB, put(S, b"k", b"b", 0, (StreamRead(S, b"k"),))),
            (ALICE, put(S, b"k", b"c", 0, (StreamRead(S, b"k"),))), (CAROL, put(S, b"x", b"y")),
            (ALICE, put(T, b"t", b"t"))]


def test_nodes_that_replay_the_same_entries_have_the_same_digest() -> None:
    one, two = node(), node()
    for sender, tx in history():
        send(one, sender, tx)
    for sender, tx in history()[:3]:
        send(two, sender, tx)
    assert one.state.digest(one.streams) != two.state.digest(two.streams)
    resumed = Replayer(two.state, two.streams)  # a restarted node over the same store
    assert resumed.state.next_tx_seq == 3
    for sender, tx in history()[3:]:
        send(resumed, sender, tx)
    assert one.state.digest(one.streams) == resumed.state.digest(resumed.streams)
    assert [one.state.tx_result(i) for i in range(6)] == [
        "Commit", "Commit", "Commit", "VersionConfliction", "SenderNoWritePermission",
        "Commit"]


def test_a_node_following_other_streams_has_another_digest() -> None:
    both, only_s = node(S, T), node(S)
    for sender, tx in history():
        send(both, sender, tx)
        send(only_s, sender, tx)
    assert only_s.state.tx_result(5) is None and both.state.tx_result(5) == "Commit"
    assert both.state.digest(both.streams) != only_s.state.digest(only_s.streams)


def test_the_stream_tag_alone_is_a_kv_entry_of_no_stream() -> None:
    replayer = node()
    assert send(replayer, ALICE, encode_tx(put(S, b"k", b"v")), tags=STREAM_DOMAIN) is None


# ---- properties over random histories -------------------------------------------------------
senders = st.sampled_from([ALICE, BOB, CAROL])
small_keys = st.sampled_from([b"a", b"b", b"c"])


@st.composite
def random_txs(draw: st.DrawFn) -> KVTx:
    stream = st.sampled_from([S, T])
    op = st.sampled_from(list(AclOp))
    controls = []
    for code in draw(st.lists(op, max_size=2)):
        controls.append(AccessControl(code, draw(stream),
                                      draw(small_keys) if code in OPS_WITH_KEY else None,
                                      draw(senders) if code in OPS_WITH_ACCOUNT else None))
    return KVTx(draw(st.one_of(st.integers(0, 8), st.just(SKIP))),
                tuple(draw(st.lists(st.builds(StreamRead, stream, small_keys), max_size=2))),
                tuple(draw(st.lists(st.builds(StreamWrite, stream, small_keys,
                                              st.binary(max_size=3)), max_size=3))),
                tuple(controls))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(senders, random_txs()), min_size=1, max_size=12), st.data())
def test_random_histories_commit_all_or_nothing_and_replay_alike(
        history: list[tuple[bytes, KVTx]], data: st.DataObject) -> None:
    one, two = node(), node()
    restart_at = data.draw(st.integers(0, len(history)))
    for index, (sender, tx) in enumerate(history):
        before = rows(one)
        seq = one.state.next_tx_seq
        result = send(one, sender, tx)
        if result == "Commit":
            for (stream, key), written in writes_of(tx.writes).items():
                assert one.state.get_value(stream, key) == KeyValue(key, seq, written)
        else:
            assert rows(one) == before, result
        if index == restart_at:
            two = Replayer(two.state, two.streams)
        send(two, sender, tx)
    assert one.state.digest(one.streams) == two.state.digest(two.streams)


def test_an_lmdb_store_replays_to_the_same_state_and_keeps_it_across_a_reopen(
        tmp_path: Path) -> None:
    memory = node()
    lmdb_store = Store(tmp_path / "kv", ["kv"])
    on_disk = Replayer(KVState(LmdbStore(lmdb_store, "kv")), (S, T))
    keys = [b"\x00", b"a", b"a\x00", b"\xff"]
    more = [(ALICE, KVTx(SKIP, writes=tuple(StreamWrite(S, k, k + b"!") for k in keys))),
            (ALICE, put(S, b"a", b""))]
    for sender, tx in [*history()[:3], *more]:
        send(memory, sender, tx)
        send(on_disk, sender, tx)
    lmdb_store.close()
    reopened = Replayer(KVState(LmdbStore(Store(tmp_path / "kv", ["kv"]), "kv")), (S, T))
    assert reopened.state.next_tx_seq == 5
    for sender, tx in history()[3:]:
        send(memory, sender, tx)
        send(reopened, sender, tx)
    assert reopened.state.digest(reopened.streams) == memory.state.digest(memory.streams)
    state = reopened.state
    assert [state.first(S).key, state.last(S).key, state.next(S, b"\x00").key,
            state.prev(S, b"\xff").key] == [b"\x00", b"\xff", b"a\x00", b"k"]
    assert state.get_value(S, b"a", 3) == KeyValue(b"a", 3, b"a!")
    assert state.is_writer_of_stream(BOB, S) and state.tx_result(5) == "VersionConfliction"


@pytest.mark.parametrize("result, kind", [
    ("Commit", "Commit"), ("VersionConfliction", "VersionConfliction"),
    (f"WritePermissionDenied: stream: 0x{S.hex()}, key: vip", "WritePermissionDenied"),
    ("DataParseError: Invalid stream data", "DataParseError"),
    ("AccessControlPermissionDenied: operation: GRANT_ADMIN_ROLE, stream: 0x00, key: NONE, "
     "account: 0x00", "AccessControlPermissionDenied")])
def test_result_kind_drops_what_a_result_names(result: str, kind: str) -> None:
    """A KV node's metrics count results by kind: one series per kind, not per key."""
    assert result_kind(result) == kind
