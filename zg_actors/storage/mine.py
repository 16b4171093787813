"""`mine`: miner registration, PoRA answers checked completely, rewards, difficulty.

State: `miner/<id>` -> beneficiary, `target`, `answers/<epoch>` (count),
`seen/<context><miner><position>` (duplicates), `claimed/<segment>`,
`base_pool`, `paid/<beneficiary>`, `source/<beneficiary><load>` -> first holder,
`royalties/<owner>`. Pools and contexts live in the `flow` namespace.
"""

from __future__ import annotations

from zg_actors.chain.modules import token
from zg_actors.chain.modules.base import ArgDecoder, Context, Module, ModuleError, ModuleState
from zg_actors.config import StorageConfig
from zg_actors.crypto.encoding import Decoded, EncodingError, as_bytes, as_int, as_list
from zg_actors.errors import InvalidInput, NotFound
from zg_actors.storage import flow as flow_module
from zg_actors.storage.constants import BPS, SECTORS_PER_SEGMENT
from zg_actors.storage.pora import (
    Answer,
    InvalidAnswer,
    RecallRange,
    check_answer,
    initial_target,
    miner_id,
    retarget,
    subtask_opens,
)
from zg_actors.storage.reward import answer_reward
from zg_actors.store import U64_BYTES, u64

MODULE = "mine"


class AnswerRejected(ModuleError, InvalidInput):
    code = "ANSWER_REJECTED"


class UnknownMiner(ModuleError, NotFound):
    code = "UNKNOWN_MINER"


def parse_answer(args: tuple[Decoded, ...]) -> Answer:
    try:
        epoch, digest, nonce, miner, rng, position, index, sealed, proof = args
        start, length, shard_id, shard_mask = (as_int(v) for v in as_list(rng, 4))
        return Answer(as_int(epoch), as_bytes(digest, 32), as_bytes(nonce, 32),
                      as_bytes(miner, 32), RecallRange(start, length, shard_id, shard_mask),
                      as_int(position), as_int(index), as_bytes(sealed),
                      tuple(as_bytes(h, 32) for h in as_list(proof)))
    except (EncodingError, ValueError, TypeError) as exc:
        raise AnswerRejected(f"malformed PoRA answer: {exc}") from exc


class MineModule(Module):
    name = MODULE

    def __init__(self, storage: StorageConfig) -> None:
        self.storage = storage

    def genesis(self, state: ModuleState) -> None:
        state.put_int(b"target", initial_target(self.storage.pora_difficulty))

    def begin_block(self, ctx: Context) -> None:
        """At each epoch start, retarget from the answers the last epoch accepted."""
        if ctx.block.height % self.storage.blocks_per_epoch != 1 or ctx.block.height < 2:
            return
        state = ctx.state(MODULE)
        last = ctx.block.height // self.storage.blocks_per_epoch - 1
        actual = state.get_int(b"answers/" + u64(last))
        target = state.get_int(b"target")
        state.put_int(b"target", retarget(target, self.storage.wanted_answers_per_epoch, actual))

    def tx_register(self, ctx: Context, seed: Decoded) -> Decoded:
        """Register miner id keccak(sender || seed); rewards go to the sender."""
        if not isinstance(seed, bytes) or len(seed) != 32:
            raise AnswerRejected("miner seed must be 32 bytes", argument="seed")
        mid = miner_id(ctx.sender, seed)
        state = ctx.state(MODULE)
        if state.get(b"miner/" + mid) is None:
            state.put(b"miner/" + mid, ctx.sender)
            ctx.emit(MODULE, "NewMiner", mid, ctx.sender)
        return mid

    def tx_donate(self, ctx: Context, amount: Decoded) -> Decoded:
        """Fund the base reward pool."""
        value = ArgDecoder(AnswerRejected).uint(amount, "amount")
        token.debit(ctx.state(token.MODULE), ctx.sender, value)
        ctx.state(MODULE).add_int(b"base_pool", value)
        return b""

    def tx_submit_answer(self, ctx: Context, *args: Decoded) -> Decoded:
        """Check a PoRA answer completely and pay it (segment reward + base reward)."""
        answer = parse_answer(args)
        state, flow = ctx.state(MODULE), ctx.state(flow_module.MODULE)
        beneficiary = state.get(b"miner/" + answer.miner_id)
        if beneficiary is None:
            raise UnknownMiner(f"miner id 0x{answer.miner_id.hex()} is not registered",
                               miner_id=answer.miner_id)
        context = flow.get_obj(b"context/" + u64(answer.epoch))
        if context is None:
            raise AnswerRejected(f"no mining context for epoch {answer.epoch}",
                                 epoch=answer.epoch)
        digest, root, length, height = as_list(context, 4)
        if as_bytes(digest) != answer.context_digest:
            raise AnswerRejected(f"context digest is not epoch {answer.epoch}'s",
                                 epoch=answer.epoch)
        opens = subtask_opens(as_int(height), answer.context_digest, answer.miner_id,
                              self.storage.subtask_spread_blocks)
        if ctx.block.height < opens:
            raise AnswerRejected(f"answer for epoch {answer.epoch} is early: this miner's "
                                 f"subtask window opens at height {opens}, now "
                                 f"{ctx.block.height}", epoch=answer.epoch, opens=opens)
        if ctx.block.height > as_int(height) + self.storage.answer_window_blocks:
            raise AnswerRejected(f"answer for epoch {answer.epoch} is late (context at "
                                 f"height {as_int(height)}, now {ctx.block.height})",
                                 epoch=answer.epoch)
        seen = b"seen/" + answer.context_digest + answer.miner_id + u64(answer.recall_position)
        if state.get(seen) is not None:
            raise AnswerRejected(f"duplicate answer at flow sector {answer.recall_position}",
                                 recall_position=answer.recall_position)
        try:
            score = check_answer(answer, as_bytes(root), as_int(length), state.get_int(b"target"),
                                 self.storage.max_mining_range_sectors)
        except InvalidAnswer as exc:
            raise AnswerRejected(str(exc), **exc.details) from exc
        state.put(seen, b"\x01")
        state.add_int(b"answers/" + u64(answer.epoch), 1)
        segment = answer.recall_position // self.storage.pricing_segment_sectors
        full = flow.get(b"full/" + u64(segment))
        elapsed = None if full is None else ctx.block.height - flow.get_int(b"full/" +
                                                                            u64(segment))
        pool = flow.get_int(b"pool/" + u64(segment))
        claimed = state.get_int(b"claimed/" + u64(segment))
        reward = answer_reward(pool, claimed, elapsed, self.storage)
        state.put_int(b"claimed/" + u64(segment), claimed + reward)
        base = min(self.storage.base_reward, state.get_int(b"base_pool"))
        state.add_int(b"base_pool", -base)
        load = answer.recall_position // SECTORS_PER_SEGMENT
        owner = flow.get(b"royalty/" + u64(load))
        royalty = 0
        if owner is not None and owner != beneficiary and \
                state.get(b"source/" + beneficiary + u64(load)) is not None:
            royalty = reward * self.storage.royalty_bps // BPS
            token.credit(ctx.state(token.MODULE), owner, royalty)
            state.add_int(b"royalties/" + owner, royalty)
            ctx.emit(MODULE, "Royalty", owner, beneficiary, load, royalty)
        token.credit(ctx.state(token.MODULE), beneficiary, reward - royalty + base)
        state.add_int(b"paid/" + beneficiary, reward - royalty + base)
        ctx.emit(MODULE, "Reward", beneficiary, answer.epoch, segment, reward - royalty, base,
                 score)
        return reward - royalty + base

    def tx_register_source(self, ctx: Context, loads: Decoded) -> Decoded:
        """The sender synced these loads from their first holder: it shares its answer
        rewards on them with the royalty record's owner (the seed's royalty mechanism)."""
        try:
            indexes = [as_int(v) for v in as_list(loads)]
        except EncodingError as exc:
            raise AnswerRejected("loads must be a list of load indexes") from exc
        for load in indexes:  # a load index is a u64 key of the flow's royalty records
            if load.bit_length() > 8 * U64_BYTES:
                raise AnswerRejected(f"load index {load} is above the u64 range", load=load)
        state, flow = ctx.state(MODULE), ctx.state(flow_module.MODULE)
        for load in indexes:
            owner = flow.get(b"royalty/" + u64(load))
            if owner is not None and owner != ctx.sender:
                state.put(b"source/" + ctx.sender + u64(load), owner)
        return b""

    def query_royalties(self, state: ModuleState, owner: bytes) -> int:
        return state.get_int(b"royalties/" + owner)

    def query_target(self, state: ModuleState) -> int:
        return state.get_int(b"target")

    def query_miner(self, state: ModuleState, mid: bytes) -> bytes | None:
        return state.get(b"miner/" + mid)

    def query_rewards(self, state: ModuleState, beneficiary: bytes) -> int:
        return state.get_int(b"paid/" + beneficiary)

    def query_segment(self, state: ModuleState, segment: int) -> dict:
        return {"claimed": state.get_int(b"claimed/" + u64(segment)),
                "base_pool": state.get_int(b"base_pool")}

    def query_answers(self, state: ModuleState, epoch: int) -> int:
        return state.get_int(b"answers/" + u64(epoch))
