"""Tendermint consensus for one height, as a pure state machine (no Ray, no I/O, no clock).

This follows Algorithm 1 of Buchman, Kwon and Milosevic, "The latest gossip on BFT
consensus" (2018), with voting power in place of node counts: "2f+1" means more than
2/3 of the total power and "f+1" more than 1/3.

The machine never signs, sends or sleeps.  Every input returns a list of *effects*
that the caller (the Validator actor, or a unit test) carries out:

- ``RequestProposal``: we are the proposer and have no valid value; build a block and
  call :meth:`ConsensusMachine.propose`.
- ``BroadcastProposal`` / ``BroadcastVote``: sign and send.  The caller feeds its own
  signed vote back through :meth:`on_vote` (the certificate needs the signature); our
  own proposal is recorded by the machine itself.
- ``ScheduleTimeout``: call :meth:`on_timeout` after ``delay`` seconds.
- ``Decide``: the block is committed with the > 2/3 precommits that prove it.
- ``Equivocation``: two different signed votes of one validator for the same
  (height, round, type): evidence for C0.

Messages of other heights are the caller's business (buffer or sync); the machine
ignores them.  Duplicate messages change nothing; late ones (earlier rounds) are still
counted, since a commit may be proven in any round.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

NIL = b""  # block hash of a nil vote


class Step(IntEnum):
    PROPOSE = 0
    PREVOTE = 1
    PRECOMMIT = 2
    COMMIT = 3


class VoteType(IntEnum):
    PREVOTE = 1
    PRECOMMIT = 2


@dataclass(frozen=True)
class Vote:
    height: int
    round: int
    vote_type: VoteType
    block_hash: bytes  # NIL for nil
    validator: int  # index in the validator set of this height
    signature: bytes = b""


@dataclass(frozen=True)
class Proposal:
    height: int
    round: int
    block_hash: bytes
    pol_round: int  # -1, or the round in which the proposer saw > 2/3 prevotes for it
    block: object
    proposer: int
    signature: bytes = b""


@dataclass(frozen=True)
class TimeoutConfig:
    """Seconds; the wait in round r is ``base + r * delta`` so a dead proposer is skipped
    and slow networks eventually get enough time."""

    propose: float = 1.0
    propose_delta: float = 0.5
    prevote: float = 0.5
    prevote_delta: float = 0.25
    precommit: float = 0.5
    precommit_delta: float = 0.25

    def delay(self, step: Step, round_: int) -> float:
        base, delta = {
            Step.PROPOSE: (self.propose, self.propose_delta),
            Step.PREVOTE: (self.prevote, self.prevote_delta),
            Step.PRECOMMIT: (self.precommit, self.precommit_delta),
        }[step]
        return base + round_ * delta


# ---- effects ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RequestProposal:
    height: int
    round: int


@dataclass(frozen=True)
class BroadcastProposal:
    proposal: Proposal


@dataclass(frozen=True)
class BroadcastVote:
    vote: Vote


@dataclass(frozen=True)
class ScheduleTimeout:
    height: int
    round: int
    step: Step
    delay: float


@dataclass(frozen=True)
class Decide:
    height: int
    round: int
    block_hash: bytes
    block: object
    precommits: list[Vote]


@dataclass(frozen=True)
class Equivocation:
    first: Vote
    second: Vote


Effect = (RequestProposal | BroadcastProposal | BroadcastVote | ScheduleTimeout | Decide
          | Equivocation)


@dataclass
class _RoundVotes:
    """Votes of one (round, type): first vote per validator and power per block hash."""

    by_validator: dict[int, Vote] = field(default_factory=dict)
    power_for: dict[bytes, int] = field(default_factory=dict)
    power_any: int = 0


class ConsensusMachine:
    """One height of Tendermint for the validator at ``my_index`` (None: observer)."""

    def __init__(self, height: int, powers: list[int], my_index: int | None,
                 proposer_of: Callable[[int, int], int], is_valid: Callable[[object], bool],
                 timeouts: TimeoutConfig) -> None:
        if not powers or any(p <= 0 for p in powers):
            raise ValueError(f"voting powers must be positive, got {powers}")
        self.height = height
        self.powers = list(powers)
        self.total_power = sum(powers)
        self.my_index = my_index
        self.proposer_of = proposer_of
        self.is_valid = is_valid
        self.timeouts = timeouts
        self.round = -1
        self.step = Step.PROPOSE
        self.locked_round = -1
        self.locked_hash: bytes | None = None
        self.valid_round = -1
        self.valid_block: object | None = None
        self.valid_hash: bytes | None = None
        self.decided: Decide | None = None
        self.proposals: dict[int, Proposal] = {}
        self.votes: dict[tuple[int, VoteType], _RoundVotes] = {}
        self._senders: dict[int, dict[int, int]] = {}  # round -> validator -> power
        self._equivocators: set[tuple[int, int, VoteType]] = set()
        self._prevote_timeout_set: set[int] = set()
        self._precommit_timeout_set: set[int] = set()
        self._polka_seen: set[int] = set()  # rounds where the lock/valid rule has fired

    # ---- thresholds -----------------------------------------------------------------
    def _two_thirds(self, power: int) -> bool:
        return 3 * power > 2 * self.total_power

    def _one_third(self, power: int) -> bool:
        return 3 * power > self.total_power

    def _tally(self, round_: int, vote_type: VoteType) -> _RoundVotes:
        return self.votes.setdefault((round_, vote_type), _RoundVotes())

    def has_vote(self, vote: Vote) -> bool:
        """Whether this very vote (same validator, round, type and value) is counted: a
        re-sent copy needs no second signature check."""
        first = self.votes.get((vote.round, vote.vote_type), _RoundVotes()).by_validator.get(
            vote.validator)
        return first is not None and first.block_hash == vote.block_hash

    # ---- inputs ---------------------------------------------------------------------
    def restore_lock(self, round_: int, block_hash: bytes, block: object) -> None:
        """After a restart: we precommitted `block_hash` in `round_` of this height before,
        so we are locked on it (and it is our valid value), as if we had never stopped."""
        if round_ > self.locked_round:
            self.locked_round, self.locked_hash = round_, block_hash
            self.valid_round, self.valid_hash, self.valid_block = round_, block_hash, block

    def start(self, round_: int = 0) -> list[Effect]:
        """Enter `round_` (0, or after a restart the last round we voted in)."""
        effects: list[Effect] = []
        self._start_round(round_, effects)
        self._evaluate(effects)
        return effects

    def propose(self, block_hash: bytes, block: object) -> list[Effect]:
        """The block we were asked for in ``RequestProposal`` (ignored if too late)."""
        effects: list[Effect] = []
        r = self.round
        if (self.decided is None and self.step == Step.PROPOSE and r not in self.proposals
                and self.my_index is not None and self.proposer_of(self.height, r)
                == self.my_index):
            proposal = Proposal(self.height, r, block_hash, -1, block, self.my_index)
            self.proposals[r] = proposal
            self._note_sender(r, self.my_index)
            effects.append(BroadcastProposal(proposal))
            self._evaluate(effects)
        return effects

    def on_proposal(self, proposal: Proposal) -> list[Effect]:
        """A proposal whose signature the caller has checked."""
        effects: list[Effect] = []
        if (proposal.height != self.height or self.decided is not None or proposal.round < 0
                or proposal.pol_round >= proposal.round or proposal.pol_round < -1
                or proposal.proposer != self.proposer_of(self.height, proposal.round)
                or proposal.round in self.proposals):
            return effects  # wrong height, malformed, not the proposer's turn, or duplicate
        self.proposals[proposal.round] = proposal
        self._note_sender(proposal.round, proposal.proposer)
        self._evaluate(effects)
        return effects

    def on_vote(self, vote: Vote) -> list[Effect]:
        """A vote whose signature the caller has checked (our own ones included)."""
        effects: list[Effect] = []
        if (vote.height != self.height or vote.round < 0
                or not 0 <= vote.validator < len(self.powers)):
            return effects
        tally = self._tally(vote.round, vote.vote_type)
        first = tally.by_validator.get(vote.validator)
        if first is not None:
            key = (vote.validator, vote.round, vote.vote_type)
            if first.block_hash != vote.block_hash and key not in self._equivocators:
                self._equivocators.add(key)
                effects.append(Equivocation(first, vote))
            return effects  # duplicates and second votes never count
        power = self.powers[vote.validator]
        tally.by_validator[vote.validator] = vote
        tally.power_for[vote.block_hash] = tally.power_for.get(vote.block_hash, 0) + power
        tally.power_any += power
        self._note_sender(vote.round, vote.validator)
        if self.decided is None:
            self._evaluate(effects)
        return effects

    def on_timeout(self, height: int, round_: int, step: Step) -> list[Effect]:
        effects: list[Effect] = []
        if height != self.height or round_ != self.round or self.decided is not None:
            return effects
        if step == Step.PROPOSE and self.step == Step.PROPOSE:
            self._vote(VoteType.PREVOTE, NIL, effects)
            self.step = Step.PREVOTE
        elif step == Step.PREVOTE and self.step == Step.PREVOTE:
            self._vote(VoteType.PRECOMMIT, NIL, effects)
            self.step = Step.PRECOMMIT
        elif step == Step.PRECOMMIT:
            self._start_round(self.round + 1, effects)
        else:
            return effects
        self._evaluate(effects)
        return effects

    # ---- internals ------------------------------------------------------------------
    def _note_sender(self, round_: int, validator: int) -> None:
        self._senders.setdefault(round_, {})[validator] = self.powers[validator]

    def _vote(self, vote_type: VoteType, block_hash: bytes, effects: list[Effect]) -> None:
        if self.my_index is not None:
            effects.append(BroadcastVote(Vote(self.height, self.round, vote_type, block_hash,
                                              self.my_index)))

    def _schedule(self, step: Step, effects: list[Effect]) -> None:
        effects.append(ScheduleTimeout(self.height, self.round, step,
                                       self.timeouts.delay(step, self.round)))

    def _start_round(self, round_: int, effects: list[Effect]) -> None:
        self.round = round_
        self.step = Step.PROPOSE
        if self.my_index is not None and self.proposer_of(self.height, round_) == self.my_index:
            if self.valid_hash is not None:
                proposal = Proposal(self.height, round_, self.valid_hash, self.valid_round,
                                    self.valid_block, self.my_index)
                self.proposals[round_] = proposal
                self._note_sender(round_, self.my_index)
                effects.append(BroadcastProposal(proposal))
            else:
                effects.append(RequestProposal(self.height, round_))
        # Also scheduled for the proposer: if building its block fails, it moves on.
        self._schedule(Step.PROPOSE, effects)

    def _evaluate(self, effects: list[Effect]) -> None:
        """Apply the upon-rules until none fires."""
        while self.decided is None and self._fire_one(effects):
            pass

    def _fire_one(self, effects: list[Effect]) -> bool:  # noqa: C901 - one rule per branch
        r = self.round
        # Commit: a proposal and > 2/3 precommits for it, in any round.
        for rr, proposal in self.proposals.items():
            tally = self.votes.get((rr, VoteType.PRECOMMIT))
            if (tally is not None and self._two_thirds(tally.power_for.get(
                    proposal.block_hash, 0)) and self.is_valid(proposal.block)):
                precommits = [v for v in tally.by_validator.values()
                              if v.block_hash == proposal.block_hash]
                self.decided = Decide(self.height, rr, proposal.block_hash, proposal.block,
                                      precommits)
                self.step = Step.COMMIT
                effects.append(self.decided)
                return False
        # Round skip: more than 1/3 of the power is already in a later round.
        later = [rr for rr, senders in self._senders.items()
                 if rr > r and self._one_third(sum(senders.values()))]
        if later:
            self._start_round(max(later), effects)
            return True
        proposal = self.proposals.get(r)
        prevotes = self._tally(r, VoteType.PREVOTE)
        if self.step == Step.PROPOSE and proposal is not None:
            vr = proposal.pol_round
            if vr == -1:
                ok = self.is_valid(proposal.block) and (
                    self.locked_round == -1 or self.locked_hash == proposal.block_hash)
                self._vote(VoteType.PREVOTE, proposal.block_hash if ok else NIL, effects)
                self.step = Step.PREVOTE
                return True
            pol = self.votes.get((vr, VoteType.PREVOTE))
            if pol is not None and self._two_thirds(pol.power_for.get(proposal.block_hash, 0)):
                ok = self.is_valid(proposal.block) and (
                    self.locked_round <= vr or self.locked_hash == proposal.block_hash)
                self._vote(VoteType.PREVOTE, proposal.block_hash if ok else NIL, effects)
                self.step = Step.PREVOTE
                return True
        if (self.step == Step.PREVOTE and r not in self._prevote_timeout_set
                and self._two_thirds(prevotes.power_any)):
            self._prevote_timeout_set.add(r)
            self._schedule(Step.PREVOTE, effects)
            return True
        if (self.step >= Step.PREVOTE and proposal is not None and r not in self._polka_seen
                and self._two_thirds(prevotes.power_for.get(proposal.block_hash, 0))
                and self.is_valid(proposal.block)):
            self._polka_seen.add(r)
            if self.step == Step.PREVOTE:
                self.locked_round, self.locked_hash = r, proposal.block_hash
                self._vote(VoteType.PRECOMMIT, proposal.block_hash, effects)
                self.step = Step.PRECOMMIT
            self.valid_round, self.valid_hash = r, proposal.block_hash
            self.valid_block = proposal.block
            return True
        if self.step == Step.PREVOTE and self._two_thirds(prevotes.power_for.get(NIL, 0)):
            self._vote(VoteType.PRECOMMIT, NIL, effects)
            self.step = Step.PRECOMMIT
            return True
        precommits = self._tally(r, VoteType.PRECOMMIT)
        if r not in self._precommit_timeout_set and self._two_thirds(precommits.power_any):
            self._precommit_timeout_set.add(r)
            self._schedule(Step.PRECOMMIT, effects)
            return True
        return False
