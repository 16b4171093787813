"""The EVM on a real network: raw Ethereum txs through the validators' mempools and
consensus; every validator executes them and keeps the contract in its LMDB store."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import ray

from zg_actors import runtime
from zg_actors.chain.client import SyncChainClient
from zg_actors.chain.tx import decode_tx

from ..evm_contract import INIT, RUNTIME, Wallet, store_call
from .test_chain import handles_of, wait_height

pytestmark = pytest.mark.integration


def query_all(validators: list, method: str, *args: object) -> list:
    """Each validator's answer; one that Ray is still restarting is asked again."""
    def ask(validator: object) -> object:
        deadline = time.time() + 60
        while True:
            try:
                return ray.get(validator.query.remote("evm", method, args), timeout=10)
            except (ray.exceptions.ActorUnavailableError, ray.exceptions.GetTimeoutError):
                if time.time() > deadline:
                    raise
                time.sleep(0.5)

    return [ask(validator) for validator in validators]


def deploy_and_store(deployment, value: int) -> tuple[int, dict, SyncChainClient, Wallet,
                                                     bytes]:
    """A new 4-validator network on which a wallet deployed the contract (raw txs through
    the validators' mempools) and stored `value` in it: (network, validators by identity,
    client, wallet, contract address)."""
    d, config = deployment
    net = ray.get(d.manager.launch_network.remote(4))["network_id"]
    members = handles_of(d, net)
    wait_height(list(members.values()), 1)
    chain = SyncChainClient(net)
    wallet = Wallet(0, config.networks.evm.chain_id(net), config.devnet.key_seed)
    create = wallet.sign(data=INIT, gas=200_000)
    assert chain.submit([create]) == [None]
    chain.wait_nonce(wallet.address, 0, 60)
    contract = chain.query("evm", "receipt", decode_tx(create).hash)["contract_address"]
    assert len(contract) == 20
    assert chain.submit([wallet.sign(to=contract, data=store_call(value))]) == [None]
    chain.wait_nonce(wallet.address, 1, 60)
    return net, members, chain, wallet, contract


def test_a_deployed_contract_survives_validator_and_network_restarts(deployment) -> None:
    _, validators_by_identity, chain, wallet, contract = deploy_and_store(deployment, 77)
    validators = list(validators_by_identity.values())
    height = max(wait_height(validators, chain.committed_height(), quorum=4))
    # Every validator executed both txs: one code, one storage value, one EVM root.
    assert query_all(validators, "code", contract) == [RUNTIME] * 4
    assert query_all(validators, "storage", contract, 0) == [77] * 4
    assert len(set(query_all(validators, "root"))) == 1

    runtime.kill_actor(validators[2], restart=True)  # reopens its LMDB store
    assert query_all([validators[2]], "storage", contract, 0) == [77]
    for victim in validators:  # the whole network at once: each resumes from its store
        runtime.kill_actor(victim, restart=True)
    wait_height(validators, height + 2, timeout=90, quorum=4)
    assert query_all(validators, "code", contract) == [RUNTIME] * 4
    assert query_all(validators, "storage", contract, 0) == [77] * 4
    chain.forget()
    assert chain.submit([wallet.sign(to=contract, data=store_call(78))]) == [None]
    chain.wait_nonce(wallet.address, 2, 60)
    assert chain.query("evm", "storage", contract, 0) == 78


def test_a_validator_that_lost_its_store_syncs_the_evm_state_from_peers(deployment) -> None:
    _, config = deployment
    net, members, _, _, contract = deploy_and_store(deployment, 5)
    validators = list(members.values())
    identity, victim = next(iter(members.items()))
    store = Path(config.data_dir) / f"network-{net}" / f"validator-{identity}"
    assert store.is_dir()
    shutil.rmtree(store)  # its disk is gone; Ray restarts it on an empty store
    runtime.kill_actor(victim, restart=True)
    root = query_all([validators[1]], "root")[0]
    assert runtime.wait_for(lambda: query_all([victim], "root")[0] == root, 90), \
        "the validator did not sync the EVM state"
    assert query_all([victim], "code", contract) == [RUNTIME]
    assert query_all([victim], "storage", contract, 0) == [5]
