"""KV bytes from outside: a stream tx's body (what a KV node reads from a flow entry it
replays) and its tags, mutated from bodies 0G's client encoding builds; and stream ids as
users type them. test_kv_encoding keeps the round trip and random-bytes properties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from zg_actors.errors import ZgError
from zg_actors.storage import kv
from zg_actors.storage.kv.encoding import tx_stream_ids

from ..test_kv_replay import ALICE, BOB, SKIP, S, T, acl, grant_writer, node, put, send
from .budget import fuzz
from .inputs import outcome, outside_bytes

TXS = [put(S, b"a", b"1"), put(T, b"key", b"v" * 300, 3, (kv.StreamRead(S, b"a"),)),
       kv.KVTx(SKIP, (), (kv.StreamWrite(S, b"b", b""), kv.StreamWrite(T, b"c", b"x")),
            (grant_writer(S, BOB), kv.AccessControl(kv.AclOp.RENOUNCE_ADMIN_ROLE, T))),
       acl(kv.AccessControl(kv.AclOp.SET_KEY_TO_SPECIAL, S, key=b"k"))]
BODIES = [kv.encode_tx(tx) for tx in TXS]
TAGS = [kv.stream_tags(tx_stream_ids(tx)) for tx in TXS]


def test_the_seed_bodies_round_trip() -> None:
    assert [kv.decode_tx(body) for body in BODIES] == TXS


@fuzz(2)
@given(outside_bytes(BODIES))
def test_a_body_decodes_or_is_a_parse_error(body: bytes) -> None:
    tx = outcome(kv.decode_tx, body)
    if not isinstance(tx, ZgError):
        assert kv.decode_tx(kv.encode_tx(tx)) == tx


@fuzz(2)
@given(st.lists(st.tuples(st.sampled_from([ALICE, BOB]), outside_bytes(BODIES),
                          st.one_of(st.sampled_from(TAGS), outside_bytes(TAGS))),
                min_size=1, max_size=4))
def test_a_kv_node_replays_any_entry_to_a_recorded_result(entries: list) -> None:
    """Every entry of a flow is replayed in order to a result (0G's strings) or skipped;
    a body that does not parse is recorded as such, never an exception."""
    replayer = node(S, T)
    assert send(replayer, ALICE, put(S, b"a", b"0")) == "Commit"
    for sender, body, tags in entries:
        entry = kv.FlowEntry(replayer.state.next_tx_seq, sender, tags)
        result = outcome(replayer.apply, entry, body if replayer.needs_data(entry) else None)
        assert result is None or isinstance(result, str)
        assert replayer.state.tx_result(entry.tx_seq) == result


@fuzz()
@given(st.one_of(st.text(max_size=70), st.binary(min_size=32, max_size=33).map(
    lambda b: "0x" + b.hex()), st.text(alphabet="0123456789abcdefxX", max_size=68)))
def test_a_stream_id_as_typed_is_parsed_or_refused(text: str) -> None:
    outcome(kv.parse_stream_id, text)
