"""C0's inputs from outside: double-sign evidence (two peers' votes) and burn proofs (a
relayer's header, certificate, tx, receipt and Merkle proofs), fuzzed field by field from
valid ones; a refused input changes nothing (the harness keeps only a call's writes that
return)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zg_actors.errors import ZgError
from zg_actors.staking.ledger import BurnProof, DoubleSignEvidence

from ..helpers import LedgerHarness, small_config
from ..test_staking_ledger import _evidence, _network_with_burn
from .budget import fuzz
from .inputs import any_bytes, any_int, encodings, outcome, outside_bytes


@pytest.fixture(scope="module")
def c0_with_burn(tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[tuple[LedgerHarness, BurnProof]]:
    c0 = LedgerHarness(small_config())
    node, proof, _ = _network_with_burn(c0, Path(tmp_path_factory.mktemp("burn")))
    c0.run(lambda ledger: ledger.advance_tick())
    yield c0, proof
    node.close()


def _hash_lists() -> st.SearchStrategy[list]:
    return st.lists(st.one_of(any_bytes, st.binary(min_size=32, max_size=32), any_int,
                              st.lists(any_bytes, max_size=3)), max_size=8)


@fuzz(0.5)
@given(st.data())
def test_evidence_slashes_or_is_refused_with_a_typed_error(
        c0_with_burn: tuple[LedgerHarness, BurnProof], data: st.DataObject) -> None:
    c0, _ = c0_with_burn
    valid = _evidence(data.draw(st.integers(0, 3)))
    changes = {}
    for field in dataclasses.fields(DoubleSignEvidence):
        if data.draw(st.booleans()):
            value = getattr(valid, field.name)
            changes[field.name] = data.draw(
                any_int if isinstance(value, int) else
                st.one_of(any_bytes, outside_bytes([value])))
    before = dict(c0.state)
    result = outcome(c0.run, lambda ledger: ledger.submit_evidence(
        dataclasses.replace(valid, **changes)))
    if isinstance(result, ZgError):
        assert c0.state == before


@fuzz(0.5)
@given(st.data())
def test_a_burn_proof_mints_or_is_refused_with_a_typed_error(
        c0_with_burn: tuple[LedgerHarness, BurnProof], data: st.DataObject) -> None:
    c0, valid = c0_with_burn
    changes = {}
    for field in dataclasses.fields(BurnProof):
        if data.draw(st.booleans()):
            value = getattr(valid, field.name)
            if isinstance(value, bytes):
                changes[field.name] = data.draw(outside_bytes([value]))
            elif isinstance(value, int):
                changes[field.name] = data.draw(any_int)
            else:
                changes[field.name] = data.draw(st.one_of(_hash_lists(), st.permutations(
                    value), encodings.map(lambda e: [e])))
    before = dict(c0.state)
    result = outcome(c0.run, lambda ledger: ledger.bridge_mint(
        dataclasses.replace(valid, **changes)))
    if isinstance(result, ZgError):
        assert c0.state == before


def test_the_seeds_are_valid(tmp_path: Path) -> None:
    """The fuzzing starts from inputs the ledger accepts, so mutations reach every check."""
    c0 = LedgerHarness(small_config())
    node, proof, _ = _network_with_burn(c0, tmp_path)
    c0.run(lambda ledger: ledger.advance_tick())
    assert c0.run(lambda ledger: ledger.bridge_mint(proof))["amount"] > 0
    assert c0.run(lambda ledger: ledger.submit_evidence(_evidence(1)))["jailed"]
    node.close()
