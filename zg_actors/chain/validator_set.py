"""Validator sets: who votes on a network at a height, with what power.

Voting power is the validator's stake at the staking actor (shared security),
so every network's set is a snapshot read from C0.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from zg_actors.crypto import bls
from zg_actors.crypto.encoding import as_bytes, as_int, as_list, decode, encode
from zg_actors.crypto.keccak import keccak256
from zg_actors.errors import InvalidInput


@dataclass(frozen=True)
class ValidatorInfo:
    address: bytes  # secp256k1 account (rewards, evidence identity)
    bls_pubkey: bytes  # signs votes
    power: int


@dataclass(frozen=True)
class ValidatorSet:
    validators: tuple[ValidatorInfo, ...]  # sorted by address

    def __post_init__(self) -> None:
        if not self.validators:
            raise InvalidInput("a validator set needs at least one validator", count=0)
        addresses = [v.address for v in self.validators]
        if addresses != sorted(set(addresses)):
            raise InvalidInput("validators must be unique and sorted by address")
        if any(v.power <= 0 for v in self.validators):
            raise InvalidInput("every validator in a set needs positive power")

    @classmethod
    def from_list(cls, items: list[ValidatorInfo]) -> ValidatorSet:
        return cls(tuple(sorted(items, key=lambda v: v.address)))

    def encode(self) -> bytes:
        return encode([[v.address, v.bls_pubkey, v.power] for v in self.validators])

    @classmethod
    def decode(cls, data: bytes) -> ValidatorSet:
        return cls(tuple(ValidatorInfo(as_bytes(a, 20), as_bytes(p, bls.PUBKEY_BYTES),
                                       as_int(w))
                         for a, p, w in (as_list(item, 3) for item in as_list(decode(data)))))

    @cached_property
    def hash(self) -> bytes:
        return keccak256(self.encode())

    @cached_property
    def total_power(self) -> int:
        return sum(v.power for v in self.validators)

    @property
    def powers(self) -> list[int]:
        return [v.power for v in self.validators]

    def __len__(self) -> int:
        return len(self.validators)

    def index_of(self, address: bytes) -> int | None:
        for i, v in enumerate(self.validators):
            if v.address == address:
                return i
        return None

    def has_quorum(self, power: int) -> bool:
        """More than 2/3 of the total power: what a commit needs."""
        return power * 3 > self.total_power * 2

    @cached_property
    def _schedule(self) -> list[int]:
        """One period of stake-weighted round robin (Tendermint's proposer priority).

        Each step every validator gains its power in priority; the highest
        priority proposes and pays the total.  Over a period of total/gcd steps
        each validator proposes in proportion to its power.
        """
        from math import gcd

        divisor = 0
        for p in self.powers:
            divisor = gcd(divisor, p)
        powers = [p // divisor for p in self.powers]
        total = sum(powers)
        period = min(total, 10_000)  # huge unequal stakes: a truncated period is still fair
        priority = [0] * len(powers)
        schedule = []
        for _ in range(period):
            for i, p in enumerate(powers):
                priority[i] += p
            chosen = max(range(len(powers)), key=lambda i: (priority[i], -i))
            priority[chosen] -= total
            schedule.append(chosen)
        return schedule

    def proposer(self, height: int, round_: int) -> int:
        """Index of the proposer of (height, round): rotates with both."""
        schedule = self._schedule
        return schedule[(height + round_) % len(schedule)]


def refresh_tick(tick_in_force: int, c0_final_tick: int | None) -> int:
    """The C0 tick an epoch-boundary block names as the source of the next epoch's set:
    C0's latest final tick, or, while C0 cannot be read (None), the tick in force, so the
    set in force stays and the network keeps committing.  A proposer may pick either;
    every validator then applies `set_changes` to the committed header alike."""
    return tick_in_force if c0_final_tick is None else max(tick_in_force, c0_final_tick)


def set_changes(tick_in_force: int, block_tick: int) -> bool:
    """Whether an epoch-boundary block naming `block_tick` switches the validator set.

    Only a tick other than the one in force does, to C0's set at that (final, so
    immutable) tick.  What set rules a height is then fixed by the committed headers,
    never by whether some validator could reach C0 at some moment: a block that keeps
    the tick keeps the set, and needs no C0 read to be checked or committed."""
    return block_tick != tick_in_force
