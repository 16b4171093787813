"""Nodes that misbehave, for test use only; the product has no such switches.

EquivocatingValidator double-signs prevotes; OverchargingProvider signs a receipt above
the fee cap its user signed; SlowDANode signs batches later than the signature deadline.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ray

from zg_actors.chain.block import PREVOTE, vote_sign_bytes
from zg_actors.chain.consensus import Vote
from zg_actors.chain.validator_actor import Validator
from zg_actors.compute.actors import ComputeProvider
from zg_actors.compute.model import CONTEXT_TOKENS, Completion
from zg_actors.compute.request import Receipt, Request, fee_for
from zg_actors.crypto import bls
from zg_actors.crypto.keccak import keccak256
from zg_actors.da.node_actor import DANode


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
        self.peers.broadcast("on_vote", vote.height, vote.round, PREVOTE, forged, vote.validator,
                        signature)


@ray.remote(max_restarts=0)
class OverchargingProvider(ComputeProvider.__ray_actor_class__):  # type: ignore[name-defined]
    """Once told to, bills its next request as if the model had filled its context window
    (what `max_tokens 0` did): consistent with its prices, signed, and far above the cap."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.overcharge = False

    async def overcharge_next(self) -> None:
        self.overcharge = True

    def _bill(self, request: Request, signature: bytes, completion: Completion) -> Receipt:
        if not self.overcharge:
            return super()._bill(request, signature, completion)
        self.overcharge = False
        claimed = CONTEXT_TOKENS - completion.prompt_tokens
        fee = fee_for(completion.prompt_tokens, claimed, self.prices.input_price,
                      self.prices.output_price)
        return Receipt(request, signature, completion.prompt_tokens, claimed, fee,
                       completion.text).signed_by(self.account)


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
