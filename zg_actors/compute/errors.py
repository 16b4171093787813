"""Typed errors of the compute marketplace.

Each names the offending value and what to do about it.  The ones the `serving`
module raises are ModuleErrors too, so a failing call rolls back and changes nothing.
"""

from __future__ import annotations

from zg_actors.chain.modules.base import ModuleError
from zg_actors.errors import (
    InsufficientBalance,
    InvalidInput,
    InvalidSignature,
    NotFound,
    Unavailable,
)


class ComputeInsufficientBalance(ModuleError, InsufficientBalance):
    """A ledger, sub-account or wallet cannot cover an amount; says how much more and where."""

    code = "COMPUTE_INSUFFICIENT_BALANCE"


class UnknownProvider(ModuleError, NotFound):
    code = "UNKNOWN_PROVIDER"


class UnknownLedger(ModuleError, NotFound):
    code = "UNKNOWN_LEDGER"


class InvalidServiceCall(ModuleError, InvalidInput):
    """Malformed arguments or a call the account's state does not allow."""

    code = "INVALID_SERVICE_CALL"


class StaleNonce(InvalidInput):
    """A request nonce at or below one the provider already served: a replay or stale header."""

    code = "STALE_NONCE"


class FeeCapTooLow(InvalidInput):
    """The user signed a max fee below input fee + reserved output fee."""

    code = "FEE_CAP_TOO_LOW"


class InvalidMaxTokens(InvalidInput):
    """A request's max_tokens below 1: the signed fee cap reserves that much output."""

    code = "INVALID_MAX_TOKENS"


class FeeAboveCap(InvalidInput):
    """A receipt bills more than the max fee its user signed."""

    code = "FEE_ABOVE_CAP"


class ResponseSignatureInvalid(InvalidSignature):
    code = "INVALID_RESPONSE_SIGNATURE"


class ProviderDown(Unavailable):
    code = "PROVIDER_DOWN"


class ChainTxFailed(ModuleError):
    """A committed serving tx whose call failed (its fee was paid, nothing else changed)."""

    code = "TX_FAILED"
