"""`da`: the chain module of 0G DA on every consensus network.

It records each epoch's signer registry and quorums, verifies DA certificates
and records their blob headers (CONFIRMED, then FINALIZED `finality_depth`
blocks later), takes disperser deposits, checks bad-encoding proofs (the blob
becomes FAILED, the disperser's deposit is slashed to the prover) and pays
sampling rewards.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from zg_actors import erasure
from zg_actors.chain.modules import token
from zg_actors.chain.modules.base import Context, Module, ModuleError, ModuleState
from zg_actors.config import Config
from zg_actors.crypto import bls
from zg_actors.crypto.accounts import ADDRESS_BYTES
from zg_actors.crypto.encoding import (
    Decoded,
    EncodingError,
    as_bytes,
    as_int,
    as_list,
    encode,
)
from zg_actors.crypto.keccak import keccak256
from zg_actors.crypto.merkle import proof_from_list, verify_proof
from zg_actors.da import sampling
from zg_actors.da.blob import BlobHeader, commit_slices, slice_length, verify_slice
from zg_actors.da.certificate import DACertificate, verify_da_certificate
from zg_actors.da.errors import UntrustedRegistry
from zg_actors.da.keys import c0_attestor
from zg_actors.da.params import (
    SAMPLING_EPOCH_WINDOW,
    SAMPLING_INITIAL_TARGET,
    SAMPLING_MAX_ANSWERS,
    SAMPLING_ROUND_BLOCKS,
    SECTOR_BYTES,
    SECTORS_PER_SUBLINE,
    BlobStatus,
)
from zg_actors.da.quorum import EpochRegistry, Quorum, assign_quorums, verify_attested
from zg_actors.errors import ZgError
from zg_actors.store import u64

MODULE = "da"
# Token accounts the module holds funds in (no key exists for these addresses).
ESCROW = keccak256(b"zg-da/escrow")[-ADDRESS_BYTES:]  # disperser deposits
POOL = keccak256(b"zg-da/sampling-pool")[-ADDRESS_BYTES:]  # blob fees for sampling rewards


VERIFIED_CACHE_LIMIT = 4_096  # certificates remembered per process (then forgotten)


class DAModuleError(ModuleError):
    code = "DA_MODULE_ERROR"


class UntrustedEpochRegistry(DAModuleError):
    """A posted epoch registry without C0's attestation of exactly its contents."""

    code = "UNTRUSTED_EPOCH_REGISTRY"


@dataclass(frozen=True)
class DAModuleParams:
    k: int
    n: int
    max_quorums: int
    finality_depth: int  # blocks after the certificate's block until FINALIZED
    min_deposit: int  # local token a disperser keeps deposited to submit certificates
    slash_fraction_bps: int  # of the deposit, paid to a bad-encoding prover
    blob_fee: int  # per certified blob, into the sampling pool
    sampling_base_reward: int  # minted per valid sampling answer
    c0_attestor: bytes = b""  # address of C0's DA attestation key (fixed at genesis)
    sampling_round_blocks: int = SAMPLING_ROUND_BLOCKS
    sampling_epoch_window: int = SAMPLING_EPOCH_WINDOW
    bls_backend: str = "fastest"  # of certificate checks (config da.bls_backend)


def _mint(state: ModuleState, address: bytes, amount: int) -> None:
    """Mint local token the way the token module's block reward does (its supply keys)."""
    token.credit(state, address, amount)
    state.add_int(b"supply", amount)
    state.add_int(b"minted", amount)


@dataclass
class BlobRecord:
    header: BlobHeader
    status: BlobStatus
    height: int  # block of the certificate
    batch_root: bytes
    disperser: bytes

    def encode(self) -> bytes:
        return encode([self.header.to_list(), int(self.status), self.height, self.batch_root,
                       self.disperser])

    @classmethod
    def from_obj(cls, raw: Decoded) -> BlobRecord:
        header, status, height, root, disperser = as_list(raw, 5)
        return cls(BlobHeader.from_list(header), BlobStatus(as_int(status)), as_int(height),
                   as_bytes(root), as_bytes(disperser))


class DAModule(Module):
    name = MODULE

    def __init__(self, params: DAModuleParams) -> None:
        self.params = params
        # Certificates this process verified: {hash of certificate, registry, quorum and
        # network: signed slots}. The key covers everything the check reads.
        self._checked: dict[bytes, int] = {}
        # Checks under way, by key: a validator prepares a certificate in a worker thread
        # while a proposal carrying it may reach block execution on the event loop; that
        # one waits for the running check instead of doing a second (~0.8 s with py_ecc).
        self._checking: dict[bytes, threading.Event] = {}
        self._checking_lock = threading.Lock()

    def apply(self, ctx: Context, method: str, args: tuple[Decoded, ...]) -> Decoded:
        """DA's own typed errors fail the tx (a failed receipt), never the block."""
        try:
            return super().apply(ctx, method, args)
        except ModuleError:
            raise
        except (ZgError, ValueError, IndexError) as exc:
            details = exc.details if isinstance(exc, ZgError) else {}
            raise DAModuleError(f"da.{method}: {exc}", **details) from exc

    # ---- state helpers -------------------------------------------------------------
    def genesis(self, state: ModuleState) -> None:
        state.put_int(b"target", SAMPLING_INITIAL_TARGET)
        state.put(b"seed", keccak256(b"zg-da/sampling-genesis"))
        state.put(b"c0_attestor", self.params.c0_attestor)

    def _registry(self, state: ModuleState, epoch: int) -> EpochRegistry:
        raw = state.get(b"epoch/" + u64(epoch))
        if raw is None:
            raise DAModuleError(f"epoch {epoch} is not registered on this network",
                                epoch=epoch)
        return EpochRegistry.decode(raw)

    def _quorum(self, state: ModuleState, epoch: int, quorum_id: int) -> Quorum:
        raw = state.get_obj(b"quorums/" + u64(epoch))
        quorums = as_list(raw) if raw is not None else []
        if not 0 <= quorum_id < len(quorums):
            raise DAModuleError(f"epoch {epoch} has {len(quorums)} quorums, no quorum "
                                f"{quorum_id}", epoch=epoch, quorum_id=quorum_id)
        return Quorum(quorum_id, tuple(as_int(h) for h in as_list(quorums[quorum_id])))

    def _blob(self, state: ModuleState, key: bytes) -> BlobRecord:
        raw = state.get_obj(b"blob/" + key)
        if raw is None:
            raise DAModuleError(f"unknown blob 0x{key.hex()}", blob=key)
        return BlobRecord.from_obj(raw)

    def _put_blob(self, state: ModuleState, record: BlobRecord) -> None:
        state.put(b"blob/" + record.header.key, record.encode())

    # ---- blocks --------------------------------------------------------------------
    def begin_block(self, ctx: Context) -> None:
        state = ctx.state(MODULE)
        state.put_int(b"height", ctx.block.height)
        if ctx.block.height % self.params.sampling_round_blocks == 0:
            seed = sampling.next_round_seed(state.get(b"seed") or b"", ctx.block.network_id,
                                            ctx.block.height, ctx.block.time_ms,
                                            ctx.block.proposer)
            state.put(b"seed", seed)
            state.add_int(b"round", 1)
            if state.get_int(b"round") > 1:
                state.put_int(b"target", sampling.adjust_target(state.get_int(b"target"),
                                                                state.get_int(b"answers")))
            state.put_int(b"answers", 0)

    # ---- epochs ----------------------------------------------------------------------
    def tx_register_epoch(self, ctx: Context, registry_raw: Decoded,
                          attestation: Decoded) -> Decoded:
        """Post an epoch's signer registry as C0 sealed it. It must carry C0's signature of
        its hash (keys, votes, seed, tickets) by the attestation key fixed at this network's
        genesis, so only C0's registry is accepted (anyone may relay it); its quorums follow
        from the verified tickets, so a forged ticket signature fails the tx too."""
        registry = EpochRegistry.decode(as_bytes(registry_raw))
        state = ctx.state(MODULE)
        attestor = state.get(b"c0_attestor") or self.params.c0_attestor
        try:
            verify_attested(registry, as_bytes(attestation), attestor)
        except UntrustedRegistry as exc:
            raise UntrustedEpochRegistry(f"da.register_epoch: {exc}", **exc.details) from exc
        if state.get(b"epoch/" + u64(registry.epoch)) is not None:
            raise DAModuleError(f"epoch {registry.epoch} is already registered",
                                epoch=registry.epoch)
        quorums = assign_quorums(registry, self.params.n, self.params.max_quorums)
        state.put(b"epoch/" + u64(registry.epoch), registry.encode())
        state.put_obj(b"quorums/" + u64(registry.epoch), [list(q.holders) for q in quorums])
        if registry.epoch >= state.get_int(b"latest_epoch"):
            state.put_int(b"latest_epoch", registry.epoch)
        ctx.emit(MODULE, "Epoch", registry.epoch, len(quorums))
        return encode(len(quorums))

    # ---- deposits and certificates -----------------------------------------------------
    def tx_deposit(self, ctx: Context, amount: Decoded) -> Decoded:
        value = as_int(amount)
        state = ctx.state(token.MODULE)
        token.debit(state, ctx.sender, value)
        token.credit(state, ESCROW, value)
        ctx.state(MODULE).add_int(b"deposit/" + ctx.sender, value)
        return b""

    def tx_certify(self, ctx: Context, certificate: Decoded) -> Decoded:
        """Record the blobs of a verified certificate as CONFIRMED."""
        state = ctx.state(MODULE)
        deposit = state.get_int(b"deposit/" + ctx.sender)
        if deposit < self.params.min_deposit:
            raise DAModuleError(f"disperser 0x{ctx.sender.hex()} has deposited {deposit}, "
                                f"needs {self.params.min_deposit}", deposit=deposit,
                                needed=self.params.min_deposit)
        cert = DACertificate.decode(as_bytes(certificate))
        batch = cert.batch
        slots = self._verified(state, cert, ctx.block.network_id)
        for header in batch.blobs:
            if state.get(b"blob/" + header.key) is not None:
                raise DAModuleError(f"blob 0x{header.key.hex()} is already certified",
                                    blob=header.key)
        fees = self.params.blob_fee * len(batch.blobs)
        if fees:
            token_state = ctx.state(token.MODULE)
            token.debit(token_state, ctx.sender, fees)
            token.credit(token_state, POOL, fees)
        for header in batch.blobs:
            self._put_blob(state, BlobRecord(header, BlobStatus.CONFIRMED, ctx.block.height,
                                             batch.root, ctx.sender))
        state.add_int(b"certified_blobs", len(batch.blobs))
        state.add_int(b"certificates", 1)
        ctx.emit(MODULE, "Certified", batch.root, len(batch.blobs), slots)
        return encode([batch.root, slots])

    def _verified(self, state: ModuleState, cert: DACertificate, network_id: int) -> int:
        """verify_da_certificate against the epoch's registry and quorum in `state`; a
        certificate this process already verified against the same registry and quorum
        (at mempool entry: prepare) is not checked twice."""
        batch = cert.batch
        registry = self._registry(state, batch.epoch)
        quorum = self._quorum(state, batch.epoch, batch.quorum_id)
        key = keccak256(cert.encode() + keccak256(registry.encode())
                        + encode([network_id, list(quorum.holders)]))
        while True:
            with self._checking_lock:
                if key in self._checked:
                    return self._checked[key]
                running = self._checking.get(key)
                if running is None:
                    self._checking[key] = threading.Event()
                    break
            running.wait()  # then cached, or that check failed and this caller checks
        try:
            with bls.using(self.params.bls_backend):  # the DA backend, not the consensus one
                slots = verify_da_certificate(cert, registry, quorum, network_id)
            with self._checking_lock:
                if len(self._checked) >= VERIFIED_CACHE_LIMIT:
                    self._checked.clear()
                self._checked[key] = slots
            return slots
        finally:
            with self._checking_lock:
                self._checking.pop(key).set()

    def prepare(self, state: ModuleState, method: str, args: tuple[Decoded, ...]) -> None:
        """A certificate entering the mempool is checked then, off the consensus path."""
        if method == "certify" and len(args) == 1:
            cert = DACertificate.decode(as_bytes(args[0]))
            self._verified(state, cert, cert.batch.network_id)

    # ---- bad encoding ------------------------------------------------------------------
    def tx_prove_bad_encoding(self, ctx: Context, blob_key: Decoded,
                              slices: Decoded) -> Decoded:
        """k slices that verify against the data root but re-encode to another data root
        prove the disperser committed to something that is not a codeword."""
        state = ctx.state(MODULE)
        record = self._blob(state, as_bytes(blob_key))
        if record.status == BlobStatus.FAILED:
            raise DAModuleError("blob already FAILED", blob=record.header.key)
        k, n = self.params.k, self.params.n
        length = slice_length(record.header.size, k)
        given: dict[int, np.ndarray] = {}
        for item in as_list(slices):
            index_raw, data_raw, proof_raw = as_list(item, 3)
            index, data = as_int(index_raw), as_bytes(data_raw)
            if len(data) != length or index in given or index >= n:
                raise DAModuleError(f"slice {index}: expected one {length}-byte slice per "
                                    f"index < {n}", index=index, length=len(data))
            verify_slice(record.header.data_root, index, data, proof_from_list(proof_raw), n)
            given[index] = np.frombuffer(data, dtype=np.uint8)
        if len(given) < k:
            raise DAModuleError(f"a bad-encoding proof needs {k} slices, got {len(given)}",
                                have=len(given), need=k)
        chosen = dict(sorted(given.items())[:k])
        data = erasure.recover_data(chosen, k, n - k)
        recommitted = commit_slices(erasure.encode_data(data, n - k), k, record.header.size)
        if recommitted.data_root == record.header.data_root:
            raise DAModuleError("the slices re-encode to the committed data root: the "
                                "encoding is valid", blob=record.header.key)
        record.status = BlobStatus.FAILED
        self._put_blob(state, record)
        deposit = state.get_int(b"deposit/" + record.disperser)
        slashed = deposit * self.params.slash_fraction_bps // 10_000
        state.put_int(b"deposit/" + record.disperser, deposit - slashed)
        token_state = ctx.state(token.MODULE)
        token.debit(token_state, ESCROW, slashed)
        token.credit(token_state, ctx.sender, slashed)
        state.add_int(b"failed_blobs", 1)
        ctx.emit(MODULE, "BadEncoding", record.header.key, record.disperser, slashed)
        return encode(slashed)

    # ---- sampling ------------------------------------------------------------------------
    def tx_sample(self, ctx: Context, blob_key: Decoded, line: Decoded, subline: Decoded,
                  sectors: Decoded, sector_proofs: Decoded, slice_proof: Decoded) -> Decoded:
        """A slot holder proves it stores subline `subline` of line `line` of a blob and
        that it is a valid answer this round; it earns a pool share plus a base reward."""
        state = ctx.state(MODULE)
        record = self._blob(state, as_bytes(blob_key))
        header = record.header
        line_i, subline_i = as_int(line), as_int(subline)
        if record.status not in (BlobStatus.CONFIRMED, BlobStatus.FINALIZED):
            raise DAModuleError(f"blob is {record.status.name}: not sampled", blob=header.key)
        if header.epoch + self.params.sampling_epoch_window < state.get_int(b"latest_epoch"):
            raise DAModuleError(f"blob epoch {header.epoch} is outside the sampling window",
                                epoch=header.epoch)
        if state.get_int(b"answers") >= SAMPLING_MAX_ANSWERS:
            raise DAModuleError("this round already has the maximum number of answers",
                                maximum=SAMPLING_MAX_ANSWERS)
        registry = self._registry(state, header.epoch)
        quorum = self._quorum(state, header.epoch, header.quorum_id)
        if not 0 <= line_i < len(quorum.holders):
            raise DAModuleError(f"line {line_i} out of range", line=line_i)
        holder = registry.signers[quorum.holders[line_i]].address
        if holder != ctx.sender:
            raise DAModuleError(f"slot {line_i} is held by 0x{holder.hex()}, not the sender",
                                holder=holder)
        round_id = state.get_int(b"round")
        answered = b"answered/" + encode([round_id, header.key, line_i, subline_i])
        if state.get(answered) is not None:
            raise DAModuleError("this subline was already answered this round",
                                line=line_i, subline=subline_i)
        data = self._check_subline(header, line_i, subline_i, sectors, sector_proofs,
                                   slice_proof)
        quality = sampling.answer_quality(state.get(b"seed") or b"", header.epoch,
                                          header.quorum_id, header.data_root, line_i,
                                          subline_i, data)
        target = state.get_int(b"target")
        if not sampling.is_valid_answer(quality, target):
            raise DAModuleError("answer quality is above the target", quality=quality,
                                target=target)
        token_state = ctx.state(token.MODULE)
        share = token.balance_of(token_state, POOL) // SAMPLING_MAX_ANSWERS
        token.debit(token_state, POOL, share)
        token.credit(token_state, ctx.sender, share)
        _mint(token_state, ctx.sender, self.params.sampling_base_reward)
        state.put(answered, b"\x01")
        state.add_int(b"answers", 1)
        ctx.emit(MODULE, "Sampled", header.key, line_i, subline_i, ctx.sender)
        return encode(share + self.params.sampling_base_reward)

    def _check_subline(self, header: BlobHeader, line: int, subline: int, sectors: Decoded,
                       sector_proofs: Decoded, slice_proof: Decoded) -> bytes:
        """The subline's sectors prove into the slice root, and that into the data root."""
        slice_proof_obj = proof_from_list(slice_proof)
        root = slice_proof_obj.leaf
        verify_proof(slice_proof_obj, header.data_root, root, line, self.params.n)
        count = slice_length(header.size, self.params.k) // SECTOR_BYTES
        first = subline * SECTORS_PER_SUBLINE
        expected = min(SECTORS_PER_SUBLINE, count - first)
        pieces = [as_bytes(s, SECTOR_BYTES) for s in as_list(sectors)]
        proofs = as_list(sector_proofs)
        if expected < 1 or len(pieces) != expected or len(proofs) != expected:
            raise DAModuleError(f"subline {subline} has {max(expected, 0)} sectors, got "
                                f"{len(pieces)}", subline=subline)
        for offset, (piece, proof) in enumerate(zip(pieces, proofs, strict=True)):
            verify_proof(proof_from_list(proof), root, keccak256(piece), first + offset, count)
        return b"".join(pieces)

    # ---- queries -------------------------------------------------------------------------
    def query_blob(self, state: ModuleState, key: bytes) -> dict:
        """Status of a blob; CONFIRMED turns FINALIZED finality_depth blocks later."""
        try:
            record = self._blob(state, key)
        except (DAModuleError, EncodingError):
            return {"status": int(BlobStatus.UNKNOWN)}
        status = record.status
        if status == BlobStatus.CONFIRMED and (
                state.get_int(b"height") - record.height >= self.params.finality_depth):
            status = BlobStatus.FINALIZED
        h = record.header
        return {"status": int(status), "height": record.height, "batch_root": record.batch_root,
                "disperser": record.disperser, "data_root": h.data_root, "size": h.size,
                "epoch": h.epoch, "quorum_id": h.quorum_id, "network_id": h.network_id}

    def query_epoch(self, state: ModuleState, epoch: int) -> bytes | None:
        return state.get(b"epoch/" + u64(epoch))

    def query_quorums(self, state: ModuleState, epoch: int) -> list[list[int]]:
        raw = state.get_obj(b"quorums/" + u64(epoch))
        return [[as_int(h) for h in as_list(q)] for q in as_list(raw)] if raw else []

    def query_registry_hash(self, state: ModuleState, epoch: int) -> bytes | None:
        raw = state.get(b"epoch/" + u64(epoch))
        return keccak256(raw) if raw is not None else None

    def query_deposit(self, state: ModuleState, address: bytes) -> int:
        return state.get_int(b"deposit/" + address)

    def query_sampling(self, state: ModuleState) -> dict:
        """The current round: what a slot holder needs to look for valid answers."""
        return {"round": state.get_int(b"round"), "seed": state.get(b"seed") or b"",
                "target": state.get_int(b"target"), "answers": state.get_int(b"answers"),
                "latest_epoch": state.get_int(b"latest_epoch")}

    def query_stats(self, state: ModuleState) -> dict[str, int]:
        return {key: state.get_int(key.encode()) for key in
                ("height", "latest_epoch", "certificates", "certified_blobs", "failed_blobs",
                 "round", "answers", "target")}


def da_module_params(config: Config) -> DAModuleParams:
    da = config.da
    return DAModuleParams(da.k, da.n, da.max_quorums, da.finality_depth, da.disperser_deposit,
                          da.slash_fraction_bps, da.blob_fee, da.sampling_base_reward,
                          c0_attestor(config.devnet.key_seed).address,
                          bls_backend=da.bls_backend)
