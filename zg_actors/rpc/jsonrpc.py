"""JSON-RPC 2.0 (https://www.jsonrpc.org/specification), pure: no Ray, no server.

One method registry and one dispatcher for every HTTP JSON-RPC surface of the product
(KV nodes' `kv_*`, a network's Ethereum `eth_*`). A pillar plugs in by building a
`Registry` of its methods; `rpc/http.py` serves any registry over Ray Serve:

    registry = Registry()
    registry.add("kv_getValue", get_value)        # a function (sync or async) of the params
    answer = await registry.handle(request_body)  # bytes in, bytes (or None) out
    JsonRpcClient(url).call("kv_getValue", ...)    # the other end, for SDKs and the CLI

A method takes its positional params (or its named params as keywords) and returns a
JSON value. Errors it raises become error objects: `RpcError` as it is, the product's
typed errors by class (InvalidInput -> -32602, the rest -32000) with `data` = the
error's dict, which names the offending value; anything else is -32000 without
details (a bug must not leak internals to a caller).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

from zg_actors.errors import InvalidInput, Unavailable, ZgError, preview

JSONRPC_VERSION = "2.0"
PARSE_ERROR = -32700  # the body is not JSON
INVALID_REQUEST = -32600  # JSON, but not a request object
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000  # the method ran and failed (implementation-defined range)
UNKNOWN_METHOD = "unknown"  # how an observer is told of a method that does not exist
MAX_BATCH_REQUESTS = 1_000  # one HTTP body may not ask for more work than this

Method = Callable[..., Any | Awaitable[Any]]


class RpcError(Exception):
    """A JSON-RPC error object: `code`, `message` and optional `data`."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def __reduce__(self) -> tuple:  # crosses Ray (a KV node -> the Serve replica) whole
        return (type(self), (self.code, self.message, self.data))

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def error_of(exc: BaseException) -> RpcError:
    """The error object a raised exception becomes."""
    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, InvalidInput):
        return RpcError(INVALID_PARAMS, str(exc), exc.to_dict())
    if isinstance(exc, ZgError):
        return RpcError(SERVER_ERROR, str(exc), exc.to_dict())
    return RpcError(SERVER_ERROR, f"internal error ({type(exc).__name__})")


def _response(request_id: Any, *, result: Any = None, error: RpcError | None = None) -> dict:
    if error is not None:
        return {"jsonrpc": JSONRPC_VERSION, "id": request_id, "error": error.to_dict()}
    return {"jsonrpc": JSONRPC_VERSION, "id": request_id, "result": result}


class Registry:
    """Method name -> function; answers single and batch requests."""

    def __init__(self) -> None:
        self.methods: dict[str, Method] = {}
        self._signatures: dict[str, inspect.Signature] = {}  # once: computing one costs ~20 us
        # Methods of plain parameters: (required, all), so that a params array of a fitting
        # length needs no Signature.bind (~8 us a request; a batch has up to 1,000).
        self._positional: dict[str, tuple[int, int]] = {}
        # Told of every request answered: (method, seconds, error code or None); a method
        # not registered is told as UNKNOWN_METHOD, so that callers cannot add series.
        self.observer: Callable[[str, float, int | None], None] | None = None

    def add(self, name: str, method: Method) -> None:
        if name in self.methods:
            raise ValueError(f"JSON-RPC method {name!r} registered twice")
        self.methods[name] = method
        signature = self._signatures[name] = inspect.signature(method)
        params = signature.parameters.values()
        if all(p.kind == p.POSITIONAL_OR_KEYWORD for p in params):
            self._positional[name] = (sum(p.default is p.empty for p in params), len(params))

    def names(self) -> list[str]:
        return sorted(self.methods)

    async def handle(self, body: bytes | str) -> bytes | None:
        """The response body for a request body; None when there is nothing to answer
        (only notifications), which HTTP sends as 204 No Content."""
        try:
            message = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return _encode(_response(None, error=RpcError(PARSE_ERROR, f"parse error: {exc}")))
        if isinstance(message, list):
            if not message:
                return _encode(_response(None, error=RpcError(INVALID_REQUEST,
                                                              "empty batch")))
            if len(message) > MAX_BATCH_REQUESTS:
                return _encode(_response(None, error=RpcError(
                    INVALID_REQUEST, f"batch of {len(message)} requests, limit "
                    f"{MAX_BATCH_REQUESTS}", {"requests": len(message)})))
            # Answered concurrently (JSON-RPC allows any order; answers keep the requests'):
            # a batch of sends becomes one call to a validator (EthApi coalesces them).
            answers = [a for a in await asyncio.gather(*(self.answer(m) for m in message))
                       if a is not None]
            return _encode(answers) if answers else None
        answer = await self.answer(message)
        return _encode(answer) if answer is not None else None

    async def answer(self, request: Any) -> dict | None:
        """The response object to one request object (None for a notification)."""
        if (not isinstance(request, dict) or request.get("jsonrpc") != JSONRPC_VERSION
                or not isinstance(request.get("method"), str)
                or not isinstance(request.get("params", []), (list, dict))
                or not isinstance(request.get("id"), (str, int, type(None)))
                or isinstance(request.get("id"), bool)):
            request_id = request.get("id") if isinstance(request, dict) else None
            valid_id = isinstance(request_id, (str, int)) and not isinstance(request_id, bool)
            return _response(request_id if valid_id else None, error=RpcError(
                INVALID_REQUEST, "invalid request: want an object with jsonrpc \"2.0\", a "
                "string method, params as an array or object, and a string or number id"))
        notification = "id" not in request
        started = time.perf_counter()
        try:
            result = await self.call(request["method"], request.get("params", []))
        except Exception as exc:  # every failure becomes the error object of its request
            error = error_of(exc)
            self._observe(request["method"], started, error.code)
            return None if notification else _response(request["id"], error=error)
        self._observe(request["method"], started, None)
        return None if notification else _response(request["id"], result=result)

    def _observe(self, name: str, started: float, code: int | None) -> None:
        if self.observer is not None:
            self.observer(name if name in self.methods else UNKNOWN_METHOD,
                          time.perf_counter() - started, code)

    async def call(self, name: str, params: list | dict) -> Any:
        """Run method `name` with `params`; RpcError when it does not exist or the params do
        not fit its signature."""
        method = self.methods.get(name)
        if method is None:
            # Geth's words: Ethereum clients show them as they are
            raise RpcError(METHOD_NOT_FOUND, f"the method {name} does not exist/is not "
                           "available", {"method": name})
        args, kwargs = (params, {}) if isinstance(params, list) else ([], params)
        required, total = self._positional.get(name, (-1, -1))
        if not (kwargs == {} and required <= len(args) <= total):
            try:
                self._signatures[name].bind(*args, **kwargs)
            except TypeError as exc:
                raise RpcError(INVALID_PARAMS, f"{name}: {exc}",
                               {"method": name, "params": params}) from None
        result = method(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result


def _encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


# ---- calling a JSON-RPC endpoint over HTTP ------------------------------------------------
class RemoteError(ZgError):
    """An endpoint answered with an error object; `rpc_code` is its JSON-RPC code."""

    code = "JSONRPC_ERROR"


class RemoteInvalidParams(RemoteError, InvalidInput):
    code = "JSONRPC_INVALID_PARAMS"


def remote_error(error: object) -> RemoteError:
    """The typed error of an error object (invalid params stay InvalidInput)."""
    if not isinstance(error, dict):  # an endpoint that does not follow JSON-RPC
        return RemoteError(f"malformed error object {preview(error)}", rpc_code=None)
    data = error.get("data") if isinstance(error.get("data"), dict) else {}
    kind = RemoteInvalidParams if error.get("code") == INVALID_PARAMS else RemoteError
    return kind(str(error.get("message", "")), rpc_code=error.get("code"),
                **{k: v for k, v in data.items() if k not in ("message", "code", "rpc_code")})


def result_of(answer: object, method: str) -> Any:
    """The result of a response object, or its error as a typed error (RemoteError also
    for a response that is not a JSON-RPC response object)."""
    if not isinstance(answer, dict) or ("error" not in answer and "result" not in answer):
        raise RemoteError(f"{method}: the answer {preview(answer)} is not a JSON-RPC response "
                          "object", method=method)
    if "error" in answer:
        raise remote_error(answer["error"])
    return answer["result"]


class JsonRpcClient:
    """Calls methods of one HTTP JSON-RPC endpoint (POST, one request per call)."""

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        self.url, self.timeout_s = url, timeout_s
        self._next_id = 0

    def call(self, method: str, *params: Any) -> Any:
        self._next_id += 1
        body = _encode({"jsonrpc": JSONRPC_VERSION, "id": self._next_id, "method": method,
                        "params": list(params)})
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise Unavailable(f"{self.url} answered HTTP {exc.code} to {method}",
                              url=self.url, status=exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            raise Unavailable(f"no JSON-RPC endpoint answers at {self.url} ({exc})",
                              url=self.url) from None
        return result_of(answer, method)
