"""Typed errors of DA: each names the offending value and what was expected."""

from __future__ import annotations

from zg_actors.errors import InvalidInput, InvalidProof, NotFound, Unavailable, ZgError


class DAError(ZgError):
    code = "DA_ERROR"


class BlobTooLarge(DAError, InvalidInput):
    code = "BLOB_TOO_LARGE"


class InvalidBlob(DAError, InvalidInput):
    code = "INVALID_BLOB"


class InvalidBlobId(DAError, InvalidInput):
    """A request id or data root that cannot name a blob (not a 32-byte hash)."""

    code = "INVALID_BLOB_ID"


class InvalidSlice(DAError, InvalidProof):
    """A slice that does not hash to the root its proof commits it to."""

    code = "INVALID_SLICE"


class InvalidTicket(DAError, InvalidProof):
    code = "INVALID_TICKET"


class UntrustedRegistry(DAError, InvalidProof):
    """An epoch registry that does not carry C0's attestation of exactly its contents."""

    code = "UNTRUSTED_REGISTRY"


class InvalidDACertificate(DAError, InvalidProof):
    code = "INVALID_DA_CERTIFICATE"


class UnknownBlob(DAError, NotFound):
    code = "UNKNOWN_BLOB"


class UnknownEpoch(DAError, NotFound):
    code = "UNKNOWN_EPOCH"


class NotADisperser(DAError, InvalidInput):
    code = "NOT_A_DISPERSER"


class QuorumUnavailable(DAError, Unavailable):
    """Too few of a quorum's slots are held by reachable DA nodes to certify a blob now:
    DisperseBlob refuses it (gRPC UNAVAILABLE) instead of acknowledging what it cannot keep."""

    code = "QUORUM_UNAVAILABLE"


class Overloaded(DAError, Unavailable):
    """Too much in flight: the caller should retry later (gRPC RESOURCE_EXHAUSTED)."""

    code = "OVERLOADED"
