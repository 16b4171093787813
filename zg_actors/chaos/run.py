"""The Ray side of `zg chaos`: the deployment's shape, a mixed load on every pillar that is
up, the injector that applies the seeded schedule, and the readback the audit checks.

The load's clients record every acknowledgement in the audit's `Ledger`:

- transfers: pre-signed token transfers from the load accounts on every network; a tx is
  acknowledged when a validator admits it (it persists its txpool before answering); a
  submission that times out (a paused or restarting validator) is re-sent, the same bytes,
  to the next validator until one answers, so that no nonce is skipped;
- uploads: seeded files through the storage SDK, acknowledged when FINALIZED;
- blobs: seeded blobs through the gRPC gateway, acknowledged when FINALIZED;
- inference: signed requests to the providers, acknowledged with a signed receipt;
- KV writes (where KV nodes run): KV txs through the KV client's Batcher, each writing a
  key of its own, acknowledged when its flow entry is FINALIZED (its tx_seq);
- EVM txs (where a network's Ethereum JSON-RPC is served): native value transfers signed
  by a load account kept for them, sent with eth_sendRawTransaction, acknowledged when
  the hash is answered; a send with no answer is re-sent, the same bytes, until one comes.

Kill goes through Ray (`ray.kill` with restart: the actor's process dies and Ray brings it
back, the actor resumes from its store); pause stops the actor's worker process with
SIGSTOP, on the node it runs on, and SIGCONT after the pause.
"""

from __future__ import annotations

import heapq
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from zg_actors.chain.load import TransferLoad
from zg_actors.chain.network_manager import NETWORK_MANAGER_NAME
from zg_actors.chain.tx import NonceError, decode_tx
from zg_actors.chain.txpool import DuplicateTx
from zg_actors.chain.validator_actor import validator_name
from zg_actors.chaos.audit import (
    RESEND_REFUSALS,
    ChainCopy,
    EvmRead,
    KvRead,
    Ledger,
    Readback,
    audit,
    digest,
)
from zg_actors.chaos.schedule import (
    Action,
    Fault,
    Group,
    Member,
    Rule,
    Shape,
    count_by,
    make_schedule,
)
from zg_actors.config import Config
from zg_actors.crypto.encoding import as_bytes, as_list, decode
from zg_actors.crypto.keccak import keccak256
from zg_actors.errors import unwrap
from zg_actors.workload import Background, Progress, error_kind, mixed_sizes, seeded_bytes

SUBMIT_TIMEOUT_S = 5.0  # a validator that does not answer a submission by then is skipped
ROUND_TIMEOUT_S = 300.0  # a round of transfers no validator answers is given up then
RESEND_PAUSE_S = 0.3  # between two sends of txs no validator has answered yet
CALL_TIMEOUT_S = 10.0  # a read of the readback
SIGNAL_TIMEOUT_S = 30.0  # a pause's signal task on another node
DRAIN_TIMEOUT_S = 120.0  # after the load: txpools empty, providers settled, by then
LIVENESS_BOUND_S = 30.0  # every network commits a new block within this at the end
BLOB_FINAL_TIMEOUT_S = 180.0  # a dispersed blob not FINALIZED by then is not acknowledged
BLOB_POLL_S = 0.5
READ_ATTEMPTS = 3  # a file or blob read back after the run, before it counts unreadable
READ_RETRY_S = 2.0
EXAMPLE_ERRORS = 20  # read errors the report names per kind
NETWORK_CHURN_TIMEOUT_S = 300.0  # a launch (or a retirement) mid-run takes at most this
FILE_BYTES = (1024, 192 * 1024)  # seeded uploads, spread on a log scale
BLOB_BYTES = (1024, 64 * 1024)
FILES_DRAWN = 10_000  # sizes drawn up front for this many uploads (and blobs)
PROMPTS = ("What is a blockchain?", "Name a colour of the sky.", "Say hello in French.")
FUND_PER_PROVIDER = 10**18  # tokens a chaos user puts in each provider's sub-account
# A refused resend that means the tx is already held (another validator admitted it
# first) or committed: the tx exists, the client moves on.
SETTLED_REFUSALS = (DuplicateTx.__name__, NonceError.__name__)
KV_VALUE_BYTES = (64, 4096)  # a KV write's value, spread on a log scale
EVM_TPS = 2.0  # EVM transfers per second per network
EVM_ACCOUNTS = 1  # the last load accounts, kept from the transfers for the EVM txs


@dataclass
class ChaosOptions:
    seed: int = 1
    duration_s: float = 120.0
    rate_tps: float = 20.0  # transfers per second per network
    settle_s: float = DRAIN_TIMEOUT_S
    singletons: bool = True  # fault the gateway, dispersers, C0, the relayer, the manager
    churn: bool = True  # launch a network mid-run, retire it later


# ---- the deployment's shape ----------------------------------------------------------
def deployment_shape(config: Config, options: ChaosOptions) -> Shape:
    """The fault groups of the pillars that are up in the namespace."""
    from zg_actors import stack
    from zg_actors.compute.actors import provider_name
    from zg_actors.crypto.devkeys import validator_identity
    from zg_actors.da.node_actor import da_node_name
    from zg_actors.storage.actors import miner_name

    states = stack.pillar_states(config)
    manager = ray.get_actor(NETWORK_MANAGER_NAME)
    groups = []
    for network_id in ray.get(manager.active_networks.remote(), timeout=CALL_TIMEOUT_S):
        handles = ray.get(manager.validator_handles.remote(network_id), timeout=CALL_TIMEOUT_S)
        status = ray.get(next(iter(handles.values())).status.remote(), timeout=CALL_TIMEOUT_S)
        power = {v["address"]: v["power"] for v in status["validators"]}
        seed = config.devnet.key_seed
        members = tuple(Member(validator_name(network_id, identity), power.get(
            "0x" + validator_identity(seed, identity).address.hex(), 0))
            for identity in sorted(handles))
        groups.append(Group(f"network-{network_id}", "validator", members, Rule.THIRD))
    if states["storage"]["state"] == "up":
        s = config.storage
        tolerated = s.replication_factor - 1 if s.replication_factor else s.parity_shards
        groups.append(Group("storage", "miner", tuple(Member(miner_name(i))
                                                     for i in range(s.miners)),
                            Rule.COUNT, max_down=tolerated,
                            recovery_s=s.repair_grace_s + s.repair_interval_s))
    if states["kv"]["state"] == "up" and config.kv.nodes > 1:
        from zg_actors.storage.kv.actors import kv_node_name

        groups.append(Group("kv", "kv_node", tuple(Member(kv_node_name(i))
                                                  for i in range(config.kv.nodes)),
                            Rule.COUNT, max_down=config.kv.nodes - 1))
    if states["da"]["state"] == "up":
        # The devnet's DA signers stake alike: each holds the same share of the slots.
        groups.append(Group("da", "da_node", tuple(Member(da_node_name(i))
                                                  for i in range(config.da.nodes)),
                            Rule.THIRD))
    if states["compute"]["state"] == "up" and config.compute.providers > 1:
        groups.append(Group("compute", "provider",
                            tuple(Member(provider_name(i))
                                  for i in range(config.compute.providers)),
                            Rule.COUNT, max_down=config.compute.providers - 1))
    if options.singletons:
        groups += singleton_groups(config, states["da"]["state"] == "up")
    return Shape(tuple(groups), churn=options.churn)


def singleton_groups(config: Config, da_up: bool) -> list[Group]:
    """The actors there is one of (or a few, each on its own): C0, the relayer, the network
    manager when it is detached (a non-detached one owns its validators, which would die
    with it: Ray's fate sharing, not a fault of the product), the gateway, dispersers."""
    from zg_actors.chain.relayer import RELAYER_NAME
    from zg_actors.da.disperser_actor import disperser_name
    from zg_actors.rpc.gateway import GATEWAY_NAME
    from zg_actors.staking.actors import STAKING_ACTOR_NAME

    def one(name: str, kind: str) -> Group:
        return Group(kind, kind, (Member(name),), Rule.COUNT, beyond=False)

    groups = [one(STAKING_ACTOR_NAME, "staking"), one(RELAYER_NAME, "relayer")]
    if _actor_info(NETWORK_MANAGER_NAME).get("IsDetached"):
        groups.append(one(NETWORK_MANAGER_NAME, "network_manager"))
    if da_up:
        groups.append(one(GATEWAY_NAME, "gateway"))
        groups.append(Group("dispersers", "disperser",
                            tuple(Member(disperser_name(i)) for i in range(config.da.dispersers)),
                            Rule.COUNT, max_down=1, beyond=False))
    return groups


# ---- the injector --------------------------------------------------------------------
@ray.remote(num_cpus=0)
def _signal_process(pid: int, signum: int) -> None:
    os.kill(pid, signum)


def _actor_info(name: str) -> dict:
    """The named actor's row of the GCS actor table. Ray's state API needs the dashboard,
    which an embedded Ray may not run; the GCS table does not."""
    from ray._private import state

    return state.actors(ray.get_actor(name)._actor_id.hex())


def actor_process(name: str) -> tuple[int, str]:
    """The worker PID and node id of the named actor's current process."""
    info = _actor_info(name)
    if info.get("State") != "ALIVE" or not info.get("Pid"):
        raise RuntimeError(f"actor {name} is {info.get('State')}, no process to signal")
    return int(info["Pid"]), info["Address"]["NodeID"]


def signal_process(pid: int, node_id: str, signum: int) -> None:
    """Send `signum` to process `pid` on node `node_id` (this node: directly)."""
    if node_id == ray.get_runtime_context().get_node_id():
        os.kill(pid, signum)
        return
    strategy = NodeAffinitySchedulingStrategy(node_id, soft=False)
    ray.get(_signal_process.options(scheduling_strategy=strategy).remote(pid, signum),
            timeout=SIGNAL_TIMEOUT_S)


class Injector:
    """Applies the schedule in a thread; every fault is logged with its time, done or not.
    `stop` resumes whatever is still paused."""

    def __init__(self, schedule: list[Fault], say: Callable[[str], None],
                 on_network: Callable[[Fault], None] | None = None) -> None:
        self.schedule = schedule
        self.say = say
        self.on_network = on_network  # launches and retires, in a thread of their own
        self._network_thread: threading.Thread | None = None
        self.log: list[dict] = []  # one entry per fault, and per resume
        self.paused: dict[str, tuple[int, str]] = {}  # {actor: (pid, node id)}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="zg-chaos-injector",
                                        daemon=True)
        self.start_at = 0.0

    def start(self) -> Injector:
        self.start_at = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        events: list[tuple[float, int, str, Fault]] = []  # (at s, order, what, fault)
        for order, fault in enumerate(self.schedule):
            heapq.heappush(events, (fault.at_s, order, "fault", fault))
        order = len(events)
        while events and not self._stop.is_set():
            at_s, _, what, fault = events[0]
            if self._stop.wait(max(0.0, self.start_at + at_s - time.monotonic())):
                return
            heapq.heappop(events)
            if what == "resume":
                self._resume(fault)
            elif self._apply(fault) and fault.action is Action.PAUSE:
                order += 1
                heapq.heappush(events, (at_s + fault.duration_s, order, "resume", fault))

    def _record(self, fault: Fault, event: str, error: str | None) -> None:
        elapsed = time.monotonic() - self.start_at
        entry = {"t_s": round(elapsed, 2), "event": event, **fault.to_dict(), "ok": error is None}
        if error is not None:
            entry["error"] = error
        with self._lock:
            self.log.append(entry)
        self.say(f"chaos t={elapsed:6.1f}s {event} {fault.kind} {fault.target} (phase "
                 f"{fault.phase}{f', {fault.duration_s:.1f} s' if event == 'pause' else ''})"
                 + (f": FAILED {error}" if error else ""))

    def _apply(self, fault: Fault) -> bool:
        if fault.action in (Action.LAUNCH, Action.RETIRE):
            self._network(fault)
            return False
        try:
            if fault.action is Action.KILL:
                ray.kill(ray.get_actor(fault.target), no_restart=False)
            else:
                pid, node_id = actor_process(fault.target)
                signal_process(pid, node_id, signal.SIGSTOP)
                with self._lock:
                    self.paused[fault.target] = (pid, node_id)
        except Exception as exc:  # e.g. the actor is still restarting: logged, not retried
            self._record(fault, fault.action.value, error_kind(unwrap(exc)))
            return False
        self._record(fault, fault.action.value, None)
        return True

    def _network(self, fault: Fault) -> None:
        """Launch or retire in a thread: a launch takes seconds the next faults must not
        wait for; a retire waits for the launch before it."""
        before = self._network_thread

        def run() -> None:
            if before is not None:
                before.join()
            try:
                if self.on_network is None:
                    raise RuntimeError("no network churn in this run")
                self.on_network(fault)
            except Exception as exc:
                self._record(fault, fault.action.value, error_kind(unwrap(exc)))
                return
            self._record(fault, fault.action.value, None)

        self._network_thread = threading.Thread(target=run, name="zg-chaos-network",
                                                daemon=True)
        self._network_thread.start()

    def _resume(self, fault: Fault) -> None:
        with self._lock:
            where = self.paused.pop(fault.target, None)
        if where is None:
            return
        try:
            signal_process(*where, signal.SIGCONT)
        except Exception as exc:
            self._record(fault, "resume", error_kind(unwrap(exc)))
            return
        self._record(fault, "resume", None)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(SIGNAL_TIMEOUT_S)
        if self._network_thread is not None:
            self._network_thread.join(NETWORK_CHURN_TIMEOUT_S)
        for target in list(self.paused):
            fault = next(f for f in self.schedule if f.target == target)
            self._resume(fault)

    def applied(self) -> list[dict]:
        return [e for e in self.log if e["event"] != "resume" and e["ok"]]


# ---- the load ------------------------------------------------------------------------
class Transfers:
    """Token transfers on one network, one per load account per round, paced."""

    def __init__(self, config: Config, network_id: int, ledger: Ledger) -> None:
        from zg_actors.crypto.devkeys import load_account

        manager = ray.get_actor(NETWORK_MANAGER_NAME)
        self.network_id = network_id
        self.handles = list(ray.get(manager.validator_handles.remote(network_id),
                                    timeout=CALL_TIMEOUT_S).values())
        seed = config.devnet.key_seed
        accounts = config.networks.load_accounts - EVM_ACCOUNTS
        nonces = ray.get([self.handles[0].account.remote(load_account(seed, i).address)
                          for i in range(accounts)], timeout=CALL_TIMEOUT_S)
        self.load = TransferLoad(seed, network_id, accounts, [n["nonce"] for n in nonces])
        self.accounts = accounts
        self.ledger = ledger
        self.resends = 0
        self.unresolved = 0  # txs no validator answered for (their nonces may stall)
        self.refused: dict[str, int] = {}
        self._turn = 0

    def send_round(self, _index: int) -> int:
        """One tx per load account, re-sent until a validator answers for each."""
        pending = {tx.hash: tx.encoded for tx in self.load.next_batch(self.accounts)}
        deadline = time.monotonic() + ROUND_TIMEOUT_S
        while pending:
            if time.monotonic() > deadline:  # no validator answers (e.g. retired by hand)
                self.unresolved += len(pending)
                raise TimeoutError(f"{len(pending)} txs of network {self.network_id} "
                                   f"unanswered for {ROUND_TIMEOUT_S:.0f} s")
            handle = self.handles[self._turn % len(self.handles)]
            self._turn += 1
            raws = list(pending.values())
            try:
                errors = ray.get(handle.submit_txs.remote(raws), timeout=SUBMIT_TIMEOUT_S)
            except Exception:  # paused, killed or restarting: the same bytes go elsewhere
                self.resends += 1
                time.sleep(RESEND_PAUSE_S)
                continue
            for raw, error in zip(raws, errors, strict=True):
                tx_hash = keccak256(raw)
                if error is None:
                    self.ledger.tx(self.network_id, tx_hash)
                    pending.pop(tx_hash)
                    continue
                refusal = error.partition(":")[0]
                self.refused[refusal] = self.refused.get(refusal, 0) + 1
                if refusal in SETTLED_REFUSALS:
                    pending.pop(tx_hash)
            if pending:
                time.sleep(RESEND_PAUSE_S)
        return 0


def paced(operation: Callable[[int], int], period_s: float) -> Callable[[int], int]:
    """`operation`, taking at least period_s seconds per call."""
    def run(index: int) -> int:
        began = time.monotonic()
        moved = operation(index)
        time.sleep(max(0.0, period_s - (time.monotonic() - began)))
        return moved
    return run


def read_back(read: Callable[[], bytes], item_id: bytes,
              errors: dict[bytes, str]) -> bytes | None:
    """The digest of what `read` gives, tried READ_ATTEMPTS times (a read the cluster
    answers on a later try is not a loss); None, with the last error kept, if none does."""
    for attempt in range(READ_ATTEMPTS):
        try:
            data = read()
        except Exception as exc:
            errors[item_id] = error_kind(unwrap(exc))
            if attempt + 1 < READ_ATTEMPTS:
                time.sleep(READ_RETRY_S)
            continue
        errors.pop(item_id, None)
        return digest(data)
    return None


class Uploads:
    """Seeded files uploaded one after another, each until FINALIZED."""

    def __init__(self, config: Config, seed: int, ledger: Ledger) -> None:
        from zg_actors.storage.sdk import StorageClient

        self.client = StorageClient(config, start=False)
        self.client.warm_up()
        self.seed = seed
        self.sizes = mixed_sizes(FILES_DRAWN, *FILE_BYTES, seed)
        self.ledger = ledger
        self.roots: dict[bytes, list[bytes]] = {}  # {file id: fragment roots}
        self.read_errors: dict[bytes, str] = {}  # {file id: why it did not download}

    def upload(self, index: int) -> int:
        data = seeded_bytes(self.seed, index, self.sizes[index % FILES_DRAWN])
        receipt = self.client.upload(data)
        file_id = b"".join(receipt["roots"])
        self.roots[file_id] = receipt["roots"]
        self.ledger.file(file_id, data)
        return len(data)

    def read(self, file_id: bytes) -> bytes | None:
        return read_back(lambda: self.client.download_fragments(self.roots[file_id]),
                         file_id, self.read_errors)


class Blobs:
    """Seeded blobs dispersed one after another through the gRPC gateway, each followed to
    FINALIZED. After a failed call the gateway is looked up again: a restarted gateway
    listens again, on a new port where the configured one is 0."""

    def __init__(self, seed: int, ledger: Ledger) -> None:
        self.seed = seed + 1  # not the files' bytes
        self.sizes = mixed_sizes(FILES_DRAWN, *BLOB_BYTES, self.seed)
        self.ledger = ledger
        self.where: dict[bytes, tuple[bytes, int, int]] = {}  # {request id: blob key}
        self.finalized_at: dict[bytes, float] = {}  # {request id: monotonic time}
        self.read_errors: dict[bytes, str] = {}  # {request id: why it did not retrieve}
        self._client: Any = None

    def call(self, method: str, *args: Any) -> Any:
        from zg_actors.rpc.client import DisperserClient
        from zg_actors.workload import gateway_address

        if self._client is None:
            self._client = DisperserClient(gateway_address(None))
        try:
            return getattr(self._client, method)(*args)
        except Exception:
            self._client.close()
            self._client = None
            raise

    def disperse(self, index: int) -> int:
        data = seeded_bytes(self.seed, index, self.sizes[index % FILES_DRAWN])
        request_id = self.call("disperse_blob", data)[1]
        deadline = time.monotonic() + BLOB_FINAL_TIMEOUT_S
        while time.monotonic() < deadline:
            time.sleep(BLOB_POLL_S)
            try:
                info = self.call("get_blob_status", request_id)
            except Exception:  # the gateway restarting: ask again
                continue
            if info["status"] == "FINALIZED":
                self.where[request_id] = (info["storage_root"], info["epoch"],
                                          info["quorum_id"])
                self.finalized_at[request_id] = time.monotonic()
                self.ledger.blob(request_id, data)
                return len(data)
            if info["status"] in ("FAILED", "INSUFFICIENT_SIGNATURES"):
                raise RuntimeError(f"blob 0x{request_id.hex()} {info['status']}")
        raise TimeoutError(f"blob 0x{request_id.hex()} not FINALIZED in "
                           f"{BLOB_FINAL_TIMEOUT_S:.0f} s")

    def read(self, request_id: bytes) -> bytes | None:
        return read_back(lambda: self.call("retrieve_blob", *self.where[request_id]),
                         request_id, self.read_errors)


class Inference:
    """Funded users sending signed requests to the providers in turn."""

    def __init__(self, config: Config, ledger: Ledger, users: int = 2) -> None:
        from zg_actors.compute.accounts import user_account
        from zg_actors.compute.sdk import ComputeClient
        from zg_actors.config import ZG

        self.clients = [ComputeClient(user_account(config.devnet.key_seed, i))
                        for i in range(min(users, config.compute.users))]
        running = set(ray.util.list_named_actors())
        self.providers = [s["provider"] for s in self.clients[0].services()
                          if s["endpoint"] in running]
        self.endpoints = [s["endpoint"] for s in self.clients[0].services()
                          if s["endpoint"] in running]
        for client in self.clients:
            client.deposit(FUND_PER_PROVIDER * len(self.providers) + ZG)
            for provider in self.providers:
                client.fund(provider, FUND_PER_PROVIDER)
        self.max_tokens = config.compute.max_tokens
        self.ledger = ledger

    def infer(self, index: int) -> int:
        client = self.clients[index % len(self.clients)]
        provider = self.providers[(index // len(self.clients)) % len(self.providers)]
        answer = client.infer(provider, PROMPTS[index % len(PROMPTS)], self.max_tokens)
        self.ledger.receipt(provider, client.account.address, answer["nonce"])
        return 0

    def settle(self) -> None:
        """Every provider settles what it served (retried while one restarts)."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        for endpoint in self.endpoints:
            while True:
                try:
                    ray.get(ray.get_actor(endpoint).settle_now.remote(), timeout=60)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1.0)


class KvWrites:
    """KV txs sent one after another, each a blind write of a key of its own (so no two
    conflict, and a key written at a later version than its tx was written twice)."""

    def __init__(self, config: Config, seed: int, ledger: Ledger, storage: Any = None) -> None:
        from zg_actors.storage.kv.actors import followed_streams, kv_network, kv_rpc_url
        from zg_actors.storage.kv.client import KvClient
        from zg_actors.storage.sdk import StorageClient

        if storage is None:
            storage = StorageClient(config, start=False)
            storage.warm_up()
        # The uploads' client when they run: one client counts its account's nonces for
        # both (two would give two flow submissions one nonce: ReplacementUnderpriced).
        self.storage = storage
        self.kv = KvClient(kv_rpc_url(config))
        self.network_id = kv_network(config)
        self.stream_id = followed_streams(config)[0]
        self.seed = seed + 2  # not the files' nor the blobs' bytes
        self.sizes = mixed_sizes(FILES_DRAWN, *KV_VALUE_BYTES, self.seed)
        self.run = os.urandom(4).hex()  # a rerun writes keys of its own
        self.ledger = ledger
        self.keys: dict[int, bytes] = {}  # {tx_seq: key}

    def write(self, index: int) -> int:
        from zg_actors.storage.kv.client import Batcher

        key = f"chaos/{self.run}/{index}".encode()  # a failed try's key is not reused
        value = seeded_bytes(self.seed, index, self.sizes[index % FILES_DRAWN])
        batch = Batcher(self.kv, self.storage, self.network_id)
        batch.set(self.stream_id, key, value)
        tx_seq = batch.exec()["tx_seq"]  # FINALIZED
        self.keys[tx_seq] = key
        self.ledger.kv_tx(tx_seq, self.stream_id, key, value)
        return len(value)

    def read_back(self, config: Config, deadline: float) -> dict[int, KvRead]:
        """Every KV node's result for each acknowledged tx (once each has replayed them
        all, or at the deadline), the key's latest version and its value at the tx's."""
        from zg_actors.storage.kv.actors import find_kv_nodes

        acked = sorted(self.ledger.kv)
        nodes = find_kv_nodes(config)
        while acked and time.monotonic() < deadline:
            try:
                if all(_call(n.status.remote())["next_tx_seq"] > acked[-1]
                       for n in nodes.values()):
                    break
            except Exception:  # a node restarting: ask again
                pass
            time.sleep(1.0)
        out = {}
        for tx_seq in acked:
            results = []
            for node in nodes.values():
                try:
                    results.append(_call(node.rpc.remote("kv_getTransactionResult",
                                                         [tx_seq])))
                except Exception:
                    results.append(None)
            key = self.ledger.kv[tx_seq].key
            try:
                latest = self.kv.get_value(self.stream_id, key).version
                value = digest(self.kv.get_value(self.stream_id, key, tx_seq).data)
            except Exception:
                latest, value = None, None
            out[tx_seq] = KvRead(tuple(results), latest, value)
        return out


class EvmTxs:
    """Native value transfers on one network through its Ethereum JSON-RPC, from a load
    account the token transfers leave alone, the nonce counted here."""

    def __init__(self, config: Config, network_id: int, ledger: Ledger) -> None:
        from eth_account import Account as EthAccount

        from zg_actors.crypto.devkeys import load_account
        from zg_actors.evm.serve import evm_rpc_url
        from zg_actors.rpc.jsonrpc import JsonRpcClient

        self.network_id = network_id
        self.rpc = JsonRpcClient(evm_rpc_url(config, network_id), SUBMIT_TIMEOUT_S)
        self.key = EthAccount.from_key(load_account(
            config.devnet.key_seed, config.networks.load_accounts - EVM_ACCOUNTS).secret)
        self.chain_id = config.networks.evm.chain_id(network_id)
        self.nonce = int(self.rpc.call("eth_getTransactionCount", self.key.address,
                                       "pending"), 16)
        self.ledger = ledger
        self.raws: dict[bytes, bytes] = {}  # {acknowledged hash: raw tx}
        self.resends = 0

    def send(self, index: int) -> int:
        """One transfer, its same bytes re-sent until the RPC answers."""
        from zg_actors.evm.bench import TRANSFER_GAS, TRANSFER_VALUE, recipient, sign
        from zg_actors.rpc.jsonrpc import RpcError

        raw = sign(self.key, self.chain_id, self.nonce, recipient(index), TRANSFER_GAS,
                   value=TRANSFER_VALUE)
        deadline = time.monotonic() + ROUND_TIMEOUT_S
        while True:
            try:
                answer = self.rpc.call("eth_sendRawTransaction", "0x" + raw.hex())
            except RpcError as exc:
                if not any(r in exc.message for r in RESEND_REFUSALS):
                    raise  # refused outright (fees, say): the next try signs anew
                self.nonce += 1  # admitted by an earlier send whose answer was lost
                return 0
            except Exception:  # no answer (a validator or the proxy paused): same bytes
                if time.monotonic() > deadline:
                    raise
                self.resends += 1
                time.sleep(RESEND_PAUSE_S)
                continue
            tx_hash = bytes.fromhex(answer.removeprefix("0x"))
            self.raws[tx_hash] = raw
            self.ledger.evm_tx(self.network_id, tx_hash)
            self.nonce += 1
            return len(raw)

    def read_back(self) -> dict[bytes, EvmRead]:
        """Each acknowledged tx's receipt block, and what a re-send of it answers now."""
        from zg_actors.rpc.jsonrpc import RpcError

        out = {}
        for tx_hash, raw in list(self.raws.items()):
            block = None
            try:
                receipt = self.rpc.call("eth_getTransactionReceipt", "0x" + tx_hash.hex())
                if receipt is not None:
                    block = (bytes.fromhex(receipt["blockHash"].removeprefix("0x")),
                             int(receipt["blockNumber"], 16))
                resend = str(self.rpc.call("eth_sendRawTransaction", "0x" + raw.hex()))
            except RpcError as exc:
                resend = exc.message
            except Exception as exc:
                resend = error_kind(unwrap(exc))
            out[tx_hash] = EvmRead(block, resend)
        return out


def evm_networks(networks: list[int]) -> list[int]:
    """The networks whose Ethereum JSON-RPC app runs on Serve."""
    from ray import serve

    from zg_actors.evm.serve import app_name

    try:
        apps = serve.status().applications
    except Exception:  # noqa: BLE001 - Serve not started: no EVM endpoint
        return []
    return [n for n in networks if app_name(n) in apps
            and str(apps[app_name(n)].status).endswith("RUNNING")]


class NetworkChurn:
    """Launches a network mid-run (transfers follow it) and retires it later; its chain is
    read back before it is retired, since a retired network's validators stop."""

    def __init__(self, config: Config, options: ChaosOptions, loads: Loads,
                 ledger: Ledger) -> None:
        self.config = config
        self.options = options
        self.loads = loads
        self.ledger = ledger
        self.launched: int | None = None
        self.retired: dict[int, list[ChainCopy]] = {}  # {network: its chain at retirement}

    def __call__(self, fault: Fault) -> None:
        manager = ray.get_actor(NETWORK_MANAGER_NAME)
        if fault.action is Action.LAUNCH:
            info = _call(manager.launch_network.remote(), NETWORK_CHURN_TIMEOUT_S)
            self.launched = info["network_id"]
            self.loads.follow(Transfers(self.config, self.launched, self.ledger),
                              self.options.rate_tps)
            return
        network_id = self.launched
        if network_id is None:
            raise RuntimeError("no network was launched to retire")
        self.loads.running[f"transfers-{network_id}"].stop(NETWORK_CHURN_TIMEOUT_S)
        handles = _call(manager.validator_handles.remote(network_id))
        wait_drained(list(handles.values()), time.monotonic() + DRAIN_TIMEOUT_S)
        chains = [read_chain(validator_name(network_id, i), h)[0]
                  for i, h in sorted(handles.items())]
        _call(manager.retire_network.remote(network_id), NETWORK_CHURN_TIMEOUT_S)
        self.retired[network_id] = chains


# ---- the readback --------------------------------------------------------------------
def _call(ref: Any, timeout: float = CALL_TIMEOUT_S) -> Any:
    return ray.get(ref, timeout=timeout)


def read_chain(name: str, handle: Any) -> tuple[ChainCopy, dict[int, list[bytes]]]:
    """A validator's committed chain (block hash, tx hashes per height) and its raw txs."""
    from zg_actors.chain.block import Header
    from zg_actors.chain.catch_up import SYNC_BATCH_BLOCKS

    top = _call(handle.committed_height.remote())
    hashes: dict[int, bytes] = {}
    txs: dict[int, tuple[bytes, ...]] = {}
    raws: dict[int, list[bytes]] = {}
    height = 1
    while height <= top:
        batch = _call(handle.get_blocks.remote(height, SYNC_BATCH_BLOCKS), 60)
        if not batch:
            break
        for block_raw, _cert in batch:
            header_raw, txs_raw, _last = as_list(decode(block_raw), 3)
            header = Header.decode(as_bytes(header_raw))
            raw_txs = [as_bytes(t) for t in as_list(txs_raw)]
            hashes[header.height] = header.hash
            txs[header.height] = tuple(keccak256(t) for t in raw_txs)
            raws[header.height] = raw_txs
            height = header.height + 1
    return ChainCopy(name, hashes, txs), raws


def settled_traces(handle: Any, raws: dict[int, list[bytes]]) -> list[tuple[bytes, bytes, int]]:
    """(provider, user, nonce) of every trace the `serving` module accepted, from the
    committed settle txs and their results."""
    from zg_actors.compute.serving import SERVING_MODULE
    from zg_actors.compute.settlement import Settlement

    paid = []
    for height in sorted(raws):
        for raw in raws[height]:
            tx = decode_tx(raw)
            if (tx.module, tx.method) != (SERVING_MODULE, "settle"):
                continue
            results = _call(handle.query.remote(SERVING_MODULE, "settlement", (tx.hash,)))
            if results is None:  # the tx failed as a whole: nothing paid
                continue
            items = [Settlement.from_list(i) for i in as_list(tx.args[0])]
            for item, result in zip(items, results, strict=True):
                refused = {r["nonce"] for r in result["rejected"]}
                paid += [(tx.sender, item.user, t.nonce) for t in item.traces
                         if t.nonce not in refused]
    return paid


def wait_drained(handles: list[Any], deadline: float) -> None:
    """Until a validator of the network reports an empty pending txpool (or the deadline)."""
    while time.monotonic() < deadline:
        for handle in handles:
            try:
                if _call(handle.status.remote(), 3)["mempool_pending"] == 0:
                    return
            except Exception:
                continue
        time.sleep(1.0)


def is_live(handles: list[Any]) -> bool:
    """Whether the network commits a new block within LIVENESS_BOUND_S."""
    heights = []
    for handle in handles:
        try:
            heights.append(_call(handle.committed_height.remote(), 3))
        except Exception:
            continue
    if not heights:
        return False
    target = max(heights) + 1
    deadline = time.monotonic() + LIVENESS_BOUND_S
    while time.monotonic() < deadline:
        for handle in handles:
            try:
                if _call(handle.wait_height.remote(target, 5.0), 10) >= target:
                    return True
            except Exception:
                continue
    return False


# ---- the run -------------------------------------------------------------------------
@dataclass
class Loads:
    transfers: list[Transfers] = field(default_factory=list)
    uploads: Uploads | None = None
    blobs: Blobs | None = None
    inference: Inference | None = None
    kv: KvWrites | None = None
    evm: list[EvmTxs] = field(default_factory=list)
    running: dict[str, Background] = field(default_factory=dict)

    def follow(self, transfers: Transfers, rate_tps: float) -> None:
        """Start transfers on one more network."""
        name = f"transfers-{transfers.network_id}"
        self.transfers.append(transfers)
        self.running[name] = Background(name, paced(transfers.send_round,
                                                    transfers.accounts / rate_tps)).start()


def start_loads(config: Config, options: ChaosOptions, shape: Shape, ledger: Ledger,
                progress: Progress) -> Loads:
    from zg_actors import stack

    loads = Loads()
    kinds = {g.kind for g in shape.groups}
    for group in shape.groups:
        if group.kind == "validator":
            network_id = int(group.name.rpartition("-")[2])
            loads.follow(Transfers(config, network_id, ledger), options.rate_tps)
    if "miner" in kinds:
        loads.uploads = Uploads(config, options.seed, ledger)
    if "da_node" in kinds:
        loads.blobs = Blobs(options.seed, ledger)
    if "provider" in kinds:
        loads.inference = Inference(config, ledger)
    if loads.uploads:
        loads.running["uploads"] = Background("uploads", loads.uploads.upload)
    if loads.blobs:
        loads.running["blobs"] = Background("blobs", loads.blobs.disperse)
    if loads.inference:
        loads.running["inference"] = Background("inference", loads.inference.infer)
    if stack.pillar_states(config)["kv"]["state"] == "up":
        loads.kv = KvWrites(config, options.seed, ledger,
                            loads.uploads.client if loads.uploads else None)
        loads.running["kv"] = Background("kv", loads.kv.write)
    for network_id in evm_networks([t.network_id for t in loads.transfers]):
        evm = EvmTxs(config, network_id, ledger)
        loads.evm.append(evm)
        loads.running[f"evm-{network_id}"] = Background(f"evm-{network_id}",
                                                        paced(evm.send, 1 / EVM_TPS))
    for name, background in loads.running.items():
        if not name.startswith("transfers-"):
            background.start()
    progress.say(f"load running: {', '.join(loads.running)}")
    return loads


def run_chaos(config: Config, options: ChaosOptions, progress: Progress) -> dict[str, Any]:
    """Drive the load, inject the schedule for options.duration_s, settle, read back and
    audit; the report (its "ok" says whether the audit found nothing wrong)."""
    shape = deployment_shape(config, options)
    schedule = make_schedule(options.seed, options.duration_s, shape)
    progress.say(f"seed {options.seed}: {len(schedule)} faults over {options.duration_s:.0f}"
                 f" s on {', '.join(g.name for g in shape.groups)}")
    ledger = Ledger()
    loads = start_loads(config, options, shape, ledger, progress)
    began = time.monotonic()
    churn = NetworkChurn(config, options, loads, ledger)
    injector = Injector(schedule, progress.say, churn).start()
    try:
        while time.monotonic() - began < options.duration_s:
            time.sleep(1.0)
            progress.tick(lambda: f"acknowledged {ledger.counts()}, "
                          f"{len(injector.applied())} faults")
    finally:
        injector.stop()
    loaded_s = time.monotonic() - began
    for background in list(loads.running.values()):  # each finishes what it is doing
        background.stop(BLOB_FINAL_TIMEOUT_S)
    progress.say(f"load stopped after {loaded_s:.0f} s; settling")
    readback = settle_and_read(config, options, loads, ledger, progress)
    readback.chains.update(churn.retired)
    readback.retired.update(churn.retired)
    result = audit(ledger, readback)
    load = {name: b.window(began, time.monotonic())
            for name, b in list(loads.running.items())}
    for transfers in loads.transfers:
        load[f"transfers-{transfers.network_id}"].update(
            resends=transfers.resends, refused=transfers.refused,
            unresolved=transfers.unresolved)
    for evm in loads.evm:
        load[f"evm-{evm.network_id}"].update(resends=evm.resends)
    applied = injector.applied()
    kinds = {f.kind for f in schedule}
    return {"job": "chaos", "seed": options.seed, "duration_s": options.duration_s,
            "groups": {g.name: {"kind": g.kind, "members": len(g.members),
                                "rule": g.rule.value, "max_down": g.max_down}
                       for g in shape.groups},
            "faults_scheduled": count_by(schedule, "kind", "action"),
            "faults_injected": _count(applied, "kind", "action"),
            "faults_beyond_rule": sum(1 for e in applied if e["phase"] == 2),
            "faults_failed": sum(1 for e in injector.log if not e["ok"]),
            "kinds_hit": sorted({e["kind"] for e in applied}), "kinds_scheduled": sorted(kinds),
            "load": load, **result.to_dict(),
            "read_errors": read_errors(loads, began), "fault_log": injector.log,
            "errors": 0 if result.ok else 1}


def read_errors(loads: Loads, began: float) -> list[dict]:
    """Why acknowledged files and blobs did not read back (a few), with when each blob
    was FINALIZED, to set beside the fault log."""
    out: list[dict] = []
    if loads.uploads:
        out += [{"kind": "file", "id": i, "error": e}
                for i, e in list(loads.uploads.read_errors.items())[:EXAMPLE_ERRORS]]
    if loads.blobs:
        out += [{"kind": "blob", "id": i, "error": e, "finalized_t_s": round(
                 loads.blobs.finalized_at[i] - began, 2)}
                for i, e in list(loads.blobs.read_errors.items())[:EXAMPLE_ERRORS]]
    return out


def _count(entries: list[dict], *fields: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in entries:
        key = "/".join(str(entry[f]) for f in fields)
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def settle_and_read(config: Config, options: ChaosOptions, loads: Loads, ledger: Ledger,
                    progress: Progress) -> Readback:
    """Let the txpools drain and the providers settle, then read everything back."""
    from zg_actors.compute.params import SERVING_NETWORK_ID
    from zg_actors.staking.actors import STAKING_ACTOR_NAME

    manager = ray.get_actor(NETWORK_MANAGER_NAME)
    deadline = time.monotonic() + options.settle_s
    if loads.inference:
        loads.inference.settle()
    readback = Readback()
    for network_id in _call(manager.active_networks.remote()):
        handles = _call(manager.validator_handles.remote(network_id))
        wait_drained(list(handles.values()), deadline)
        readback.live[network_id] = is_live(list(handles.values()))
        copies = []
        for identity, handle in sorted(handles.items()):
            copy, raws = read_chain(validator_name(network_id, identity), handle)
            copies.append(copy)
            if network_id == SERVING_NETWORK_ID and identity == min(handles):
                readback.paid = settled_traces(handle, raws)
        readback.chains[network_id] = copies
    progress.say(f"read {sum(len(c) for c in readback.chains.values())} validator stores")
    if loads.uploads:
        readback.files = {i: loads.uploads.read(i) for i in list(ledger.files)}
    if loads.blobs:
        readback.blobs = {i: loads.blobs.read(i) for i in list(ledger.blobs)}
    if loads.kv:
        readback.kv = loads.kv.read_back(config, max(deadline, time.monotonic()
                                                     + LIVENESS_BOUND_S))
    for evm in loads.evm:
        readback.evm.update(evm.read_back())
    supply = _call(ray.get_actor(STAKING_ACTOR_NAME).supply_report.remote())
    readback.supply_ok = bool(supply["invariants_ok"])
    readback.supply_problems = [str(p) for p in supply.get("problems", [])]
    return readback
