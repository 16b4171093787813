"""Typed product errors <-> gRPC status codes, both ways (pure: no Ray, no server)."""

from __future__ import annotations

import json

import grpc

from zg_actors.da.errors import Overloaded
from zg_actors.errors import InvalidInput, NotFound, Unavailable, ZgError

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # a 32,505,852-byte blob plus framing fits


def status_code(exc: BaseException) -> grpc.StatusCode:
    """The gRPC code a client can act on: fix the request, look elsewhere, retry later."""
    if isinstance(exc, Overloaded):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(exc, InvalidInput):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, NotFound):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(exc, Unavailable):
        return grpc.StatusCode.UNAVAILABLE
    return grpc.StatusCode.INTERNAL


def error_details(exc: BaseException) -> str:
    """The error as JSON ({"error", "code", "message", ...}) for the status details."""
    if isinstance(exc, ZgError):
        return json.dumps(exc.to_dict())
    return json.dumps({"error": type(exc).__name__, "code": "INTERNAL", "message": str(exc)})


class MalformedMessage(InvalidInput):
    """Request bytes that do not parse as the method's protobuf message."""

    code = "MALFORMED_MESSAGE"


class RpcError(ZgError):
    """A gRPC call failed; the detail `grpc_code` is the gRPC status code name, and the
    server's own error class and fields come along as details."""

    code = "RPC_ERROR"


class RpcInvalidArgument(RpcError, InvalidInput):
    code = "RPC_INVALID_ARGUMENT"


class RpcNotFound(RpcError, NotFound):
    code = "RPC_NOT_FOUND"


class RpcUnavailable(RpcError, Unavailable):
    code = "RPC_UNAVAILABLE"


class RpcResourceExhausted(RpcError, Unavailable):
    code = "RPC_RESOURCE_EXHAUSTED"


_BY_CODE: dict[grpc.StatusCode, type[RpcError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: RpcInvalidArgument,
    grpc.StatusCode.NOT_FOUND: RpcNotFound,
    grpc.StatusCode.UNAVAILABLE: RpcUnavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: RpcUnavailable,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RpcResourceExhausted,
}


def from_status(code: grpc.StatusCode, details: str) -> RpcError:
    """The client-side typed error for a failed call, with the server's fields."""
    try:
        fields = json.loads(details)
    except (TypeError, ValueError):
        fields = None
    if not isinstance(fields, dict):  # plain text, or JSON that is not the gateway's object
        fields = {"message": details}
    message = str(fields.pop("message", details))
    fields.pop("code", None)
    fields.pop("grpc_code", None)  # the call's own status code, not one the server names
    return _BY_CODE.get(code, RpcError)(message or code.name, grpc_code=code.name, **fields)
