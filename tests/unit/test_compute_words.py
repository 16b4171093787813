"""What people read: amounts in tokens and the account explained in words."""

from __future__ import annotations

import pytest

from zg_actors.compute.cli import parse_amount
from zg_actors.compute.params import AMOUNT_MAX, as_tokens
from zg_actors.compute.sdk import explain_account
from zg_actors.config import ZG
from zg_actors.errors import InvalidInput

NOW_S = 1_700_000_000.0


def test_amounts_are_typed_in_tokens_and_kept_exact() -> None:
    assert parse_amount("1.5") == 15 * ZG // 10
    assert parse_amount("0.000000000000000001") == 1
    assert parse_amount("1e50") == 10**68
    for bad in ("0", "-1", "abc", "0.0000000000000000001", "nan", "-inf", "sNaN"):
        with pytest.raises(InvalidInput, match=repr(bad)):
            parse_amount(bad)


def test_amounts_above_the_largest_are_refused_not_overflowed() -> None:
    assert parse_amount(as_tokens(AMOUNT_MAX)) == AMOUNT_MAX
    for bad in ("1e999999", "1e60", as_tokens(AMOUNT_MAX + 1)):
        with pytest.raises(InvalidInput, match=f"{bad!r} is above the largest amount"):
            parse_amount(bad)
    with pytest.raises(InvalidInput, match="at most 18 decimals"):
        parse_amount("1." + "0" * 150 + "1")  # more digits than 100: not rounded away
    assert as_tokens(AMOUNT_MAX).endswith(".584007913129639935")  # exact, not 28 digits


def test_account_explains_where_the_money_is_and_when_refunds_unlock() -> None:
    state = {"exists": True, "main_available": 2 * ZG, "sub_accounts": [{
        "provider": bytes(20), "balance": 3 * ZG, "pending_refund": ZG, "available": 2 * ZG,
        "nonce": 41, "refunds": [{"amount": ZG, "unlock_at_ms": int((NOW_S + 7200) * 1000)}]}]}
    lines = explain_account(state, 5 * ZG, NOW_S)
    assert lines[0].startswith("Wallet: 5 tokens")
    assert "Main account: 2 tokens not assigned to any provider" in lines[1]
    assert "3 tokens held, 2 usable for new requests, 1 on their way back" in lines[2]
    assert "requests up to nonce 41 are settled" in lines[2]
    assert "unlocks at" in lines[3] and "(in 2.0 h)" in lines[3]
    assert "No compute account yet" in explain_account({"exists": False}, 0, NOW_S)[1]
