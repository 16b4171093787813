"""Inputs for the fuzz tests: fully random bytes, random canonical encodings (which get past
the RLP layer into the field checks), and mutations of valid encodings built with the
product's own encoders and real keys (which get past the first length check).

`outcome` is the property every test checks: an input gives a result or the product's own
typed error (zg_actors.errors.ZgError and its subclasses); any other exception fails the
test with its traceback, and Hypothesis shrinks the input that raised it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import strategies as st

from zg_actors.crypto.encoding import encode
from zg_actors.errors import ZgError

MAX_RANDOM_BYTES = 600  # random inputs: long enough for a small block, short enough to be fast

# A random canonical item: bytes (often the sizes the decoders expect) and nested lists.
_sizes = st.sampled_from([0, 1, 8, 20, 32, 48, 65, 96])
_leaf = st.one_of(st.binary(max_size=40), _sizes.flatmap(lambda n: st.binary(min_size=n,
                                                                            max_size=n)),
                  st.integers(min_value=0, max_value=2**70).map(lambda i: encode_int(i)))
items = st.recursive(_leaf, lambda children: st.lists(children, max_size=8), max_leaves=30)


def encode_int(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


encodings = items.map(encode)


@st.composite
def mutated(draw: st.DrawFn, valid: Sequence[bytes]) -> bytes:
    """One of `valid`, then 1 to 4 edits: flip a bit, set a byte, truncate, extend, insert,
    delete a range, duplicate a range, or splice in a piece of another valid encoding."""
    data = bytearray(draw(st.sampled_from(list(valid))))
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(["flip", "set", "truncate", "extend", "insert", "delete",
                                     "duplicate", "splice"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if edit == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "set" and data:
            data[at] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0x81, 0xB7, 0xB8, 0xBF, 0xC0,
                                             0xF7, 0xF8, 0xFF, draw(st.integers(0, 255))]))
        elif edit == "truncate":
            del data[at:]
        elif edit == "extend":
            data += draw(st.binary(min_size=1, max_size=64))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif edit == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        elif edit == "duplicate":
            data[at:at] = data[at:at + draw(st.integers(1, 32))]
        elif edit == "splice":
            other = draw(st.sampled_from(list(valid)))
            start = draw(st.integers(0, max(len(other) - 1, 0)))
            data[at:at + draw(st.integers(0, 32))] = other[start:start + draw(
                st.integers(1, 64))]
    return bytes(data)


def outside_bytes(valid: Sequence[bytes]) -> st.SearchStrategy[bytes]:
    """Bytes from outside: random, a random canonical encoding, a valid encoding as it is,
    or a mutation of one."""
    return st.one_of(st.binary(max_size=MAX_RANDOM_BYTES), encodings,
                     st.sampled_from(list(valid)), mutated(valid))


def outcome(decoder: Callable[..., Any], *args: Any) -> Any:
    """The decoder's result, or the typed error it raised (which must describe itself);
    any other exception propagates and fails the test."""
    try:
        return decoder(*args)
    except ZgError as exc:
        exc.to_dict()  # the error names what it refused in a form that can be sent back
        return exc


# Values a peer or a client may put in a field meant to be an int or bytes.
any_int = st.one_of(st.integers(-3, 300), st.integers(-2**70, 2**70),
                    st.sampled_from([2**63 - 1, 2**64 - 1, 2**64, 2**256]))
any_bytes = st.one_of(st.binary(max_size=120), _sizes.flatmap(
    lambda n: st.binary(min_size=n, max_size=n)))
