"""The 0G story in one run: model weights in storage, a provider serving them, an agent
that remembers in storage and publishes its transcript to DA.

    ray job submit --working-dir . -- python jobs/ai_pipeline.py --questions 3

1. The providers' GGUF model file is uploaded to 0G Storage (one flow entry per 64 MiB
   fragment on the devnet).
2. A new provider (the next index after compute.providers; its account is paid its
   stake from a devnet user's wallet) fetches the file from the storage miners by those
   file roots, every proof and root checked, loads the model from it and registers its
   service on network 0.
3. An agent (a devnet compute user) funds the provider and asks it --questions
   questions; after each answer it writes its memory (the turns so far) to the KV layer
   when it is up (a KV tx on a key of its own in the first followed stream, read back at
   that tx's version at the next turn), else to storage as a new file (read back by root).
4. The agent posts its transcript to 0G DA through the gRPC gateway and waits for it to
   be FINALIZED.
5. It prints what went where, with roots, request ids and tx hashes, and re-reads each:
   the weights' entries and the provider's roots, the service on chain, the memory file,
   the transcript blob. Reports each step's latency and the errors.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from zg_actors.workload import (
    Progress,
    Tally,
    finish,
    gateway_address,
    job_parser,
    session,
    summarize,
)

QUESTIONS = ("What is a blockchain?", "Why store data in many places?",
             "What does a data availability layer do?", "Name a use of AI on a blockchain.",
             "What is a token?")
PROVIDER_FUNDING_STAKES = 2  # the new provider's wallet gets two stakes: one locked, gas
BLOB_FINAL_TIMEOUT_S = 180.0
# Logical CPUs of the embedded Ray: three pillars' reservations, the new provider and
# the tree-hashing tasks add up to more than the devnet's 2 (the work itself is light).
EMBEDDED_CPUS = 4
PROVIDER_START_TIMEOUT_S = 600.0  # fetch ~100 MB from the miners, load, register


def parse_args(argv: list[str] | None = None) -> Any:
    parser = job_parser(__doc__)
    parser.add_argument("--questions", type=int, default=3,
                        help=f"questions the agent asks (3; up to {len(QUESTIONS)} distinct)")
    parser.add_argument("--max-tokens", type=int, default=None,
                        help="completion tokens per answer (default compute.max_tokens)")
    parser.add_argument("--user", type=int, default=0,
                        help="devnet compute user that plays the agent (0)")
    parser.add_argument("--gateway", metavar="HOST:PORT",
                        help="gRPC gateway (default: where the deployment's gateway listens)")
    return parser.parse_args(argv)


class AgentMemory:
    """The agent's memory, one JSON document, written as a new storage file at each turn
    (where the KV layer is not up). Only `save` and `load` touch storage."""

    place = "storage"

    def __init__(self, storage: Any) -> None:
        self.storage = storage

    def save(self, memory: dict) -> dict:
        """Store `memory`; where it went (root, tx_seq, network)."""
        receipt = self.storage.upload(json.dumps(memory, sort_keys=True).encode())
        return {k: receipt[k] for k in ("root", "tx_seq", "network_id", "size")}

    def load(self, where: dict) -> dict:
        return json.loads(self.storage.download(where["root"]))


class KvAgentMemory:
    """The agent's memory in the KV layer: one key of a followed stream, written by a KV
    tx at each turn (a tagged flow entry the KV nodes replay) and read at that tx's
    version, so that each turn's memory stays readable."""

    place = "KV"

    def __init__(self, kv: Any, storage: Any, network_id: int, stream_id: bytes,
                 key: bytes) -> None:
        self.kv, self.storage, self.network_id = kv, storage, network_id
        self.stream_id, self.key = stream_id, key

    def save(self, memory: dict) -> dict:
        """Write `memory` and wait for a KV node's result; where it went (stream, key,
        tx_seq = the version to read it at, the entry's root)."""
        from zg_actors.storage.kv.client import Batcher
        from zg_actors.storage.kv.replay import COMMIT

        batch = Batcher(self.kv, self.storage, self.network_id)
        batch.set(self.stream_id, self.key, json.dumps(memory, sort_keys=True).encode())
        receipt = batch.exec(wait=True)
        if receipt["result"] != COMMIT:
            raise RuntimeError(f"memory tx {receipt['tx_seq']} not committed: "
                               f"{receipt['result']}")
        return {"stream": self.stream_id, "key": self.key, "tx_seq": receipt["tx_seq"],
                "root": receipt["root"], "network_id": receipt["network_id"],
                "size": receipt["size"]}

    def load(self, where: dict) -> dict:
        return json.loads(self.kv.get_value(self.stream_id, self.key, where["tx_seq"]).data)


def agent_memory(config: Any, storage: Any, agent: bytes) -> AgentMemory | KvAgentMemory:
    """The agent's memory in KV when the KV pillar is up (its first followed stream, a
    key per agent), else in storage files."""
    from zg_actors.stack import pillar_states

    if pillar_states(config)["kv"]["state"] != "up":
        return AgentMemory(storage)
    from zg_actors.storage.kv.actors import followed_streams, kv_network, kv_rpc_url
    from zg_actors.storage.kv.client import KvClient

    return KvAgentMemory(KvClient(kv_rpc_url(config)), storage, kv_network(config),
                         followed_streams(config)[0], b"agent-memory/0x" + agent.hex().encode())


def upload_weights(storage: Any, path: Path, progress: Progress) -> dict:
    """The model file into storage; its fragments' roots and tx sequence numbers."""
    data = path.read_bytes()
    progress.say(f"uploading the model weights {path.name} ({len(data) / 1e6:.1f} MB)")
    receipt = storage.upload(data)
    return {"file": path.name, "size": len(data), "network_id": receipt["network_id"],
            "roots": receipt["roots"],
            "tx_seqs": [f["tx_seq"] for f in receipt["fragments"]],
            "status": receipt["status"], "seconds": receipt["seconds"]}


def start_provider_from_storage(config: Any, roots: list[bytes], progress: Progress
                                ) -> tuple[Any, dict]:
    """A provider at the next free index that loads its model from `roots`; its handle
    and where it came from (the funding tx, its address, its status)."""
    import ray

    from zg_actors.chain.client import SyncChainClient
    from zg_actors.compute.accounts import provider_account, user_account
    from zg_actors.compute.actors import ComputeProvider, provider_name
    from zg_actors.compute.params import SERVING_NETWORK_ID

    index = config.compute.providers
    address = provider_account(config.devnet.key_seed, index).address
    payer = user_account(config.devnet.key_seed, config.compute.users - 1)
    chain = SyncChainClient(SERVING_NETWORK_ID)
    amount = PROVIDER_FUNDING_STAKES * config.compute.provider_stake
    funding = chain.send_and_wait(payer, "token", "transfer", [address, amount])
    progress.say(f"provider {index} (0x{address.hex()}) paid {amount / 10**18:g} tokens; it "
                 "fetches the model from storage by root and loads it")
    handle = ComputeProvider.options(name=provider_name(index),
                                     num_cpus=config.compute.provider_num_cpus).remote(
        config.to_dict(), index, str(Path(config.data_dir).resolve()), roots)
    status = ray.get(handle.start.remote(), timeout=PROVIDER_START_TIMEOUT_S)
    return handle, {"index": index, "address": address, "endpoint": status["endpoint"],
                    "model": status["model"], "model_roots": status["model_roots"],
                    "funding_tx": funding.hash}


def ask(agent: Any, provider: bytes, memory: AgentMemory | KvAgentMemory, questions: list[str],
        max_tokens: int, tally: Tally, progress: Progress) -> tuple[list[dict], list[dict]]:
    """The agent loop: each turn reads the memory back by its root, asks with the last
    answer as context, and stores the memory with the new turn. The turns and where each
    memory went."""
    turns: list[dict] = []
    saved: list[dict] = []
    for number, question in enumerate(questions):
        began = time.monotonic()
        try:
            remembered = memory.load(saved[-1])["turns"] if saved else []
            context = f"Earlier you said: {remembered[-1]['answer']}\n" if remembered else ""
            answer = agent.infer(provider, context + question, max_tokens)
            turns.append({"turn": number, "question": question, "answer": answer["output"],
                          "fee": answer["fee"], "nonce": answer["nonce"],
                          "completion_tokens": answer["completion_tokens"]})
            saved.append(memory.save({"turns": turns}))
        except Exception as exc:  # counted; the next turn goes on from the last memory
            tally.error(exc)
            continue
        tally.ok(time.monotonic() - began)
        progress.say(f"turn {number}: {question!r} -> {answer['output'][:60]!r}; memory in "
                     f"{memory.place} at tx {saved[-1]['tx_seq']}")
    return turns, saved


def post_transcript(client: Any, transcript: bytes, progress: Progress) -> dict:
    """The transcript as a DA blob, followed to FINALIZED; where it went."""
    from zg_actors.runtime import wait_for

    _, request_id = client.disperse_blob(transcript)
    progress.say(f"transcript ({len(transcript):,} bytes) posted to DA as 0x{request_id.hex()}")
    wait_for(lambda: client.get_blob_status(request_id)["status"] in (
        "FINALIZED", "FAILED", "INSUFFICIENT_SIGNATURES"), BLOB_FINAL_TIMEOUT_S, 0.3)
    info = client.get_blob_status(request_id)
    return {"request_id": request_id, "status": info["status"],
            "storage_root": info["storage_root"], "epoch": info["epoch"],
            "quorum_id": info["quorum_id"], "network_id": info["network_id"],
            "size": len(transcript)}


def reread(storage: Any, disperser: Any, weights: dict, provider: dict,
           memory: AgentMemory | KvAgentMemory,
           saved: list[dict], turns: list[dict], blob: dict, transcript: bytes) -> dict:
    """Read each thing back from where it went: a check per item (True when it matches)."""
    from zg_actors.compute.sdk import ServingChain

    info = storage.fragments_info(weights["roots"])
    services = {s["provider"]: s for s in ServingChain().query("services")}
    service = services.get(provider["address"], {})
    checks = {"weights_finalized": info["status"] == "FINALIZED"
              and info["size"] == weights["size"],
              "provider_loaded_these_roots": provider["model_roots"] == weights["roots"],
              "service_registered": service.get("endpoint") == provider["endpoint"],
              "memory_matches": bool(saved) and memory.load(saved[-1]) == {
                  "turns": turns}}
    if blob["status"] == "FINALIZED":
        data = disperser.retrieve_blob(blob["storage_root"], blob["epoch"], blob["quorum_id"])
        checks["transcript_matches"] = data == transcript
    else:
        checks["transcript_matches"] = False
    return checks


def run_pipeline(config: Any, storage: Any, disperser: Any, questions: int, max_tokens: int,
                 user: int, progress: Progress) -> dict[str, Any]:
    """The whole story (steps 1-5 of the module docstring); the report."""
    import ray

    from zg_actors.compute.accounts import user_account
    from zg_actors.compute.model import model_path
    from zg_actors.compute.sdk import ComputeClient
    from zg_actors.config import ZG

    steps: dict[str, float] = {}
    began = time.monotonic()
    weights = upload_weights(storage, model_path(), progress)
    steps["upload_weights_s"] = time.monotonic() - began
    began = time.monotonic()
    handle, provider = start_provider_from_storage(config, weights["roots"], progress)
    steps["provider_from_storage_s"] = time.monotonic() - began
    try:
        agent = ComputeClient(user_account(config.devnet.key_seed, user))
        deposit = agent.deposit(2 * ZG)["tx"]
        fund = agent.fund(provider["address"], ZG)["tx"]
        tally = Tally()
        chosen = [QUESTIONS[i % len(QUESTIONS)] for i in range(questions)]
        began = time.monotonic()
        memory = agent_memory(config, storage, agent.account.address)
        turns, saved = ask(agent, provider["address"], memory, chosen, max_tokens, tally,
                           progress)
        steps["agent_loop_s"] = time.monotonic() - began
        transcript = json.dumps({"provider": "0x" + provider["address"].hex(),
                                 "model_roots": ["0x" + r.hex() for r in weights["roots"]],
                                 "turns": turns}, sort_keys=True).encode()
        began = time.monotonic()
        blob = post_transcript(disperser, transcript, progress)
        steps["transcript_to_da_s"] = time.monotonic() - began
        settled = ray.get(handle.settle_now.remote(), timeout=120)
        checks = reread(storage, disperser, weights, provider, memory, saved, turns, blob,
                        transcript)
    finally:
        ray.kill(handle, no_restart=True)
    errors = tally.error_count + sum(1 for ok in checks.values() if not ok) \
        + (blob["status"] != "FINALIZED")
    return {"job": "ai_pipeline", "steps": steps,
            "agent": {**summarize(tally, steps["agent_loop_s"], "turns"),
                      "user": "0x" + agent.account.address.hex(), "deposit_tx": deposit,
                      "fund_tx": fund, "fees": sum(t["fee"] for t in turns),
                      "settlement_txs": settled["txs"], "fees_settled": settled["paid"]},
            "where": {"weights (storage)": weights, "provider (compute, network 0)": provider,
                      f"memory ({memory.place})": saved, "transcript (DA)": blob},
            "turns": turns, "reread": checks, "errors": errors}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    progress = Progress(args.quiet)
    # Compute's own providers are not needed: the pipeline starts the one it asks.
    with session(args, ["chain", "storage", "da"], progress, EMBEDDED_CPUS) as config:
        from zg_actors.rpc.client import DisperserClient
        from zg_actors.storage.sdk import StorageClient

        storage = StorageClient(config, start=False)
        storage.warm_up()
        with DisperserClient(gateway_address(args.gateway)) as disperser:
            report = run_pipeline(config, storage, disperser, args.questions,
                                  args.max_tokens or config.compute.max_tokens, args.user,
                                  progress)
    return finish(args, report)


if __name__ == "__main__":
    sys.exit(main())
