"""A validator that equivocates: for test use only; the product has no such switch."""

from __future__ import annotations

import ray

from zg_actors.chain.actors import Validator
from zg_actors.chain.block import PREVOTE, vote_sign_bytes
from zg_actors.chain.consensus import Vote
from zg_actors.crypto import bls
from zg_actors.crypto.keccak import keccak256


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
