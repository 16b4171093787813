"""Deploy, find and stop 0G DA in a Ray namespace; open DA epochs.

`deploy_da` funds and registers the DA signers at C0, starts the DA nodes, opens
the first epoch if none is, then starts the dispersers (the gRPC gateway in front
of them is rpc/gateway.py's `deploy_gateway`). `open_epoch` is the one way an
epoch opens: from the driver (`deploy_da`, `advance_epoch`, through the chain
client's run_sync) and from disperser 0's rotation timer (awaited in the actor).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any

import ray

from zg_actors.chain.block import Block
from zg_actors.chain.client import ChainClient, GetActor, run_sync
from zg_actors.chain.network_manager import NETWORK_MANAGER_NAME
from zg_actors.chain.tx import make_tx
from zg_actors.config import ZG, Config
from zg_actors.crypto.devkeys import c0_account
from zg_actors.da.disperser_actor import Disperser, disperser_name
from zg_actors.da.disperser_nodes import DA_CALL_TIMEOUT_S
from zg_actors.da.keys import da_signer_identity
from zg_actors.da.node_actor import DANode, da_node_name
from zg_actors.errors import Unavailable
from zg_actors.placement import DA_NODE_RESOURCE, control_options, role_options
from zg_actors.runtime import kill_named
from zg_actors.staking.actors import STAKING_ACTOR_NAME
from zg_actors.staking.ledger import C0_NETWORK_ID

log = logging.getLogger(__name__)

# Each step of opening an epoch (finding a certified seed block; collecting the tickets
# and sealing) is given this long. C0 seals without a missing signer's ticket after
# TICKET_WINDOW_TICKS ticks, well within it.
EPOCH_STEP_TIMEOUT_S = 60.0
EPOCH_RETRY_S = 0.5  # pause between tries of a step of opening an epoch
SLOW_CALL_TIMEOUT_S = 300.0  # registering DA signers (a BLS proof each); moving dispersers


async def _open_at_c0(staking: Any, get_actor: GetActor) -> int:
    """Open the next epoch at C0, seeded by the latest certified block of the first
    network, as its validators are asked through the chain client (the first that
    answers tells its committed height and gives that block)."""
    networks = await get_actor(NETWORK_MANAGER_NAME).active_networks.remote()
    if not networks:
        raise Unavailable("DA epochs are seeded by network blocks: launch a network first")
    chain = ChainClient(min(networks), get_actor=get_actor)
    deadline = time.time() + EPOCH_STEP_TIMEOUT_S
    while True:
        try:
            height = await chain.committed_height()
            [(block_raw, cert_raw)] = await chain.call("get_blocks", height, 1)
            header = Block.decode(block_raw).header.encode()
            return await staking.da_open_epoch.remote(header, cert_raw)
        except Exception as exc:  # no new block yet, or a validator restarting
            if time.time() > deadline:
                raise Unavailable(f"could not open the next DA epoch: {exc}") from exc
        await asyncio.sleep(EPOCH_RETRY_S)


async def open_epoch(nodes: list[Any], get_actor: GetActor = ray.get_actor) -> int:
    """Open the next DA epoch (new seed, current stakes), have the DA nodes submit their
    ticket signatures, and let C0 seal the registry: at once when every signer sent its
    ticket, else after the ticket window. A node that fails to join is asked again until
    the epoch is sealed; returns the epoch. `get_actor` looks actors up by name."""
    staking = get_actor(STAKING_ACTOR_NAME)
    epoch = await _open_at_c0(staking, get_actor)
    deadline = time.time() + EPOCH_STEP_TIMEOUT_S
    pending = list(nodes)
    while True:
        joined = await asyncio.gather(*[asyncio.wait_for(node.join_epoch.remote(epoch),
                                                         DA_CALL_TIMEOUT_S)
                                        for node in pending],
                                      return_exceptions=True)
        for result in joined:
            if isinstance(result, BaseException):  # a node restarting: ask it again
                log.info("DA epoch %d: a node did not join yet: %s", epoch, str(result)[:200])
        pending = [node for node, result in zip(pending, joined, strict=True)
                   if isinstance(result, BaseException)]
        try:
            await asyncio.wait_for(staking.da_seal_epoch.remote(epoch), EPOCH_STEP_TIMEOUT_S)
            return epoch
        except Exception as exc:  # a ticket missing, inside the ticket window
            if time.time() > deadline:
                raise Unavailable(f"DA epoch {epoch} could not be sealed: {exc}") from exc
        await asyncio.sleep(EPOCH_RETRY_S)


async def next_epoch(nodes: list[Any], dispersers: list[Any]) -> int:
    """Open the next DA epoch (new seed, current stakes, new tickets and quorums) and move
    the dispersers to it: each sends new blobs there once every network it routes to
    recorded the epoch."""
    epoch = await open_epoch(nodes)
    await asyncio.wait_for(asyncio.gather(*[d.use_epoch.remote(epoch) for d in dispersers]),
                           SLOW_CALL_TIMEOUT_S)
    return epoch


def advance_epoch(nodes: list[Any], dispersers: list[Any]) -> int:
    """next_epoch, from the driver."""
    return run_sync(next_epoch(nodes, dispersers))


def _c0_tx(staking: Any, account: Any, method: str, args: list) -> None:
    nonce = ray.get(staking.nonce_of.remote(account.address))
    tx = make_tx(account, C0_NETWORK_ID, nonce, "staking", method, args)
    ray.get(staking.submit_tx.remote(tx.encoded))


def fund_da_signers(config: Config) -> list[int]:
    """Send each unregistered DA signer its stake from the devnet's C0 accounts; returns the
    indexes that still have to register."""
    staking = ray.get_actor(STAKING_ACTOR_NAME)
    seed = config.devnet.key_seed
    known = {s["address"] for s in ray.get(staking.da_signers.remote())}
    stake = config.da.node_stake_zg * ZG
    missing = []
    for i in range(config.da.nodes):
        ident = da_signer_identity(seed, i)
        if ident.address in known:
            continue
        if ray.get(staking.balance_of.remote(ident.address)) < stake:
            _c0_tx(staking, c0_account(seed, i % config.staking.genesis_accounts), "transfer",
                   [ident.address, stake])
        missing.append(i)
    return missing


def find_da(config: Config) -> dict[str, list[Any]]:
    """Handles of the running DA nodes and dispersers, by name."""
    try:
        return {"nodes": [ray.get_actor(da_node_name(i)) for i in range(config.da.nodes)],
                "dispersers": [ray.get_actor(disperser_name(i))
                               for i in range(config.da.dispersers)]}
    except ValueError as exc:
        raise Unavailable("DA is not running in this namespace: run `zg da up`") from exc


def running_dispersers(config: Config) -> list[Any]:
    """Handles of the deployment's dispersers that are running (a missing one is left
    out)."""
    found = []
    for i in range(config.da.dispersers):
        with contextlib.suppress(ValueError):
            found.append(ray.get_actor(disperser_name(i)))
    return found


def deploy_da(config: Config, detached: bool = False,
              epoch_interval_s: float | None = None) -> dict[str, Any]:
    """Register the DA signers, start DA nodes and dispersers, open an epoch if none is;
    with epoch_interval_s > 0 disperser 0 rotates epochs on that timer."""
    data_dir = str(Path(config.data_dir).resolve())
    lifetime = {"lifetime": "detached"} if detached else {}
    config_dict = config.to_dict()
    unregistered = fund_da_signers(config)
    spread = role_options(DA_NODE_RESOURCE, spread=True)
    nodes = [DANode.options(name=da_node_name(i), num_cpus=config.da.node_num_cpus,
                            get_if_exists=True, **lifetime, **spread).remote(
        config_dict, i, data_dir) for i in range(config.da.nodes)]
    # Each signer proves possession of its BLS key itself (slow in py_ecc): in parallel.
    ray.get([nodes[i].register.remote() for i in unregistered], timeout=SLOW_CALL_TIMEOUT_S)
    if ray.get(ray.get_actor(STAKING_ACTOR_NAME).da_current_epoch.remote()) < 0:
        run_sync(open_epoch(nodes))
    dispersers = [Disperser.options(name=disperser_name(i),
                                    num_cpus=config.da.disperser_num_cpus,
                                    get_if_exists=True, **lifetime,
                                    **control_options()).remote(config_dict, i, data_dir)
                  for i in range(config.da.dispersers)]
    ray.get([d.start.remote() for d in dispersers], timeout=120)
    if epoch_interval_s is not None:
        ray.get(dispersers[0].set_epoch_interval.remote(epoch_interval_s), timeout=30)
    return {"nodes": nodes, "dispersers": dispersers}


def teardown_da(config: Config) -> list[str]:
    names = [da_node_name(i) for i in range(config.da.nodes)]
    names += [disperser_name(i) for i in range(config.da.dispersers)]
    return kill_named(names)
