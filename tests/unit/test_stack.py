"""Choosing the pillars of `zg up` and the error of a command whose pillar is not up
(pure: no Ray)."""

from __future__ import annotations

import pytest

from zg_actors.errors import InvalidInput, NotUp, Unavailable
from zg_actors.stack import PILLARS, not_up, parse_pillars


def test_up_starts_every_pillar_in_order_unless_told() -> None:
    assert parse_pillars(None, None) == ["chain", "storage", "kv", "da", "compute"] == list(
        PILLARS)
    assert parse_pillars("compute,chain", None) == ["chain", "compute"]
    assert parse_pillars(None, "da, storage,kv") == ["chain", "compute"]
    assert parse_pillars("kv", None) == ["kv"]
    assert parse_pillars(None, "chain,storage,kv,da,compute") == []


@pytest.mark.parametrize("only, without, needle", [
    ("chain,evm", None, "unknown pillar 'evm'"), (None, "DA", "unknown pillar 'DA'"),
    ("", None, "unknown pillar ''"), ("da", "chain", "not both")])
def test_an_unknown_pillar_is_named(only: str | None, without: str | None,
                                    needle: str) -> None:
    with pytest.raises(InvalidInput, match=needle):
        parse_pillars(only, without)


@pytest.mark.parametrize("pillar, message", [
    ("chain", "The chain is not up in namespace zg: run `zg up`"),
    ("storage", "Storage is not up in namespace zg: run `zg up` or `zg up --only storage`"),
    ("kv", "KV is not up in namespace zg: run `zg up` or `zg kv up`"),
    ("da", "DA is not up in namespace zg: run `zg up` or `zg da up`"),
    ("compute", "Compute is not up in namespace zg: run `zg up` or `zg compute up`")])
def test_not_up_names_the_pillar_and_the_command_that_starts_it(pillar: str,
                                                                message: str) -> None:
    error = not_up(pillar, "zg")
    assert isinstance(error, Unavailable) and str(error) == message
    assert error.to_dict() == {"error": "NotUp", "code": "NOT_UP", "message": message,
                               "pillar": pillar, "namespace": "zg",
                               "start": message.split("run ", 1)[1]}
    assert isinstance(not_up(pillar, "zg", "why"), NotUp)
