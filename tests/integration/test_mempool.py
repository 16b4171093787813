"""The bounded txpool on a real network: one account cannot stop it, bad batches change
nothing."""

from __future__ import annotations

import shutil
import tempfile
import time

import pytest
import ray

from zg_actors import runtime
from zg_actors.chain.block import Block
from zg_actors.chain.tx import MalformedTxBatch, decode_tx, make_tx
from zg_actors.crypto.devkeys import load_account

from .conftest import integration_config

pytestmark = pytest.mark.integration

FLOODERS = 50  # accounts 0..49 send valid txs; 50 floods future nonces; 51 is honest
ATTACKER, HONEST = FLOODERS, FLOODERS + 1
BATCH = 100


def committed_txs(validator, start: int, end: int) -> set[bytes]:
    """Hashes of the txs committed at heights start..end."""
    items = ray.get(validator.get_blocks.remote(start, end - start + 1), timeout=30)
    return {tx.hash for raw, _ in items for tx in Block.decode(raw).txs}


def test_honest_txs_commit_within_3_blocks_while_one_account_floods(ray_session) -> None:
    data_dir = tempfile.mkdtemp(prefix="zg-it-mempool-")
    config = integration_config(**{"data_dir": data_dir, "networks.load_accounts": HONEST + 1,
                                   "networks.max_block_txs": 200})
    d = runtime.deploy(config, detached=False)
    try:
        net = ray.get(d.manager.launch_network.remote(4))["network_id"]
        validators = list(ray.get(d.manager.validator_handles.remote(net)).values())
        seed = config.devnet.key_seed

        def transfers(account: int, nonces: range) -> list[bytes]:
            return [make_tx(load_account(seed, account), net, n, "token", "transfer",
                            [bytes(20), 1]).encoded for n in nonces]

        # The attacker: 4,100 signed zero-fee txs, nonces 1.. (0 never comes).
        attack = transfers(ATTACKER, range(1, 4_101))
        valid = [transfers(i, range(30)) for i in range(FLOODERS)]
        honest = transfers(HONEST, range(3))

        def flood(part: int) -> list:
            """Submit the attack's and the flooders' part-th share, spread over the
            validators, without waiting."""
            end = (part + 1) * 2_050
            batches = [attack[j:min(j + BATCH, end)] for j in range(part * 2_050, end, BATCH)]
            batches += [txs[part * 15:(part + 1) * 15] for txs in valid]
            return [validators[i % 4].submit_txs.remote(batch)
                    for i, batch in enumerate(batches)]

        first = ray.get(flood(0), timeout=300)
        attack_results = [r for results in first[:21] for r in results]
        assert all(r is None for results in first[21:] for r in results), first[21:]
        admitted = sum(r is None for r in attack_results)
        assert admitted <= config.networks.txpool.account_queue, admitted
        refused = {r.split(":")[0] for r in attack_results if r is not None}
        assert refused <= {"NonceTooHigh", "AccountLimitExceeded"}, refused
        assert any("max_nonce_gap" in r for r in attack_results if r), attack_results[-1]
        assert ray.get(validators[1].submit_txs.remote(honest), timeout=60) == [None] * 3
        # Acknowledged by now: the highest height any validator committed is the start.
        start = max(ray.get([v.committed_height.remote() for v in validators], timeout=30))
        more = flood(1)  # the flood goes on while the honest txs wait
        watched = validators[0]
        assert runtime.wait_for(lambda: ray.get(watched.committed_height.remote())
                                >= start + 3, 60), "the network stopped committing"
        wanted = {decode_tx(raw).hash for raw in honest}
        assert wanted <= committed_txs(watched, start + 1, start + 3), \
            f"honest txs not committed in heights {start + 1}..{start + 3}"
        assert all(r is None for results in ray.get(more, timeout=300)[21:] for r in results)
    finally:
        runtime.teardown()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_submit_txs_refuses_a_batch_that_is_not_a_list_of_bytes(deployment) -> None:
    d, config = deployment
    net = ray.get(d.manager.launch_network.remote(4))["network_id"]
    validator = list(ray.get(d.manager.validator_handles.remote(net)).values())[0]
    good = make_tx(load_account(config.devnet.key_seed, 0), net, 0, "token", "transfer",
                   [bytes(20), 1]).encoded
    for batch, where in (([good, "0x00", good], "tx 1 of 3 is str"),
                         (good, "must be a list of tx bytes, got bytes")):
        with pytest.raises(MalformedTxBatch, match=where):
            ray.get(validator.submit_txs.remote(batch), timeout=30)
    time.sleep(0.5)
    status = ray.get(validator.status.remote(), timeout=30)
    assert status["mempool"] == 0
    assert ray.get(validator.account.remote(load_account(config.devnet.key_seed, 0).address),
                   timeout=30)["nonce"] == 0


def test_queued_txs_neither_hurry_blocks_nor_hold_up_retirement(deployment) -> None:
    """A future-nonce tx cannot go in a block: heights stay at the idle pace, and retiring
    the network does not wait for it to drain."""
    d, config = deployment
    net = ray.get(d.manager.launch_network.remote(4))["network_id"]
    validator = list(ray.get(d.manager.validator_handles.remote(net)).values())[0]
    queued = make_tx(load_account(config.devnet.key_seed, 0), net, 5, "token", "transfer",
                     [bytes(20), 1]).encoded
    assert ray.get(validator.submit_txs.remote([queued], False), timeout=30) == [None]
    status = ray.get(validator.status.remote(), timeout=30)
    assert (status["mempool"], status["mempool_pending"]) == (1, 0)
    window_s = 3.0
    start = ray.get(validator.committed_height.remote(), timeout=30)
    time.sleep(window_s)
    heights = ray.get(validator.committed_height.remote(), timeout=30) - start
    idle_pace = window_s / config.networks.empty_block_interval_s
    busy_pace = window_s / config.networks.block_interval_s
    assert heights <= idle_pace + 2 < busy_pace, (heights, idle_pace, busy_pace)
    drain_timeout_s = 30.0
    started = time.monotonic()
    ray.get(d.manager.retire_network.remote(net, drain_timeout_s), timeout=120)
    assert time.monotonic() - started < drain_timeout_s / 2
