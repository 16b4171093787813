"""The chain's module interface: system contracts as pure classes.

A module owns one namespace of the state (`<module>/<key>`), exposes tx
methods `tx_<name>(ctx, *args)` and read-only queries `query_<name>(state, *args)`,
emits events and may hook block begin.  `apply(ctx, tx) -> receipt` is the
only entry for txs; a ModuleError rolls back the tx's writes (not its fee).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from zg_actors.crypto.accounts import ADDRESS_BYTES
from zg_actors.crypto.encoding import (
    Decoded,
    Encodable,
    EncodingError,
    as_bytes,
    as_int,
    as_str,
    decode,
    encode,
)
from zg_actors.crypto.keccak import keccak256
from zg_actors.errors import NotFound, ZgError
from zg_actors.store.overlay import Overlay


class ModuleError(ZgError):
    """A tx that is valid but whose call fails (receipt status failed)."""

    code = "MODULE_ERROR"


class UnknownMethod(ModuleError, NotFound):
    code = "UNKNOWN_METHOD"


@functools.cache
def _arity(function: Callable) -> tuple[int, int | None]:
    """(fewest, most) positional arguments `function` takes, self included; None: any
    number. Read once per handler, since every tx asks."""
    params = inspect.signature(function).parameters.values()
    positional = [p for p in params if p.kind in (inspect.Parameter.POSITIONAL_ONLY,
                                                  inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    fewest = sum(p.default is inspect.Parameter.empty for p in positional)
    varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    return fewest, None if varargs else len(positional)


def check_arity(handler: Callable, args: Sequence[object], error: type[ZgError],
                method: str) -> None:
    """Raise `error` unless the bound method `handler` takes `args` after its first argument
    (the call's context or sender): a wrong count is the caller's mistake, while a
    TypeError raised inside a handler is a bug and surfaces as one."""
    fewest, most = _arity(handler.__func__)
    fewest, most = fewest - 2, None if most is None else most - 2  # less self and the first
    if len(args) < fewest or (most is not None and len(args) > most):
        takes = (f"at least {fewest}" if most is None else
                 f"{fewest}" if fewest == most else f"{fewest} to {most}")
        raise error(f"{method} takes {takes} arguments, {len(args)} given", method=method,
                    given=len(args))


SHOWN_VALUE_BYTES = 32  # a bad argument is quoted up to this many bytes: enough to recognise


def shown(value: Decoded) -> str:
    """A decoded argument as an error message quotes it: hex (cut short) or a list's length."""
    if isinstance(value, list):
        return f"a list of length {len(value)}"
    cut = "..." if len(value) > SHOWN_VALUE_BYTES else ""
    return "0x" + value[:SHOWN_VALUE_BYTES].hex() + cut


@dataclass(frozen=True)
class ArgDecoder:
    """Turns a call's decoded args into typed values. A bad one raises `error`, the calling
    module's own typed error, naming the argument and its value (the call's writes roll
    back with it)."""

    error: type[ZgError] = ModuleError

    def _bad(self, name: str, value: Decoded, expected: str) -> ZgError:
        return self.error(f"{name} must be {expected}, got {shown(value)}", argument=name,
                          value=shown(value))

    def address(self, value: Decoded, name: str) -> bytes:
        try:
            return as_bytes(value, ADDRESS_BYTES)
        except EncodingError as exc:
            raise self._bad(name, value, f"a {ADDRESS_BYTES}-byte address") from exc

    def uint(self, value: Decoded, name: str, positive: bool = False) -> int:
        try:
            amount = as_int(value)
        except EncodingError as exc:
            raise self._bad(name, value, "a non-negative integer") from exc
        if positive and amount == 0:
            raise self.error(f"{name} must be positive, got 0", argument=name, value=0)
        return amount

    def text(self, value: Decoded, name: str, max_chars: int | None = None) -> str:
        try:
            text = as_str(value)
        except EncodingError as exc:
            raise self._bad(name, value, "UTF-8 text") from exc
        if max_chars is not None and len(text) > max_chars:
            raise self.error(f"{name} is {len(text)} characters, limit {max_chars}",
                             argument=name, length=len(text))
        return text


@dataclass(frozen=True)
class Event:
    module: str
    name: str
    data: tuple[Encodable, ...]

    def to_list(self) -> list:
        return [self.module, self.name, list(self.data)]


@dataclass(frozen=True)
class Receipt:
    tx_hash: bytes
    ok: bool
    fee: int
    events: tuple[Event, ...] = ()
    error: str = ""
    result: Encodable = b""

    @functools.cached_property  # once: the receipt root hashes it, the commit stores it
    def _encoded(self) -> bytes:
        return encode([self.tx_hash, self.ok, self.fee, [e.to_list() for e in self.events],
                       self.error, self.result])

    def encode(self) -> bytes:
        return self._encoded

    @property
    def hash(self) -> bytes:
        return keccak256(self._encoded)


class ModuleState:
    """One module's namespace of the chain state."""

    def __init__(self, overlay: Overlay, namespace: str) -> None:
        self._overlay = overlay
        self._prefix = namespace.encode() + b"/"

    @property
    def overlay(self) -> Overlay:
        """The whole state under this namespace (the EVM reads balances and nonces)."""
        return self._overlay

    def get(self, key: bytes) -> bytes | None:
        return self._overlay.get(self._prefix + key)

    def put(self, key: bytes, value: bytes) -> None:
        self._overlay.put(self._prefix + key, value)

    def delete(self, key: bytes) -> None:
        self._overlay.delete(self._prefix + key)

    def get_int(self, key: bytes) -> int:
        raw = self.get(key)
        return as_int(decode(raw)) if raw else 0

    def put_int(self, key: bytes, value: int) -> None:
        self.put(key, encode(value))

    def add_int(self, key: bytes, delta: int) -> int:
        value = self.get_int(key) + delta
        self.put_int(key, value)
        return value

    def get_obj(self, key: bytes) -> Decoded | None:
        raw = self.get(key)
        return decode(raw) if raw is not None else None

    def put_obj(self, key: bytes, value: Encodable) -> None:
        self.put(key, encode(value))


@dataclass
class BlockInfo:
    network_id: int
    height: int
    time_ms: int
    proposer: bytes
    prev_hash: bytes = b""  # the parent block's hash (b"" outside a block: queries, genesis)
    # What a module keeps across one block's txs, by module name (the EVM's open state,
    # whose trie root is computed once, at end_block).
    scratch: dict[str, object] = field(default_factory=dict, compare=False, repr=False)


@dataclass
class Context:
    """What a module sees while applying one tx (or a block hook)."""

    block: BlockInfo
    overlay: Overlay
    sender: bytes = b""
    tx_hash: bytes = b""
    fee: int = 0
    events: list[Event] = field(default_factory=list)

    def state(self, module: str) -> ModuleState:
        return ModuleState(self.overlay, module)

    def emit(self, module: str, name: str, *data: Encodable) -> None:
        self.events.append(Event(module, name, tuple(data)))


class Module:
    name: str = ""

    def genesis(self, state: ModuleState) -> None:
        """Write the module's initial state."""

    def begin_block(self, ctx: Context) -> None:
        """Runs before the block's txs (rewards, epoch work)."""

    def end_block(self, ctx: Context) -> None:
        """Runs after the block's txs, before its state root is computed."""

    def has_method(self, method: str) -> bool:
        """Whether txs may call `method` (a `tx_<method>` handler)."""
        return callable(getattr(self, f"tx_{method}", None))

    def apply(self, ctx: Context, method: str, args: tuple[Decoded, ...]) -> Encodable:
        handler: Callable | None = getattr(self, f"tx_{method}", None)
        if handler is None:
            raise UnknownMethod(f"module {self.name!r} has no method {method!r}",
                                module=self.name, method=method)
        check_arity(handler, args, ModuleError, f"{self.name}.{method}")
        return handler(ctx, *args)

    def prepare(self, state: ModuleState, method: str, args: tuple[Decoded, ...]) -> None:
        """Runs when a tx enters the mempool, on the committed state (read-only): a module
        may do expensive stateless-ish work here ahead of the block (e.g. check and cache
        a signature), so that executing the block inside consensus is fast. It decides
        nothing: errors are ignored, and execution checks everything again."""

    def query(self, state: ModuleState, method: str, args: tuple) -> object:
        handler: Callable | None = getattr(self, f"query_{method}", None)
        if handler is None:
            raise UnknownMethod(f"module {self.name!r} has no query {method!r}",
                                module=self.name, method=method)
        return handler(state, *args)
