"""The compute network on a real local Ray cluster: register, fund, infer, settle;
a provider killed mid-load; every request paid exactly once; the signed fee cap holds
against a provider that overcharges."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import ray

from zg_actors import runtime
from zg_actors.compute.accounts import provider_account, user_account
from zg_actors.compute.actors import launch_providers, provider_name
from zg_actors.compute.errors import (
    ComputeInsufficientBalance,
    FeeAboveCap,
    InvalidMaxTokens,
    ProviderDown,
    StaleNonce,
    UnknownProvider,
)
from zg_actors.compute.request import Receipt, Request, fee_for, sign_request
from zg_actors.compute.sdk import ComputeClient
from zg_actors.compute.settlement import Settlement, Trace
from zg_actors.config import ZG, Config
from zg_actors.crypto.encoding import encode
from zg_actors.crypto.keccak import keccak256

from .misbehaving import OverchargingProvider

pytestmark = pytest.mark.integration

PROMPT = "What is a blockchain?"
MAX_TOKENS = 8


def launch_network0(deployment) -> tuple[Config, dict]:
    """Network 0, and the config of a provider that settles only when asked."""
    d, config = deployment
    assert runtime.call(d.manager.launch_network.remote(4), 120)["network_id"] == 0
    return config, config.replace(**{"compute.settle_threshold": 10**30}).to_dict()


@pytest.fixture
def network0(deployment) -> Iterator[tuple[Config, object, bytes]]:
    """Network 0 and provider 0; the provider settles only when asked (huge threshold)."""
    config, provider_config = launch_network0(deployment)
    [handle] = launch_providers(provider_config, config.data_dir, 1, 0.25, False)
    yield config, handle, provider_account(config.devnet.key_seed, 0).address
    ray.kill(handle, no_restart=True)  # its name must be free for the next deployment


@pytest.fixture
def overcharging0(deployment) -> Iterator[tuple[Config, object, bytes]]:
    """Network 0 and provider 0 as an OverchargingProvider (settles only when asked)."""
    config, provider_config = launch_network0(deployment)
    handle = OverchargingProvider.options(name=provider_name(0), num_cpus=0.25).remote(
        provider_config, 0, config.data_dir)
    ray.get(handle.start.remote(), timeout=120)
    yield config, handle, provider_account(config.devnet.key_seed, 0).address
    ray.kill(handle, no_restart=True)


def client(config: Config, index: int, retry_s: float = 20.0) -> ComputeClient:
    return ComputeClient(user_account(config.devnet.key_seed, index), provider_retry_s=retry_s)


def test_register_fund_infer_settle_and_clear_errors(network0) -> None:
    config, provider, address = network0
    alice, bob = client(config, 0), client(config, 1)
    [service] = alice.services()
    assert (service["provider"], service["model"]) == (address, "SmolLM2-135M-Instruct.Q4_1")
    alice.deposit(2 * ZG)
    alice.fund(address, ZG)
    answers = [alice.infer(address, PROMPT, MAX_TOKENS) for _ in range(2)]
    for answer in answers:
        assert answer["output"] and answer["signature_ok"]
        assert 0 < answer["completion_tokens"] <= MAX_TOKENS
        assert answer["fee"] == fee_for(answer["prompt_tokens"], answer["completion_tokens"],
                                        service["input_price"], service["output_price"])
    assert answers[0]["output"] == answers[1]["output"]  # greedy decoding is deterministic

    # Errors are typed, say what to do, and charge nothing.
    with pytest.raises(UnknownProvider, match="no service is registered"):
        alice.infer(bytes(20), PROMPT)
    bob.deposit(ZG)
    bob.fund(address, 10**12)  # far less than one request can cost
    with pytest.raises(ComputeInsufficientBalance, match="transfer at least"):
        bob.infer(address, PROMPT, MAX_TOKENS)
    resent = sign_request(alice.account, 0, address, answers[0]["nonce"], PROMPT,
                          answers[0]["max_fee"], MAX_TOKENS)
    same = runtime.call(provider.infer.remote(encode(resent.request.to_list()),
                                              resent.signature, PROMPT))
    assert same == answers[0]["receipt"]  # the identical request: the same receipt, no charge
    stale = sign_request(alice.account, 0, address, answers[0]["nonce"], "another prompt",
                         answers[0]["max_fee"], MAX_TOKENS)
    with pytest.raises(StaleNonce, match="replayed or stale"):
        runtime.call(provider.infer.remote(encode(stale.request.to_list()), stale.signature,
                                           "another prompt"))
    assert ray.get(provider.status.remote())["unsettled_requests"] == 2

    before = alice.chain.wallet(address)["balance"]
    report = ray.get(provider.settle_now.remote(), timeout=60)
    assert (report["txs"], report["requests"]) == (1, 2)
    assert report["paid"] == sum(a["fee"] for a in answers)
    assert alice.chain.wallet(address)["balance"] == before + report["paid"]
    sub = alice.account_state()["sub_accounts"][0]
    assert sub["balance"] == ZG - report["paid"] and sub["nonce"] == answers[1]["nonce"]
    bob_sub = bob.account_state()["sub_accounts"][0]
    assert bob_sub["balance"] == 10**12  # the refused request cost nothing
    assert any("usable for new requests" in line for line in alice.account_state()
               ["explanation"])


def test_killed_provider_recovers_receipts_and_each_request_is_paid_once(network0) -> None:
    config, provider, address = network0
    alice = client(config, 0)
    alice.deposit(2 * ZG)
    alice.fund(address, ZG)
    served = [alice.infer(address, PROMPT, MAX_TOKENS) for _ in range(3)]
    # Kill it while a request is in flight: the client re-sends the same signed request
    # to the restarted actor, which answers it once.
    in_flight: list[dict] = []
    worker = threading.Thread(target=lambda: in_flight.append(
        alice.infer(address, "Name a colour of the sky.", MAX_TOKENS)))
    worker.start()
    runtime.kill_actor(provider, restart=True)
    worker.join(timeout=60)
    served += in_flight
    assert len(served) == 4
    status = ray.get(provider.status.remote(), timeout=60)
    assert status["recovered_receipts"] >= 3  # signed receipts came back from LMDB
    receipts = [Receipt.decode(r) for r in ray.get(provider.unsettled_receipts.remote())]
    assert sorted(r.request.nonce for r in receipts) == sorted(a["nonce"] for a in served)

    before = alice.chain.wallet(address)["balance"]
    report = ray.get(provider.settle_now.remote(), timeout=60)
    assert report["requests"] == 4 and report["paid"] == sum(a["fee"] for a in served)
    assert alice.chain.wallet(address)["balance"] == before + report["paid"]

    # Replaying the settled traces pays nothing: INVALID_NONCE.
    account = provider_account(config.devnet.key_seed, 0)
    replay = [Settlement(alice.account.address, tuple(
        Trace.of(r) for r in sorted(receipts, key=lambda r: r.request.nonce))).to_list()]
    tx_hash = alice.chain.submit(account, "settle", [replay])
    [result] = alice.chain.query("settlement", tx_hash)
    assert (result["status"], result["paid"]) == ("INVALID_NONCE", 0)
    assert alice.chain.wallet(address)["balance"] == before + report["paid"]
    assert ray.get(provider.settle_now.remote(), timeout=60)["requests"] == 0

    # A provider that stays down: a clear error and no charge.
    runtime.kill_actor(provider, restart=False)
    impatient = client(config, 0, retry_s=1.0)
    with pytest.raises(ProviderDown, match="not charged"):
        impatient.infer(address, PROMPT, MAX_TOKENS)
    sub = alice.account_state()["sub_accounts"][0]
    assert sub["balance"] == ZG - report["paid"]


def test_the_signed_fee_cap_holds_and_a_bad_trace_voids_no_valid_one(overcharging0) -> None:
    config, provider, address = overcharging0
    alice = client(config, 0)
    alice.deposit(2 * ZG)
    alice.fund(address, ZG)
    # max_tokens 0 (once: generate until the context window) is refused at request time,
    # by the client and by a provider sent such a request: nothing is served or owed.
    with pytest.raises(InvalidMaxTokens, match="at least 1, got 0"):
        alice.infer(address, "hi", 0)
    unbounded = Request(0, alice.account.address, address, alice.next_nonce(), ZG,
                        keccak256(b"hi"), 0)
    with pytest.raises(InvalidMaxTokens, match="at least 1, got 0"):
        runtime.call(provider.infer.remote(encode(unbounded.to_list()),
                                           alice.account.sign_hash(unbounded.hash), "hi"))
    assert ray.get(provider.status.remote())["unsettled_requests"] == 0

    # A provider that signs a bill above the cap: the client's receipt check rejects it.
    valid = [alice.infer(address, PROMPT, MAX_TOKENS)]
    ray.get(provider.overcharge_next.remote())
    with pytest.raises(FeeAboveCap, match="above the max fee") as over:
        alice.infer(address, "hi", MAX_TOKENS)
    valid += [alice.infer(address, PROMPT, MAX_TOKENS) for _ in range(2)]
    assert ray.get(provider.status.remote())["unsettled_requests"] == 4

    # Settlement refuses that one trace and pays the user's 3 valid requests.
    before = alice.chain.wallet(address)["balance"]
    report = ray.get(provider.settle_now.remote(), timeout=60)
    [result] = report["results"]
    assert result["status"] == "SUCCESS"
    assert result["rejected"] == [{"nonce": over.value.details["nonce"],
                                   "status": "INVALID_SIGNATURE"}]
    assert (report["requests"], report["paid"]) == (3, sum(a["fee"] for a in valid))
    assert alice.chain.wallet(address)["balance"] == before + report["paid"]
    sub = alice.account_state()["sub_accounts"][0]
    assert (sub["balance"], sub["nonce"]) == (ZG - report["paid"], valid[-1]["nonce"])
    status = ray.get(provider.status.remote())
    assert (status["unsettled_requests"], status["rejected_traces"]) == (0, 1)
