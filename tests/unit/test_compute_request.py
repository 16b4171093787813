"""The signed fee cap: max_tokens bounds a request, and no receipt bills above the cap."""

from __future__ import annotations

import pytest

from zg_actors.compute.errors import FeeAboveCap, InvalidMaxTokens
from zg_actors.compute.request import Receipt, Request, fee_cap, fee_for, make_receipt, sign_request
from zg_actors.compute.sdk import verify_receipt
from zg_actors.crypto.accounts import Account

USER = Account.from_seed(b"unit/user")
PROVIDER = Account.from_seed(b"unit/provider")
SERVICE = {"input_price": 10**12, "output_price": 2 * 10**12}
PRICES = (SERVICE["input_price"], SERVICE["output_price"])
PROMPT, PROMPT_TOKENS, MAX_TOKENS = "What is a blockchain?", 5, 8
CAP = fee_cap(PROMPT_TOKENS, MAX_TOKENS, *PRICES)
WINDOW_FULL = 1024 - PROMPT_TOKENS  # what `--max-tokens 0` generated: up to the context window


def request() -> Request:
    return sign_request(USER, 0, PROVIDER.address, 1, PROMPT, CAP, MAX_TOKENS).request


@pytest.mark.parametrize("max_tokens", [0, -5])
def test_a_request_must_bound_its_completion(max_tokens: int) -> None:
    with pytest.raises(InvalidMaxTokens, match=f"at least 1, got {max_tokens}") as err:
        sign_request(USER, 0, PROVIDER.address, 1, PROMPT, CAP, max_tokens)
    assert err.value.details == {"max_tokens": max_tokens}


def test_a_receipt_bills_by_tokens_up_to_the_cap_and_never_above() -> None:
    assert make_receipt(request(), b"", PROMPT_TOKENS, MAX_TOKENS, "a", *PRICES).fee == CAP
    assert make_receipt(request(), b"", PROMPT_TOKENS, 3, "a", *PRICES).fee == 11 * 10**12
    with pytest.raises(FeeAboveCap, match=f"above the max fee {CAP} the user signed") as err:
        make_receipt(request(), b"", PROMPT_TOKENS, MAX_TOKENS + 1, "a", *PRICES)
    assert err.value.details["fee"] == CAP + SERVICE["output_price"]


def test_the_client_rejects_a_signed_receipt_above_its_cap() -> None:
    asked = request()
    fair = make_receipt(asked, b"", PROMPT_TOKENS, MAX_TOKENS, "a", *PRICES).signed_by(PROVIDER)
    verify_receipt(fair, asked.hash, PROVIDER.address, SERVICE, PROMPT_TOKENS)
    # Signed by the provider and consistent with its prices, but far above the signed cap.
    over = Receipt(asked, b"", PROMPT_TOKENS, WINDOW_FULL,
                   fee_for(PROMPT_TOKENS, WINDOW_FULL, *PRICES), "a").signed_by(PROVIDER)
    with pytest.raises(FeeAboveCap, match=f"bills {over.fee} .* above the max fee {CAP}"):
        verify_receipt(over, asked.hash, PROVIDER.address, SERVICE, PROMPT_TOKENS)
