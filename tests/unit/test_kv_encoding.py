"""The KV tx body, byte for byte as 0G's client encodes it (kv/types.go
StreamData.Encode) and 0G's KV node parses it; the STREAM tag; stream ids."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zg_actors.crypto.keccak import keccak256
from zg_actors.storage.kv.encoding import (
    MAX_KEY_BYTES,
    MAX_SET_ITEMS,
    OPS_WITH_ACCOUNT,
    OPS_WITH_KEY,
    SKIP_CHECKS_VERSION,
    STREAM_DOMAIN,
    AccessControl,
    AclOp,
    BodyReader,
    KVTx,
    StreamRead,
    StreamWrite,
    decode_tx,
    encode_tx,
    padded_entry,
    parse_stream_id,
    stream_id_from_name,
    stream_tags,
    tag_stream_ids,
    tx_stream_ids,
)
from zg_actors.storage.kv.errors import DataParseError, InvalidStreamId

S1 = bytes([0x11]) * 32
S2 = bytes([0x22]) * 32
ALICE = bytes(range(1, 21))


def small_tx() -> KVTx:
    return KVTx(
        version=5,
        reads=(StreamRead(S1, b"k"),),
        writes=(StreamWrite(S1, b"ab", b"xyz"), StreamWrite(S2, b"c", b"")),
        controls=(AccessControl(AclOp.GRANT_WRITER_ROLE, S1, account=ALICE),
                  AccessControl(AclOp.RENOUNCE_ADMIN_ROLE, S1),
                  AccessControl(AclOp.GRANT_SPECIAL_WRITER_ROLE, S2, key=b"c", account=ALICE)))


# What StreamData.Encode appends, field by field, for small_tx().
SMALL_TX_BYTES = b"".join([
    bytes([0, 0, 0, 0, 0, 0, 0, 5]),                     # u64 version
    bytes([0, 0, 0, 1]),                                 # u32 n_reads
    S1, bytes([0, 0, 1]), b"k",                          # stream, u24 key_len, key
    bytes([0, 0, 0, 2]),                                 # u32 n_writes
    S1, bytes([0, 0, 2]), b"ab", bytes([0, 0, 0, 0, 0, 0, 0, 3]),  # ..., u64 data_len
    S2, bytes([0, 0, 1]), b"c", bytes([0, 0, 0, 0, 0, 0, 0, 0]),
    b"xyz",                                              # the values, in write order
    bytes([0, 0, 0, 3]),                                 # u32 n_acl
    bytes([0x20]), S1, ALICE,                            # op, stream, address
    bytes([0x01]), S1,                                   # a renounce: op, stream
    bytes([0x30]), S2, bytes([0, 0, 1]), b"c", ALICE,    # op, stream, key, address
])


def test_a_small_tx_encodes_to_the_go_clients_bytes() -> None:
    assert encode_tx(small_tx()) == SMALL_TX_BYTES
    assert len(SMALL_TX_BYTES) == 8 + 4 + 36 + 4 + (32 + 3 + 2 + 8) + (32 + 3 + 1 + 8) + 3 + 4 \
        + (1 + 32 + 20) + (1 + 32) + (1 + 32 + 3 + 1 + 20)  # StreamData.Size()


def test_a_small_tx_decodes_and_padding_after_it_is_ignored() -> None:
    assert decode_tx(SMALL_TX_BYTES) == small_tx()
    assert decode_tx(padded_entry(SMALL_TX_BYTES)) == small_tx()
    assert len(SMALL_TX_BYTES) == 291 and len(padded_entry(SMALL_TX_BYTES)) == 512


def test_the_stream_tag_is_sha256_of_stream_then_the_ids() -> None:
    # The constant both 0G's client (kv/types.go) and node (kv_types/src/lib.rs) pin.
    assert STREAM_DOMAIN.hex() == "df2ff3bb0af36c6384e6206552a4ed807f6f6a26e7d0aa6bff772ddc9d4307aa"
    tags = stream_tags([S1, S2])
    assert tags == STREAM_DOMAIN + S1 + S2
    assert tag_stream_ids(tags) == [S1, S2]


@pytest.mark.parametrize("tags", [b"", b"\x01" * 64, STREAM_DOMAIN + b"\x01" * 31,
                                  STREAM_DOMAIN[:31]])
def test_tags_that_are_not_a_stream_tag_name_no_streams(tags: bytes) -> None:
    assert tag_stream_ids(tags) == []


def test_a_stream_tag_without_ids_names_no_streams() -> None:
    assert tag_stream_ids(STREAM_DOMAIN) == []


def test_stream_ids_are_hex_or_keccak_of_a_name() -> None:
    assert parse_stream_id("0x" + S1.hex()) == S1
    assert parse_stream_id("notes") == stream_id_from_name("notes") == keccak256(b"notes")
    for bad in ("0x1234", "0x" + "zz" * 32, ""):
        with pytest.raises(InvalidStreamId, match="stream"):
            parse_stream_id(bad)


def test_a_tx_is_tagged_with_the_streams_it_writes_or_changes_acls_of() -> None:
    tx = KVTx(0, reads=(StreamRead(bytes(32), b"r"),), writes=(StreamWrite(S2, b"a", b"1"),),
              controls=(AccessControl(AclOp.RENOUNCE_WRITER_ROLE, S1),
                        AccessControl(AclOp.RENOUNCE_WRITER_ROLE, S2)))
    assert tx_stream_ids(tx) == [S2, S1]


# ---- limits -----------------------------------------------------------------------------------
def test_key_length_zero_is_refused_by_encoder_and_decoder() -> None:
    with pytest.raises(DataParseError, match="^DataParseError: Invalid stream data: key length 0"):
        encode_tx(KVTx(0, reads=(StreamRead(S1, b""),)))
    body = bytes(8) + bytes([0, 0, 0, 1]) + S1 + bytes([0, 0, 0]) + bytes(8)
    with pytest.raises(DataParseError, match="^DataParseError: ") as caught:
        decode_tx(body)
    assert caught.value.result == "DataParseError: Invalid stream data"


def test_key_length_two_to_the_24_is_refused_and_one_less_round_trips() -> None:
    with pytest.raises(DataParseError, match="key length 16777216 outside 1..16777215"):
        encode_tx(KVTx(0, writes=(StreamWrite(S1, bytes(1 << 24), b"v"),)))
    biggest = KVTx(0, writes=(StreamWrite(S1, b"\x07" * MAX_KEY_BYTES, b"v"),))
    body = encode_tx(biggest)
    assert body[8 + 4 + 4 + 32:8 + 4 + 4 + 32 + 3] == b"\xff\xff\xff"
    assert decode_tx(body) == biggest


def test_65537_items_are_refused_and_65536_round_trip() -> None:
    reads = tuple(StreamRead(S1, i.to_bytes(3, "big")) for i in range(MAX_SET_ITEMS + 1))
    with pytest.raises(DataParseError, match="65537 reads, at most 65536") as caught:
        encode_tx(KVTx(0, reads=reads))
    assert caught.value.result == \
        "DataParseError: Stream read/write/access_control list too long"
    most = KVTx(0, reads=reads[:MAX_SET_ITEMS])
    assert decode_tx(encode_tx(most)) == most
    for section in range(3):  # a count of 65,537 in any list, before any item is read
        head = bytes(8) + bytes(4) * section + (MAX_SET_ITEMS + 1).to_bytes(4, "big")
        with pytest.raises(DataParseError, match="list too long: 65537"):
            decode_tx(head)


def test_a_body_cut_short_or_an_unknown_op_is_a_parse_error() -> None:
    for end in (3, 11, 20, 60, 100, len(SMALL_TX_BYTES) - 1):
        with pytest.raises(DataParseError, match="^DataParseError: Invalid stream data: "):
            decode_tx(SMALL_TX_BYTES[:end])
    unknown = bytes(12) + bytes(4) + bytes([0, 0, 0, 1, 0x02]) + S1
    with pytest.raises(DataParseError, match="unknown ACL op 0x02"):
        decode_tx(unknown)


def test_acl_ops_carry_exactly_their_key_and_address() -> None:
    assert {0x10, 0x11, 0x30, 0x31, 0x32} == OPS_WITH_KEY
    assert {0x00, 0x20, 0x21, 0x30, 0x31} == OPS_WITH_ACCOUNT
    with pytest.raises(DataParseError, match="GRANT_WRITER_ROLE takes account"):
        encode_tx(KVTx(0, controls=(AccessControl(AclOp.GRANT_WRITER_ROLE, S1),)))
    with pytest.raises(DataParseError, match="RENOUNCE_ADMIN_ROLE takes no key"):
        encode_tx(KVTx(0, controls=(AccessControl(AclOp.RENOUNCE_ADMIN_ROLE, S1, key=b"k"),)))


def test_sections_are_read_in_order() -> None:
    reader = BodyReader(SMALL_TX_BYTES)
    assert reader.version() == 5
    assert reader.reads() == list(small_tx().reads)
    assert reader.writes() == list(small_tx().writes)
    assert reader.controls() == list(small_tx().controls)


# ---- round trips --------------------------------------------------------------------------------
stream_ids = st.sampled_from([S1, S2, bytes(32), b"\xff" * 32])
keys = st.binary(min_size=1, max_size=40)
accounts = st.binary(min_size=20, max_size=20)


@st.composite
def controls(draw: st.DrawFn) -> AccessControl:
    op = draw(st.sampled_from(list(AclOp)))
    return AccessControl(op, draw(stream_ids),
                         draw(keys) if op in OPS_WITH_KEY else None,
                         draw(accounts) if op in OPS_WITH_ACCOUNT else None)


txs = st.builds(
    KVTx,
    version=st.one_of(st.integers(0, 2**64 - 1), st.just(SKIP_CHECKS_VERSION)),
    reads=st.lists(st.builds(StreamRead, stream_ids, keys), max_size=5).map(tuple),
    writes=st.lists(st.builds(StreamWrite, stream_ids, keys, st.binary(max_size=300)),
                    max_size=5).map(tuple),
    controls=st.lists(controls(), max_size=5).map(tuple))


@given(txs)
def test_every_tx_round_trips(tx: KVTx) -> None:
    body = encode_tx(tx)
    assert decode_tx(body) == tx
    assert decode_tx(padded_entry(body)) == tx


@given(txs, st.data())
def test_a_truncated_body_is_a_parse_error(tx: KVTx, data: st.DataObject) -> None:
    body = encode_tx(tx)
    end = data.draw(st.integers(0, len(body) - 1))
    with pytest.raises(DataParseError):
        decode_tx(body[:end])


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_any_bytes_decode_or_raise_a_parse_error(body: bytes) -> None:
    try:
        tx = decode_tx(body)
    except DataParseError as exc:
        assert str(exc).startswith("DataParseError: ")
    else:
        assert encode_tx(tx) == body[:len(encode_tx(tx))]
