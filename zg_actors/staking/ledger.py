"""C0, the shared staking contract: ZG token, stakes, validators, slashing, bridge mint.

Pure: state is a key-value store reached through an Overlay; the staking
actor persists the overlay's write-set after each successful call.  Signed
user txs (token and stake operations) and self-authenticating calls (slashing
evidence, burn proofs: anyone may submit them, the payload proves itself)
change state; the network manager registers and retires networks.

Invariants (tests check them): total supply = genesis + minted - burned, and
the sum of balances + stakes + pending withdrawals = total supply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from zg_actors.chain.block import (
    PRECOMMIT,
    PREVOTE,
    CommitCertificate,
    Header,
    verify_certificate,
    vote_sign_bytes,
)
from zg_actors.chain.modules.base import ArgDecoder, Receipt, check_arity
from zg_actors.chain.tx import Transaction, check_nonce, check_transaction, decode_tx
from zg_actors.chain.validator_set import ValidatorInfo, ValidatorSet
from zg_actors.crypto import bls
from zg_actors.crypto.encoding import (
    Decoded,
    EncodingError,
    as_bytes,
    as_int,
    as_list,
    decode,
    encode,
)
from zg_actors.crypto.keccak import keccak256
from zg_actors.crypto.merkle import proof_from_list, verify_proof
from zg_actors.da.quorum import EpochRegistry, EpochSigner, epoch_message, get_votes
from zg_actors.errors import InsufficientBalance, InvalidInput, InvalidProof, NotFound, ZgError
from zg_actors.store.overlay import Overlay

C0_NETWORK_ID = 10_000  # consensus networks are numbered below this
POWER_UNIT = 10**18  # one vote per whole ZG staked
MAX_TX_BYTES = 65_536


class StakingError(ZgError):
    code = "STAKING_ERROR"


class UnknownNetwork(StakingError, NotFound):
    code = "UNKNOWN_NETWORK"


class NotAValidator(StakingError, NotFound):
    code = "NOT_A_VALIDATOR"


class StakingInsufficientBalance(StakingError, InsufficientBalance):
    code = "STAKING_INSUFFICIENT_BALANCE"


class InvalidEvidence(StakingError, InvalidProof):
    code = "INVALID_EVIDENCE"


class InvalidBurnProof(StakingError, InvalidProof):
    code = "INVALID_BURN_PROOF"


class AlreadyProcessed(StakingError, InvalidInput):
    code = "ALREADY_PROCESSED"


class BadArgument(StakingError, InvalidInput):
    code = "STAKING_BAD_ARGUMENT"


_args = ArgDecoder(BadArgument)


@dataclass(frozen=True)
class StakingParams:
    unbonding_ticks: int
    slash_fraction_bps: int
    min_stake: int


@dataclass(frozen=True)
class DoubleSignEvidence:
    """Two votes by one validator for the same (network, height, round, step)."""

    network_id: int
    height: int
    round: int
    step: int
    validator: bytes  # account address
    block_hash_a: bytes
    signature_a: bytes
    block_hash_b: bytes
    signature_b: bytes

    def encode(self) -> bytes:
        return encode([self.network_id, self.height, self.round, self.step, self.validator,
                       self.block_hash_a, self.signature_a, self.block_hash_b,
                       self.signature_b])

    @property
    def id(self) -> bytes:
        """Same id whichever vote comes first, so the pair slashes once."""
        a, b = sorted([(self.block_hash_a, self.signature_a),
                       (self.block_hash_b, self.signature_b)])
        return keccak256(encode([self.network_id, self.height, self.round, self.step,
                                 self.validator, a[0], b[0]]))


@dataclass(frozen=True)
class BurnProof:
    """A burn on network i: committed header, its certificate, the burn tx and its
    successful receipt, each with a Merkle proof into the header."""

    header: bytes
    certificate: bytes
    tx: bytes
    tx_index: int
    tx_count: int
    tx_proof: list
    receipt: bytes
    receipt_proof: list  # receipt index is tx_index + 1 (receipt 0 is the block's own)


# state keys
def _bal(a: bytes) -> bytes:
    return b"bal/" + a


def _allow(owner: bytes, spender: bytes) -> bytes:
    return b"allow/" + owner + spender


def _val(a: bytes) -> bytes:
    return b"val/" + a


def _pending(a: bytes) -> bytes:
    return b"pending/" + a


def _nonce(a: bytes) -> bytes:
    return b"nonce/" + a


def _net(n: int) -> bytes:
    return b"net/" + n.to_bytes(4, "big")


def _vhist(n: int) -> bytes:
    return b"vhist/" + n.to_bytes(4, "big")


def _vset(h: bytes) -> bytes:
    return b"vset/" + h


def u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


@dataclass
class ValidatorRecord:
    address: bytes
    bls_pubkey: bytes
    stake: int
    jailed: bool
    slashed: int

    def encode(self) -> bytes:
        return encode([self.bls_pubkey, self.stake, self.jailed, self.slashed])

    @classmethod
    def decode(cls, address: bytes, raw: bytes) -> ValidatorRecord:
        pk, stake, jailed, slashed = as_list(decode(raw), 4)
        return cls(address, as_bytes(pk), as_int(stake), as_int(jailed) == 1, as_int(slashed))


class StakingLedger:
    """C0's state machine over `kv` (an Overlay; see module docstring)."""

    def __init__(self, kv: Overlay, params: StakingParams) -> None:
        self.kv = kv
        self.params = params

    # ---- plain values ----------------------------------------------------
    def _int(self, key: bytes) -> int:
        raw = self.kv.get(key)
        return as_int(decode(raw)) if raw else 0

    def _set_int(self, key: bytes, value: int) -> None:
        self.kv.put(key, encode(value))

    def _add(self, key: bytes, delta: int) -> int:
        value = self._int(key) + delta
        self._set_int(key, value)
        return value

    @property
    def tick(self) -> int:
        return self._int(b"tick")

    # ---- genesis and ticks -----------------------------------------------
    def genesis(self, balances: dict[bytes, int],
                validators: Iterable[tuple[bytes, bytes, int]]) -> None:
        """Initial balances and (address, bls_pubkey, stake) validators; PoP is not
        needed at genesis because the operator generated the keys."""
        total = 0
        for address, amount in sorted(balances.items()):
            self._add(_bal(address), amount)
            total += amount
        for address, pubkey, stake in validators:
            self._put_validator(ValidatorRecord(address, pubkey, stake, False, 0))
            self._add(b"total_staked", stake)
            total += stake
        self._set_int(b"total_balances", sum(balances.values()))
        self._set_int(b"genesis_supply", total)
        self._set_int(b"supply", total)
        self._set_int(b"tick", 1)

    def advance_tick(self) -> int:
        """C0's clock: one tick per C0 block. Unbonding is measured in ticks."""
        return self._add(b"tick", 1)

    # ---- accounts ------------------------------------------------------------
    def balance_of(self, address: bytes) -> int:
        return self._int(_bal(address))

    def allowance(self, owner: bytes, spender: bytes) -> int:
        return self._int(_allow(owner, spender))

    def total_supply(self) -> int:
        return self._int(b"supply")

    def nonce_of(self, address: bytes) -> int:
        return self._int(_nonce(address))

    def _debit(self, address: bytes, amount: int) -> None:
        balance = self.balance_of(address)
        if balance < amount:
            raise StakingInsufficientBalance(
                f"0x{address.hex()} has {balance} ZG base units, needs {amount} "
                f"(short by {amount - balance})", address=address, balance=balance,
                needed=amount)
        self._set_int(_bal(address), balance - amount)
        self._add(b"total_balances", -amount)

    def _credit(self, address: bytes, amount: int) -> None:
        self._add(_bal(address), amount)
        self._add(b"total_balances", amount)

    # ---- validators ----------------------------------------------------------
    def validator(self, address: bytes) -> ValidatorRecord:
        raw = self.kv.get(_val(address))
        if raw is None:
            raise NotAValidator(f"0x{address.hex()} is not a registered validator",
                                address=address)
        return ValidatorRecord.decode(address, raw)

    def validators(self) -> list[ValidatorRecord]:
        raw = self.kv.get(b"validators")
        addresses = [as_bytes(a) for a in as_list(decode(raw))] if raw else []
        return [self.validator(a) for a in addresses]

    def _put_validator(self, record: ValidatorRecord) -> None:
        if self.kv.get(_val(record.address)) is None:
            raw = self.kv.get(b"validators")
            addresses = [as_bytes(a) for a in as_list(decode(raw))] if raw else []
            self.kv.put(b"validators", encode(sorted([*addresses, record.address])))
        self.kv.put(_val(record.address), record.encode())

    def pending_withdrawals(self, address: bytes) -> list[tuple[int, int]]:
        raw = self.kv.get(_pending(address))
        return [(as_int(a), as_int(t)) for a, t in (as_list(p, 2) for p in
                                                    as_list(decode(raw)))] if raw else []

    # ---- signed user txs -----------------------------------------------------
    def apply_tx(self, tx: Transaction) -> Receipt:
        """Check and apply a user's signed C0 tx; errors change nothing (caller drops kv)."""
        check_transaction(tx, C0_NETWORK_ID, MAX_TX_BYTES)
        check_nonce(tx, self.nonce_of(tx.sender))
        handler: Callable | None = getattr(self, f"_tx_{tx.method}", None)
        if tx.module != "staking" or handler is None:
            raise BadArgument(f"C0 has no method {tx.module}.{tx.method}", module=tx.module,
                              method=tx.method)
        self._set_int(_nonce(tx.sender), tx.nonce + 1)
        check_arity(handler, tx.args, BadArgument, f"staking.{tx.method}")
        result = handler(tx.sender, *tx.args)
        self.advance_tick()
        return Receipt(tx.hash, True, 0, (), "", result if result is not None else b"")

    def _tx_transfer(self, sender: bytes, to: Decoded, amount: Decoded) -> None:
        recipient, value = _args.address(to, "to"), _args.uint(amount, "amount")
        self._debit(sender, value)
        self._credit(recipient, value)

    def _tx_approve(self, sender: bytes, spender: Decoded, amount: Decoded) -> None:
        grantee = _args.address(spender, "spender")
        self._set_int(_allow(sender, grantee), _args.uint(amount, "amount"))

    def _tx_transfer_from(self, sender: bytes, owner: Decoded, to: Decoded,
                          amount: Decoded) -> None:
        source, recipient = _args.address(owner, "owner"), _args.address(to, "to")
        value = _args.uint(amount, "amount")
        allowed = self.allowance(source, sender)
        if allowed < value:
            raise StakingInsufficientBalance(
                f"allowance of 0x{sender.hex()} from 0x{source.hex()} is {allowed}, "
                f"needs {value}", allowance=allowed, needed=value)
        self._debit(source, value)
        self._set_int(_allow(source, sender), allowed - value)
        self._credit(recipient, value)

    def _tx_burn(self, sender: bytes, amount: Decoded) -> None:
        value = _args.uint(amount, "amount")
        self._debit(sender, value)
        self._add(b"supply", -value)
        self._add(b"burned", value)

    def _bls_stake(self, sender: bytes, bls_pubkey: Decoded, pop: Decoded,
                   amount: Decoded) -> tuple[bytes, int]:
        """Checks shared by validator and DA-signer registration, then takes the stake."""
        pubkey = as_bytes(bls_pubkey)
        if not bls.pop_verify(pubkey, as_bytes(pop)):
            raise InvalidProof("BLS proof of possession does not verify", pubkey=pubkey)
        value = _args.uint(amount, "amount")
        if value < self.params.min_stake:
            raise BadArgument(f"stake {value} below the minimum {self.params.min_stake}",
                              amount=value, minimum=self.params.min_stake)
        self._debit(sender, value)
        return pubkey, value

    def _tx_register_validator(self, sender: bytes, bls_pubkey: Decoded, pop: Decoded,
                               amount: Decoded) -> None:
        """A validator's BLS key must come with a proof of possession: without it, a
        rogue key could forge aggregate signatures of others."""
        if self.kv.get(_val(sender)) is not None:
            raise BadArgument(f"0x{sender.hex()} is already a validator", address=sender)
        pubkey, value = self._bls_stake(sender, bls_pubkey, pop, amount)
        self._put_validator(ValidatorRecord(sender, pubkey, value, False, 0))
        self._add(b"total_staked", value)

    def _tx_stake(self, sender: bytes, amount: Decoded) -> None:
        value = _args.uint(amount, "amount")
        record = self.validator(sender)
        self._debit(sender, value)
        record.stake += value
        self._put_validator(record)
        self._add(b"total_staked", value)
        self._refresh_sets_of(sender)

    def _tx_unstake(self, sender: bytes, amount: Decoded) -> None:
        """Stake leaves voting power now but is withdrawable only after unbonding, so a
        validator cannot escape a slash for what it signed while staked."""
        value = _args.uint(amount, "amount")
        record = self.validator(sender)
        if value == 0 or value > record.stake:
            raise StakingInsufficientBalance(f"cannot unstake {value}: stake is {record.stake}",
                                             stake=record.stake, needed=value)
        record.stake -= value
        self._put_validator(record)
        self._add(b"total_staked", -value)
        pending = self.pending_withdrawals(sender)
        pending.append((value, self.tick + self.params.unbonding_ticks))
        self.kv.put(_pending(sender), encode([[a, t] for a, t in pending]))
        self._add(b"total_pending", value)
        self._refresh_sets_of(sender)

    def _tx_withdraw(self, sender: bytes) -> int:
        pending = self.pending_withdrawals(sender)
        ready = sum(a for a, t in pending if t <= self.tick)
        if ready == 0:
            raise BadArgument("nothing to withdraw yet", pending=len(pending),
                              tick=self.tick)
        self.kv.put(_pending(sender), encode([[a, t] for a, t in pending if t > self.tick]))
        self._add(b"total_pending", -ready)
        self._credit(sender, ready)
        return ready

    # ---- DA signers and epochs (docs/spec/da.md) -------------------------------------
    # DA signers stake like validators (same record, under dasig/) but sign DA batches,
    # not blocks.  An epoch snapshots them with a seed from a certified block of the
    # first network; each signer then submits its BLS signature of (epoch, seed), from
    # which its quorum tickets derive (zg_actors.da.quorum).
    def da_signer(self, address: bytes) -> ValidatorRecord:
        raw = self.kv.get(b"dasig/" + address)
        if raw is None:
            raise NotAValidator(f"0x{address.hex()} is not a registered DA signer",
                                address=address)
        return ValidatorRecord.decode(address, raw)

    def da_signers(self) -> list[ValidatorRecord]:
        raw = self.kv.get(b"dasigners")
        return [self.da_signer(as_bytes(a)) for a in as_list(decode(raw))] if raw else []

    def _tx_register_da_signer(self, sender: bytes, bls_pubkey: Decoded, pop: Decoded,
                               amount: Decoded) -> None:
        """As register_validator: the proof of possession keeps rogue keys out of the
        aggregate signatures of DA certificates."""
        if self.kv.get(b"dasig/" + sender) is not None:
            raise BadArgument(f"0x{sender.hex()} is already a DA signer", address=sender)
        pubkey, value = self._bls_stake(sender, bls_pubkey, pop, amount)
        raw = self.kv.get(b"dasigners")
        addresses = [as_bytes(a) for a in as_list(decode(raw))] if raw else []
        self.kv.put(b"dasigners", encode(sorted([*addresses, sender])))
        self.kv.put(b"dasig/" + sender, ValidatorRecord(sender, pubkey, value, False, 0).encode())
        self._add(b"total_staked", value)

    def da_epochs(self) -> int:
        return self._int(b"da/epochs")

    def da_open_epoch(self, header_raw: bytes, certificate_raw: bytes, tokens_per_vote: int,
                      max_votes: int) -> int:
        """Open the next DA epoch, seeded by a certified block of the first network (the
        certificate makes the seed one no single party chose)."""
        try:
            header = Header.decode(header_raw)
            cert = CommitCertificate.decode(certificate_raw)
        except (InvalidInput, InvalidProof, EncodingError) as exc:
            raise InvalidProof(f"malformed epoch seed block: {exc}") from exc
        seed_network = min(self.networks(), default=None)
        if header.network_id != seed_network:
            raise BadArgument(f"epoch seeds come from network {seed_network}, got a block of "
                              f"network {header.network_id}", network_id=header.network_id)
        verify_certificate(cert, self.set_by_hash(header.validator_set_hash),
                           header.network_id, header.height, header.hash)
        epoch = self.da_epochs()
        if epoch > 0:
            previous = as_list(decode(self.kv.get(b"daepoch/" + u32(epoch - 1))), 4)
            if header.height <= as_int(previous[1]):
                raise BadArgument(f"seed block height {header.height} is not above the "
                                  f"previous epoch's {as_int(previous[1])}",
                                  height=header.height)
        signers = [[r.address, r.bls_pubkey, get_votes(r.stake, tokens_per_vote, max_votes)]
                   for r in self.da_signers() if not r.jailed]
        self.kv.put(b"daepoch/" + u32(epoch), encode([header.hash, header.height, self.tick,
                                                       [s for s in signers if s[2] > 0]]))
        self._set_int(b"da/epochs", epoch + 1)
        return epoch

    def da_submit_ticket(self, epoch: int, address: bytes, signature: bytes) -> None:
        """A signer's BLS signature of (epoch, seed); self-authenticating, anyone may relay."""
        registry = self.da_epoch_registry(epoch)
        pubkey = registry.signers[registry.index_of(address)].bls_pubkey
        if not bls.verify(pubkey, epoch_message(epoch, registry.seed), signature):
            raise InvalidProof(f"epoch {epoch} signature of 0x{address.hex()} does not verify",
                               address=address, epoch=epoch)
        if self.kv.get(b"daseal/" + u32(epoch)) is not None:
            raise BadArgument(f"DA epoch {epoch} is sealed: no more tickets", epoch=epoch)
        self.kv.put(b"daticket/" + u32(epoch) + address, signature)

    def da_seal_epoch(self, epoch: int, ticket_window_ticks: int) -> bytes:
        """Commit C0 to the epoch's registry (signers, BLS keys, votes, seed, tickets): its
        hash goes into C0's state and no ticket is taken afterwards. Allowed once every
        signer submitted its ticket, or `ticket_window_ticks` ticks after the epoch opened
        (so no one can seal early to shut signers out). Returns the registry hash;
        idempotent."""
        sealed = self.kv.get(b"daseal/" + u32(epoch))
        if sealed is not None:
            return sealed
        registry = self.da_epoch_registry(epoch)
        opened_tick = as_int(as_list(decode(self.kv.get(b"daepoch/" + u32(epoch))), 4)[2])
        missing = sum(1 for s in registry.signers if not s.signature)
        if missing and self.tick < opened_tick + ticket_window_ticks:
            raise BadArgument(f"DA epoch {epoch}: {missing} signers have no ticket yet and the "
                              f"ticket window ends at tick {opened_tick + ticket_window_ticks}",
                              epoch=epoch, missing=missing, tick=self.tick)
        self.kv.put(b"daseal/" + u32(epoch), registry.hash)
        return registry.hash

    def da_sealed_hash(self, epoch: int) -> bytes | None:
        """C0's commitment to the epoch's registry, once sealed."""
        return self.kv.get(b"daseal/" + u32(epoch))

    def da_epoch_registry(self, epoch: int) -> EpochRegistry:
        """The epoch's signers with the ticket signatures submitted so far."""
        raw = self.kv.get(b"daepoch/" + u32(epoch)) if epoch >= 0 else None
        if raw is None:
            raise BadArgument(f"DA epoch {epoch} is not open ({self.da_epochs()} opened)",
                              epoch=epoch)
        seed, _, _, signers = as_list(decode(raw), 4)
        out = []
        for item in as_list(signers):
            address, pubkey, votes = (as_bytes(x) for x in as_list(item, 3))
            signature = self.kv.get(b"daticket/" + u32(epoch) + address) or b""
            out.append(EpochSigner(address, pubkey, as_int(votes), signature))
        return EpochRegistry(epoch, as_bytes(seed), tuple(out))

    # ---- networks and validator sets -------------------------------------------
    def networks(self) -> dict[int, dict]:
        raw = self.kv.get(b"networks")
        ids = [as_int(i) for i in as_list(decode(raw))] if raw else []
        return {i: self.network(i) for i in ids}

    def network(self, network_id: int) -> dict:
        raw = self.kv.get(_net(network_id))
        if raw is None:
            raise UnknownNetwork(f"unknown network id {network_id}", network_id=network_id)
        status, members, created = as_list(decode(raw), 3)
        return {"network_id": network_id, "status": status.decode(),
                "members": [as_bytes(m) for m in as_list(members)],
                "created_tick": as_int(created)}

    def register_network(self, network_id: int, members: list[bytes]) -> ValidatorSet:
        if not 0 <= network_id < C0_NETWORK_ID:
            raise BadArgument(f"network id {network_id} out of range 0..{C0_NETWORK_ID - 1}",
                              network_id=network_id)
        if self.kv.get(_net(network_id)) is not None:
            raise BadArgument(f"network {network_id} already exists", network_id=network_id)
        for member in members:
            self.validator(member)
        raw = self.kv.get(b"networks")
        ids = [as_int(i) for i in as_list(decode(raw))] if raw else []
        self.kv.put(b"networks", encode(sorted([*ids, network_id])))
        self.kv.put(_net(network_id), encode(["active", sorted(members), self.tick]))
        vset = self._current_set(network_id)
        self._record_set(network_id, vset)
        return vset

    def retire_network(self, network_id: int) -> None:
        info = self.network(network_id)
        self.kv.put(_net(network_id), encode(["retired", info["members"],
                                              info["created_tick"]]))

    def _current_set(self, network_id: int) -> ValidatorSet:
        members = self.network(network_id)["members"]
        infos = []
        for address in members:
            record = self.validator(address)
            power = record.stake // POWER_UNIT
            if not record.jailed and power > 0:
                infos.append(ValidatorInfo(address, record.bls_pubkey, power))
        if not infos:
            raise StakingError(f"network {network_id} has no active validator left",
                               network_id=network_id)
        return ValidatorSet.from_list(infos)

    def _record_set(self, network_id: int, vset: ValidatorSet) -> None:
        history = self.set_history(network_id)
        if history and history[-1][1] == vset.hash:
            return
        self.kv.put(_vset(vset.hash), vset.encode())
        history.append((self.tick, vset.hash))
        self.kv.put(_vhist(network_id), encode([[t, h] for t, h in history]))

    def _refresh_sets_of(self, address: bytes) -> None:
        for network_id, info in self.networks().items():
            if address in info["members"] and info["status"] == "active":
                try:
                    self._record_set(network_id, self._current_set(network_id))
                except StakingError:
                    continue  # no one left: the network keeps its last set and halts

    def set_history(self, network_id: int) -> list[tuple[int, bytes]]:
        raw = self.kv.get(_vhist(network_id))
        return [(as_int(t), as_bytes(h)) for t, h in
                (as_list(x, 2) for x in as_list(decode(raw)))] if raw else []

    def validator_set_at(self, network_id: int, tick: int) -> ValidatorSet:
        """The set in force for network at C0 tick `tick` (only final ticks: < current)."""
        self.network(network_id)
        if tick >= self.tick:
            raise BadArgument(f"tick {tick} is not final yet (current tick {self.tick})",
                              tick=tick)
        chosen = None
        for change_tick, set_hash in self.set_history(network_id):
            if change_tick <= tick:
                chosen = set_hash
        if chosen is None:
            raise BadArgument(f"network {network_id} had no validator set at tick {tick}",
                              tick=tick)
        return self.set_by_hash(chosen)

    def set_by_hash(self, set_hash: bytes) -> ValidatorSet:
        raw = self.kv.get(_vset(set_hash))
        if raw is None:
            raise InvalidProof(f"unknown validator set 0x{set_hash.hex()}", set_hash=set_hash)
        return ValidatorSet.decode(raw)

    # ---- slashing --------------------------------------------------------------
    def submit_evidence(self, evidence: DoubleSignEvidence) -> dict:
        """Slash and jail a validator that signed two different votes for one step."""
        if evidence.step not in (PREVOTE, PRECOMMIT):
            raise InvalidEvidence(f"step {evidence.step} is not a vote step",
                                  step=evidence.step)
        if evidence.block_hash_a == evidence.block_hash_b:
            raise InvalidEvidence("both votes are for the same block: no equivocation",
                                  block_hash=evidence.block_hash_a)
        if self.kv.get(b"evidence/" + evidence.id) is not None:
            raise AlreadyProcessed("this double-sign evidence was already used",
                                   evidence=evidence.id)
        try:
            record = self.validator(evidence.validator)
        except NotAValidator as exc:
            raise InvalidEvidence(str(exc), validator=evidence.validator) from exc
        for block_hash, signature in ((evidence.block_hash_a, evidence.signature_a),
                                      (evidence.block_hash_b, evidence.signature_b)):
            message = vote_sign_bytes(evidence.network_id, evidence.height, evidence.round,
                                      evidence.step, block_hash)
            if not bls.verify(record.bls_pubkey, message, signature):
                raise InvalidEvidence(
                    f"vote for 0x{block_hash.hex()} is not signed by 0x"
                    f"{evidence.validator.hex()}", validator=evidence.validator,
                    block_hash=block_hash)
        slashed = record.stake * self.params.slash_fraction_bps // 10_000
        record.stake -= slashed
        record.slashed += slashed
        record.jailed = True
        self._put_validator(record)
        self._add(b"total_staked", -slashed)
        self._add(b"supply", -slashed)
        self._add(b"burned", slashed)
        self._add(b"slashings", 1)
        self.kv.put(b"evidence/" + evidence.id, b"\x01")
        self._refresh_sets_of(evidence.validator)
        self.advance_tick()
        return {"validator": evidence.validator, "slashed": slashed, "jailed": True}

    # ---- bridge ----------------------------------------------------------------
    def bridge_mint(self, proof: BurnProof) -> dict:
        """Mint on C0 what a committed burn destroyed on network i, exactly once."""
        try:
            header = Header.decode(proof.header)
            cert = CommitCertificate.decode(proof.certificate)
            tx = decode_tx(proof.tx)
            receipt_fields = as_list(decode(proof.receipt), 6)
        except (InvalidInput, InvalidProof, EncodingError) as exc:
            raise InvalidBurnProof(f"malformed burn proof: {exc}") from exc
        self.network(header.network_id)
        if self.kv.get(b"minted/" + tx.hash) is not None:
            raise AlreadyProcessed(f"burn 0x{tx.hash.hex()} was already minted", burn=tx.hash)
        vset = self.set_by_hash(header.validator_set_hash)
        verify_certificate(cert, vset, header.network_id, header.height, header.hash)
        verify_proof(proof_from_list(proof.tx_proof), header.tx_root, tx.hash, proof.tx_index,
                     proof.tx_count)
        verify_proof(proof_from_list(proof.receipt_proof), header.receipt_root,
                     keccak256(proof.receipt), proof.tx_index + 1, proof.tx_count + 1)
        if tx.network_id != header.network_id or (tx.module, tx.method) != ("token", "burn"):
            raise InvalidBurnProof(f"tx is {tx.module}.{tx.method} on network "
                                   f"{tx.network_id}, not a token burn there", tx=tx.hash)
        if as_bytes(receipt_fields[0]) != tx.hash or as_int(receipt_fields[1]) != 1:
            raise InvalidBurnProof("the burn's receipt is not a success for this tx",
                                   tx=tx.hash)
        amount = _args.uint(tx.args[0], "amount")
        recipient = _args.address(tx.args[1], "c0_recipient")
        self._credit(recipient, amount)
        self._add(b"supply", amount)
        self._add(b"minted", amount)
        self._add(b"bridge_mints", 1)
        self.kv.put(b"minted/" + tx.hash, encode([header.network_id, header.height, amount]))
        self.advance_tick()
        return {"burn": tx.hash, "network_id": header.network_id, "recipient": recipient,
                "amount": amount}

    # ---- reports ------------------------------------------------------------------
    def supply_report(self) -> dict[str, int]:
        return {key: self._int(key.encode()) for key in
                ("supply", "genesis_supply", "minted", "burned", "total_balances",
                 "total_staked", "total_pending", "bridge_mints", "slashings", "tick")}


def check_invariants(report: dict[str, int]) -> list[str]:
    """The ledger's two accounting identities; returns what is violated."""
    problems = []
    if report["supply"] != report["genesis_supply"] + report["minted"] - report["burned"]:
        problems.append("total supply != genesis + minted - burned")
    held = report["total_balances"] + report["total_staked"] + report["total_pending"]
    if held != report["supply"]:
        problems.append(f"balances + stakes + pending ({held}) != supply ({report['supply']})")
    return problems


def audit(items: Iterable[tuple[bytes, bytes]]) -> dict[str, int]:
    """Recount balances, stakes and pending withdrawals from raw state, independent of
    the running totals the ledger keeps."""
    balances = stakes = pending = 0
    for key, value in items:
        if key.startswith(b"bal/"):
            balances += as_int(decode(value))
        elif key.startswith(b"val/"):
            stakes += ValidatorRecord.decode(key[4:], value).stake
        elif key.startswith(b"dasig/"):
            stakes += ValidatorRecord.decode(key[6:], value).stake
        elif key.startswith(b"pending/"):
            pending += sum(as_int(as_list(p, 2)[0]) for p in as_list(decode(value)))
    return {"balances": balances, "stakes": stakes, "pending": pending}
