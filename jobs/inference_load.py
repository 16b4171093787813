"""Users with funded compute ledgers sending inference requests to the providers.

    ray job submit --working-dir . -- python jobs/inference_load.py --users 4 --duration 60

Each of --users devnet users deposits into its compute account and funds a sub-account
at every running provider, then sends signed requests one after another, spread over
the providers, for --duration seconds (each answer's provider signature and bill are
checked by the SDK). Then every provider settles what it served. Reports requests/s,
tokens/s, latency p50/p99, fees billed and settled (with settlement txs), and errors.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from zg_actors.workload import Progress, Tally, finish, job_parser, session, summarize

PROMPTS = ("What is a blockchain?", "Name a colour of the sky.", "Say hello in French.",
           "What is two plus two?", "Write one word about the sea.")
SETTLE_TIMEOUT_S = 300.0


def parse_args(argv: list[str] | None = None) -> Any:
    parser = job_parser(__doc__)
    parser.add_argument("--users", type=int, default=2,
                        help="users sending requests at once (2; at most compute.users)")
    parser.add_argument("--duration", type=float, default=30.0,
                        help="seconds of requests (30)")
    parser.add_argument("--max-tokens", type=int, default=None,
                        help="completion tokens per request (default compute.max_tokens)")
    parser.add_argument("--fund", type=float, default=1.0,
                        help="tokens each user puts in each provider's sub-account (1)")
    return parser.parse_args(argv)


def live_providers() -> list[dict]:
    """The registered services whose provider actor runs in this namespace."""
    import ray

    from zg_actors.compute.sdk import ServingChain

    running = set(ray.util.list_named_actors())
    return [s for s in ServingChain().query("services") if s["endpoint"] in running]


def fund_users(clients: list[Any], providers: list[bytes], fund: int,
               progress: Progress) -> None:
    """Each user deposits enough and funds a sub-account at every provider."""
    from zg_actors.config import ZG

    for client in clients:
        client.deposit(fund * len(providers) + ZG)
        for provider in providers:
            client.fund(provider, fund)
    progress.say(f"{len(clients)} users funded {len(providers)} provider(s) with "
                 f"{fund / ZG:g} tokens each")


def run_inference(clients: list[Any], providers: list[dict], duration_s: float,
                  max_tokens: int, progress: Progress) -> dict[str, Any]:
    """Each client (a funded ComputeClient) sends requests for duration_s, then every
    provider settles; the report."""
    import ray

    addresses = [p["provider"] for p in providers]
    handles = [ray.get_actor(p["endpoint"]) for p in providers]
    before = ray.get([h.status.remote() for h in handles])
    tally = Tally()
    start = time.monotonic()

    def user_loop(user: int) -> None:
        turn = user
        while time.monotonic() - start < duration_s:
            provider = addresses[turn % len(addresses)]
            began = time.monotonic()
            try:
                answer = clients[user].infer(provider, PROMPTS[turn % len(PROMPTS)],
                                             max_tokens)
            except Exception as exc:  # counted; the user sends its next request
                tally.error(exc)
                time.sleep(0.5)
                continue
            finally:
                turn += 1
            tally.ok(time.monotonic() - began)
            tally.count(prompt=answer["prompt_tokens"], completion=answer["completion_tokens"],
                        fees=answer["fee"])
            progress.tick(lambda: f"{tally.ops} requests answered, {tally.error_count} errors")

    with ThreadPoolExecutor(len(clients), thread_name_prefix="zg-inference") as pool:
        list(pool.map(user_loop, range(len(clients))))
    served_s = time.monotonic() - start
    progress.say(f"{tally.ops} requests answered in {served_s:.1f} s; the providers settle")
    ray.get([h.settle_now.remote() for h in handles], timeout=SETTLE_TIMEOUT_S)
    after = ray.get([h.status.remote() for h in handles])
    requests = summarize(tally, served_s, "requests")
    span = max(served_s, 1e-9)
    tokens = {"prompt": 0, "completion": 0, "fees": 0, **tally.counts}
    return {"job": "inference_load", "users": len(clients), "providers": len(providers),
            "requests": requests,
            "tokens_per_s": (tokens["prompt"] + tokens["completion"]) / span,
            "completion_tokens_per_s": tokens["completion"] / span,
            "prompt_tokens": tokens["prompt"], "completion_tokens": tokens["completion"],
            "fees_billed": tokens["fees"],
            "fees_settled": sum(a["paid"] - b["paid"] for a, b in zip(after, before,
                                                                       strict=True)),
            "settlement_txs": sum(a["settlement_txs"] - b["settlement_txs"]
                                  for a, b in zip(after, before, strict=True)),
            "requests_settled": sum(a["settled_requests"] - b["settled_requests"]
                                    for a, b in zip(after, before, strict=True)),
            "unsettled_fees": sum(a["unsettled_fees"] for a in after),
            "errors": tally.error_count}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    progress = Progress(args.quiet)
    with session(args, ["chain", "compute"], progress) as config:
        from zg_actors.compute.accounts import user_account
        from zg_actors.compute.sdk import ComputeClient
        from zg_actors.config import ZG
        from zg_actors.errors import InvalidInput

        if not 0 < args.users <= config.compute.users:
            raise InvalidInput(f"--users {args.users}: the devnet funds 1 to "
                               f"compute.users = {config.compute.users} users",
                               users=args.users)
        providers = live_providers()
        if not providers:
            raise InvalidInput("no compute provider is running: `zg compute up`")
        clients = [ComputeClient(user_account(config.devnet.key_seed, i))
                   for i in range(args.users)]
        fund_users(clients, [p["provider"] for p in providers], int(args.fund * ZG), progress)
        report = run_inference(clients, providers, args.duration,
                               args.max_tokens or config.compute.max_tokens, progress)
    return finish(args, report)


if __name__ == "__main__":
    sys.exit(main())
