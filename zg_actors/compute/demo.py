"""The compute part of `zg demo`: a provider serves a burst of signed requests and is paid.

`run_compute_demo(deployment, config, say)` expects network 0 to be running (the demo
launches it first).  It starts provider 0, funds user 0's compute account and the
provider's sub-account, sends a burst of inference requests from a few users at once,
settles them, and returns what was served and paid.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import ray

from zg_actors.compute.accounts import provider_account, user_account
from zg_actors.compute.actors import launch_providers
from zg_actors.compute.sdk import ComputeClient, tokens
from zg_actors.config import ZG, Config

DEMO_REQUESTS = 12
DEMO_USERS = 3
DEMO_PROMPTS = ("What is a blockchain?", "Name a colour of the sky.",
                "Say hello in French.", "What is two plus two?")


def run_compute_demo(deployment: Any, config: Config, say: Callable[..., None]
                     ) -> dict[str, Any]:
    """Register a provider, fund it, send a burst of requests, settle; report the figures."""
    seed = config.devnet.key_seed
    users = min(DEMO_USERS, config.compute.users)
    say("[bold]compute[/]: starting provider 0 (SmolLM2-135M on the CPU) on network 0")
    [provider] = launch_providers(config.to_dict(), str(Path(config.data_dir).resolve()), 1,
                                  config.compute.provider_num_cpus, detached=False)
    address = provider_account(seed, 0).address
    clients = [ComputeClient(user_account(seed, i)) for i in range(users)]
    for client in clients:
        client.deposit(2 * ZG)
        client.fund(address, ZG)
    say(f"  {users} users deposited 2 tokens and funded the provider with 1 token each")
    start = time.time()

    def one(i: int) -> dict:
        return clients[i % users].infer(address, DEMO_PROMPTS[i % len(DEMO_PROMPTS)],
                                        config.compute.max_tokens)

    with ThreadPoolExecutor(users) as pool:
        answers = list(pool.map(one, range(DEMO_REQUESTS)))
    served_s = time.time() - start
    say(f"  {len(answers)} requests answered in {served_s:.1f} s, every response signature "
        f"checked; e.g. {answers[0]['output'][:60]!r}")
    report = ray.get(provider.settle_now.remote(), timeout=120)
    status = ray.get(provider.status.remote())
    result = {"requests_served": len(answers),
              "prompt_tokens": sum(a["prompt_tokens"] for a in answers),
              "completion_tokens": sum(a["completion_tokens"] for a in answers),
              "fees_billed": sum(a["fee"] for a in answers),
              "fees_settled": status["paid"], "settlement_txs": status["settlement_txs"],
              "requests_settled": status["settled_requests"], "serve_seconds": served_s,
              "last_settlement": {"txs": report["txs"], "requests": report["requests"]}}
    result["tokens"] = result["prompt_tokens"] + result["completion_tokens"]
    say(f"  settled {result['requests_settled']} requests in {result['settlement_txs']} tx(s): "
        f"{tokens(result['fees_settled'])} tokens paid for {result['tokens']} tokens")
    return result
