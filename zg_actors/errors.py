"""Typed errors shared by every pillar.

Each error carries the offending value so that a user (or a test) can act on
it; the message names that value.  Pillars subclass these for their own cases.
"""

from __future__ import annotations


class ZgError(Exception):
    """Base class of every error the product raises on purpose."""

    code = "ZG_ERROR"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.details = details

    def to_dict(self) -> dict[str, object]:
        return {"error": type(self).__name__, "code": self.code, "message": str(self),
                **{k: _plain(v) for k, v in self.details.items()}}


def _plain(value: object) -> object:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return repr(value)


PREVIEW_CHARS = 64  # of a refused value, what an error message quotes


def preview(value: object) -> str:
    """A short repr: an error echoes what it refused, never a megabyte of it."""
    text = repr(value)
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS - 3] + "..."


def unwrap(exc: BaseException) -> BaseException:
    """The product's own error inside a Ray task error (its `cause`), if there is one."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


class InvalidInput(ZgError, ValueError):
    """Malformed or out-of-range input."""

    code = "INVALID_INPUT"


class InvalidSignature(ZgError, ValueError):
    code = "INVALID_SIGNATURE"


class InvalidProof(ZgError, ValueError):
    code = "INVALID_PROOF"


class NotFound(ZgError, KeyError):
    code = "NOT_FOUND"

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InsufficientBalance(ZgError, ValueError):
    code = "INSUFFICIENT_BALANCE"


class Unavailable(ZgError, RuntimeError):
    code = "UNAVAILABLE"


class NotUp(Unavailable):
    """A command needs a pillar (chain, storage, DA, compute) that is not deployed in the
    namespace; the message names the command that starts it."""

    code = "NOT_UP"
