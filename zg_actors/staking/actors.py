"""StakingActor: C0 as a detached, named Ray actor over the pure StakingLedger.

Each call runs the ledger on an overlay of the LMDB state and writes the
overlay in one synced LMDB transaction before it returns, so what a caller
sees acknowledged survives a restart; a failing call writes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import ray

from zg_actors.chain.tx import decode_tx
from zg_actors.config import ZG, Config
from zg_actors.crypto import bls
from zg_actors.metrics import StakingMetrics
from zg_actors.placement import node_data_dir
from zg_actors.staking.genesis import genesis_allocation
from zg_actors.staking.ledger import (
    BadArgument,
    BurnProof,
    DoubleSignEvidence,
    StakingLedger,
    StakingParams,
    audit,
    check_invariants,
)
from zg_actors.store import Store
from zg_actors.store.overlay import Overlay

STAKING_ACTOR_NAME = "staking"
log = logging.getLogger(__name__)
T = TypeVar("T")


class StakingService:
    """The ledger plus its LMDB store; no Ray, so tests can drive it directly."""

    def __init__(self, config: Config, data_dir: str | Path) -> None:
        self.config = config
        self.store = Store(Path(data_dir) / "staking", ["state"], config.lmdb_map_mb)
        self.params = StakingParams(config.staking.unbonding_ticks,
                                    config.staking.slash_fraction_bps,
                                    config.staking.min_stake_zg * ZG)
        if self.store.get("state", b"tick") is None:
            self._run(lambda ledger: ledger.genesis(*genesis_allocation(config)))

    def _run(self, action: Callable[[StakingLedger], T]) -> T:
        overlay = Overlay(lambda key: self.store.get("state", key))
        result = action(StakingLedger(overlay, self.params))
        if len(overlay):
            self.store.write([("state", key, value) for key, value in overlay.writes()])
        return result

    def read(self, action: Callable[[StakingLedger], T]) -> T:
        return action(StakingLedger(Overlay(lambda key: self.store.get("state", key)),
                                    self.params))

    def audit(self) -> dict[str, Any]:
        report = self.read(lambda ledger: ledger.supply_report())
        recount = audit(self.store.items("state"))
        problems = check_invariants(report)
        for name, total in (("balances", "total_balances"), ("stakes", "total_staked"),
                            ("pending", "total_pending")):
            if recount[name] != report[total]:
                problems.append(f"recounted {name} {recount[name]} != running total "
                                f"{report[total]}")
        return {**report, "recount": recount, "invariants_ok": not problems,
                "problems": problems}


@ray.remote(max_restarts=-1, max_task_retries=0)
class StakingActor:
    """C0: the shared staking contract (see staking/ledger.py)."""

    def __init__(self, config_dict: dict, data_dir: str) -> None:
        self._started_at = time.time()
        from zg_actors.config import config_from_dict

        config = config_from_dict(config_dict)
        bls.use(config.crypto.bls_backend)
        self.service = StakingService(config, node_data_dir(data_dir, config.data_dir_per_node))
        self.metrics = StakingMetrics()
        self._ticker: asyncio.Task | None = None
        self._publish()

    def _publish(self) -> None:
        self.metrics.supply(self.service.read(lambda ledger: ledger.total_supply()))

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.service.config.staking.tick_interval_s)
            self.service._run(lambda ledger: ledger.advance_tick())

    def _ensure_ticking(self) -> None:
        # Started lazily from the first call: an async actor's loop runs only then.
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())

    async def process(self) -> dict:
        """Which process serves C0 and since when (changes when Ray restarts the actor)."""
        return {"pid": os.getpid(), "started_at": self._started_at}

    async def ping(self) -> int:
        self._ensure_ticking()
        return self.service.read(lambda ledger: ledger.tick)

    async def submit_tx(self, tx_bytes: bytes) -> dict:
        """A user's signed C0 tx (transfer, approve, stake, unstake, register_validator...)."""
        self._ensure_ticking()
        tx = decode_tx(tx_bytes)
        receipt = self.service._run(lambda ledger: ledger.apply_tx(tx))
        self._publish()
        return {"tx_hash": "0x" + receipt.tx_hash.hex(), "ok": receipt.ok,
                "result": receipt.result}

    async def submit_evidence(self, evidence: DoubleSignEvidence) -> dict:
        self._ensure_ticking()
        result = self.service._run(lambda ledger: ledger.submit_evidence(evidence))
        self.metrics.slashing()
        self._publish()
        log.warning("slashed validator 0x%s by %d for double signing on network %d",
                    evidence.validator.hex(), result["slashed"], evidence.network_id)
        return result

    async def bridge_mint(self, proof: BurnProof) -> dict:
        self._ensure_ticking()
        result = self.service._run(lambda ledger: ledger.bridge_mint(proof))
        self.metrics.bridge_mint()
        self._publish()
        return result

    async def register_network(self, network_id: int, members: list[bytes]) -> tuple[int, bytes]:
        """Returns (tick, encoded validator set) of the new network's genesis set."""
        self._ensure_ticking()
        vset = self.service._run(lambda ledger: ledger.register_network(network_id, members))
        return self.service.read(lambda ledger: ledger.tick), vset.encode()

    async def retire_network(self, network_id: int) -> None:
        self.service._run(lambda ledger: ledger.retire_network(network_id))

    async def validator_set_at(self, network_id: int, tick: int) -> bytes:
        return self.service.read(lambda ledger: ledger.validator_set_at(network_id, tick)
                                 ).encode()

    async def final_tick(self) -> int:
        """Latest tick whose validator sets can no longer change."""
        self._ensure_ticking()
        return self.service.read(lambda ledger: ledger.tick) - 1

    async def networks(self) -> dict[int, dict]:
        return self.service.read(lambda ledger: ledger.networks())

    async def validators(self) -> list[dict]:
        return [{"address": v.address, "stake": v.stake, "jailed": v.jailed,
                 "slashed": v.slashed, "bls_pubkey": v.bls_pubkey}
                for v in self.service.read(lambda ledger: ledger.validators())]

    async def balance_of(self, address: bytes) -> int:
        return self.service.read(lambda ledger: ledger.balance_of(address))

    async def nonce_of(self, address: bytes) -> int:
        return self.service.read(lambda ledger: ledger.nonce_of(address))

    async def pending_withdrawals(self, address: bytes) -> list[tuple[int, int]]:
        return self.service.read(lambda ledger: ledger.pending_withdrawals(address))

    async def supply_report(self) -> dict[str, Any]:
        return self.service.audit()

    # ---- DA signers and epochs (docs/spec/da.md) ----------------------------------------
    async def da_signers(self) -> list[dict]:
        return [{"address": r.address, "stake": r.stake, "jailed": r.jailed,
                 "bls_pubkey": r.bls_pubkey}
                for r in self.service.read(lambda ledger: ledger.da_signers())]

    async def da_epochs(self) -> int:
        return self.service.read(lambda ledger: ledger.da_epochs())

    async def da_open_epoch(self, header: bytes, certificate: bytes) -> int:
        """Open the next DA epoch seeded by a certified block of the first network."""
        self._ensure_ticking()
        da = self.service.config.da
        return self.service._run(lambda ledger: ledger.da_open_epoch(
            header, certificate, da.tokens_per_vote_zg * ZG, da.max_votes))

    async def da_submit_ticket(self, epoch: int, address: bytes, signature: bytes) -> None:
        self.service._run(lambda ledger: ledger.da_submit_ticket(epoch, address, signature))

    async def da_epoch_registry(self, epoch: int) -> bytes:
        return self.service.read(lambda ledger: ledger.da_epoch_registry(epoch)).encode()

    async def da_seal_epoch(self, epoch: int) -> bytes:
        """Seal the epoch's registry at C0 (see StakingLedger.da_seal_epoch); returns the
        attested posting for the networks' `da` modules."""
        self._ensure_ticking()
        from zg_actors.da.params import TICKET_WINDOW_TICKS

        window = TICKET_WINDOW_TICKS
        self.service._run(lambda ledger: ledger.da_seal_epoch(epoch, window))
        return await self.da_epoch_attested(epoch)

    async def da_epoch_attested(self, epoch: int) -> list:
        """[registry, C0 attestation signature] of a sealed epoch: the `register_epoch` tx
        arguments a network's `da` module accepts (its genesis fixes the attestor)."""
        from zg_actors.da.keys import c0_attestor
        from zg_actors.da.quorum import attestation_message, encode_attested

        def read(ledger: Any) -> tuple:
            return ledger.da_sealed_hash(epoch), ledger.da_epoch_registry(epoch)

        sealed, registry = self.service.read(read)
        if sealed is None or sealed != registry.hash:
            raise BadArgument(f"DA epoch {epoch} is not sealed at C0", epoch=epoch)
        attestor = c0_attestor(self.service.config.devnet.key_seed)
        return encode_attested(registry, attestor.sign_hash(
            attestation_message(epoch, registry.hash)))

    async def da_current_epoch(self) -> int:
        """The latest sealed DA epoch (-1 when none): the one new blobs go to."""
        def latest(ledger: Any) -> int:
            for epoch in range(ledger.da_epochs() - 1, -1, -1):
                if ledger.da_sealed_hash(epoch) is not None:
                    return epoch
            return -1

        return self.service.read(latest)
