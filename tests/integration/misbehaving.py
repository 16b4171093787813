"""Misbehaving nodes, for test use only (the product has no such switch): a validator that
equivocates, a DA node slower than the signature deadline."""

from __future__ import annotations

import asyncio
from typing import Any

import ray

from zg_actors.chain.actors import Validator
from zg_actors.chain.block import PREVOTE, vote_sign_bytes
from zg_actors.chain.consensus import Vote
from zg_actors.crypto import bls
from zg_actors.crypto.keccak import keccak256
from zg_actors.da.actors import DANode


@ray.remote(max_restarts=0)
class EquivocatingValidator(Validator.__ray_actor_class__):  # type: ignore[name-defined]
    """Besides every honest prevote, signs and sends a prevote for a block that does not exist."""

    def _send_vote(self, vote: Vote) -> None:
        super()._send_vote(vote)
        if vote.vote_type != PREVOTE or not vote.block_hash:
            return
        forged = keccak256(b"another block" + vote.block_hash)
        signature = bls.sign(self.identity.bls_secret, vote_sign_bytes(
            self.network_id, vote.height, vote.round, PREVOTE, forged))
        self._broadcast("on_vote", vote.height, vote.round, PREVOTE, forged, vote.validator,
                        signature)


@ray.remote(max_restarts=0)
class SlowDANode(DANode.__ray_actor_class__):  # type: ignore[name-defined]
    """Stores and signs every batch honestly, but only after `delay_s`: a live node slower
    than the disperser's signature deadline."""

    def __init__(self, config_dict: dict, index: int, data_dir: str, delay_s: float) -> None:
        super().__init__(config_dict, index, data_dir)
        self.delay_s = delay_s

    async def store_batch(self, *args: Any) -> bytes:
        await asyncio.sleep(self.delay_s)
        return await super().store_batch(*args)
