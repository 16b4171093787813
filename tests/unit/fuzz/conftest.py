"""The fuzz tests verify signatures with the BLS backend a deployment uses by default
(the fastest installed; config `crypto.bls_backend`), so that a budget tries many inputs;
test_fuzz_chain checks every backend's refusal of malformed keys and signatures apart."""

from collections.abc import Iterator

import pytest

from zg_actors.crypto import bls


@pytest.fixture(autouse=True, scope="module")
def _fastest_bls() -> Iterator[None]:
    with bls.using(bls.fastest_name()):
        yield
