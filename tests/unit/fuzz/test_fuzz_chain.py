"""Chain bytes from outside: txs (ours and Ethereum's), blocks, headers, commit
certificates, validator sets, and the fields of peers' votes and proposals."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from zg_actors.chain.block import Block, CommitCertificate, Header
from zg_actors.chain.consensus import VoteType
from zg_actors.chain.inbox import check_proposal, check_vote_signature, vote_of
from zg_actors.chain.tx import Transaction, decode_tx, ethereum_tx_hash
from zg_actors.chain.validator_set import ValidatorSet
from zg_actors.crypto import bls
from zg_actors.crypto.encoding import decode, encode
from zg_actors.errors import ZgError

from .budget import fuzz
from .inputs import any_bytes, any_int, items, outcome, outside_bytes
from .samples import NETWORK_ID, blocks, certificate, txs, vset


def _list_of(body: bytes) -> bytes:
    """The canonical encoding of a list whose items encode to `body`."""
    if len(body) <= 55:
        return bytes((0xC0 + len(body),)) + body
    size = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes((0xF7 + len(size),)) + size + body


DEEP_LIST = b"\xc0"  # an empty list in lists deeper than Python's recursion limit
for _ in range(1_200):
    DEEP_LIST = _list_of(DEEP_LIST)


@fuzz()
@given(items)
def test_canonical_encoding_round_trips(item: object) -> None:
    assert decode(encode(item)) == item


@fuzz()
@example(DEEP_LIST)
@given(outside_bytes([encode([b"a", [b"bc", []], b"\x80" * 60])]))
def test_canonical_decoding_gives_items_or_a_typed_error(data: bytes) -> None:
    result = outcome(decode, data)
    if not isinstance(result, ZgError):
        assert encode(result) == data  # canonical: the one encoding of what it decoded


def tx_bytes() -> list[bytes]:
    return [tx.encoded for tx in txs()]


@fuzz()
@given(st.sampled_from(range(len(txs()))))
def test_txs_round_trip(index: int) -> None:
    tx = txs()[index]
    again = decode_tx(tx.encoded)
    assert (again, again.hash, again.sender) == (tx, tx.hash, tx.sender)


@fuzz(2)
@example(b"\x00")  # a typed envelope of type 0: py-evm's UnrecognizedTransactionType leaked
@example(b"\x00" + txs()[3].encoded)
@given(outside_bytes(tx_bytes()))
def test_tx_decoding_gives_a_tx_or_a_typed_error(data: bytes) -> None:
    result = outcome(decode_tx, data)
    if isinstance(result, Transaction):
        assert result.encoded == data or result.eth is not None
    # The JSON-RPC's parse without sender recovery refuses no more than decoding does
    # (a bad signature is the validators' to refuse) and names the same tx.
    tx_hash = outcome(ethereum_tx_hash, data)
    if isinstance(result, Transaction):
        assert tx_hash == (result.hash if result.eth is not None else None)


@fuzz()
@given(st.sampled_from([0, 1]))
def test_blocks_headers_and_certificates_round_trip(index: int) -> None:
    block = blocks()[index]
    again = Block.decode(block.encode())
    assert (again, again.hash) == (block, block.hash)
    assert Header.decode(block.header.encode()) == block.header
    cert = certificate(block.height, block.hash)
    assert CommitCertificate.decode(cert.encode()) == cert
    assert ValidatorSet.decode(vset().encode()) == vset()


@fuzz(2)
@given(outside_bytes([b.encode() for b in blocks()]))
def test_block_decoding_gives_a_block_or_a_typed_error(data: bytes) -> None:
    outcome(Block.decode, data)


@fuzz()
@given(outside_bytes([b.header.encode() for b in blocks()]
                     + [certificate(2, b.hash).encode() for b in blocks()]
                     + [vset().encode()]))
def test_header_certificate_and_set_decoding_give_a_value_or_a_typed_error(data: bytes
                                                                         ) -> None:
    for decoder in (Header.decode, CommitCertificate.decode, ValidatorSet.decode):
        outcome(decoder, data)


def _near(valid: int) -> st.SearchStrategy[int]:
    return st.one_of(st.just(valid), any_int)


@fuzz(0.5)
@given(st.data())
def test_a_peers_proposal_is_counted_or_refused_with_a_typed_error(data: st.DataObject
                                                                   ) -> None:
    block = data.draw(st.sampled_from(blocks()))
    height, round_ = data.draw(_near(block.height)), data.draw(_near(0))
    proposer = data.draw(_near(vset().proposer(block.height, 0)))
    block_raw = data.draw(outside_bytes([block.encode()]))
    signature = data.draw(st.one_of(any_bytes, st.just(certificate(1, block.hash).signature)))
    outcome(check_proposal, vset(), NETWORK_ID, height, round_, data.draw(_near(-1)),
            block_raw, proposer, signature)


@fuzz(0.5)
@given(st.data())
def test_a_peers_vote_is_counted_or_refused_with_a_typed_error(data: st.DataObject) -> None:
    block = data.draw(st.sampled_from(blocks()))
    cert = certificate(block.height, block.hash)
    vote = outcome(vote_of, vset(), data.draw(_near(block.height)), data.draw(_near(0)),
                   data.draw(st.one_of(st.sampled_from(list(VoteType)), any_int)),
                   data.draw(st.one_of(st.just(block.hash), any_bytes)),
                   data.draw(_near(0)),
                   data.draw(st.one_of(st.just(cert.signature), any_bytes)))
    if not isinstance(vote, ZgError):
        outcome(check_vote_signature, vset(), NETWORK_ID, vote)


@fuzz(0.25)
@given(st.sampled_from(bls.available_backends()), any_bytes, any_bytes)
def test_every_bls_backend_refuses_malformed_keys_and_signatures(backend: str, pk: bytes,
                                                                 signature: bytes) -> None:
    with bls.using(backend):
        assert outcome(bls.verify, pk, b"message", signature) in (True, False)
        assert outcome(bls.fast_aggregate_verify, [pk], b"message", signature) in (
            True, False)
