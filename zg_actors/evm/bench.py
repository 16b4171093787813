"""`zg bench evm`: committed Ethereum tx/s through the JSON-RPC, beside py-evm alone.

After 0glabs/evmchainbench: two kinds of signed raw txs, native (EVM value) transfers and
ERC-20 `transfer` calls on a Vyper token (evm/contracts.py, compiled in-process with the
`vyper` package).

1. The anchor, in this process, in the same run: the very txs the network gets, decoded
   (sender recovery) and applied by the network's state machine (build_block, the
   proposer's path: each tx applied to one py-evm state kept open across the block, the
   trie root once per block, as docs/spec/evm.md says py-evm must be driven), no actors,
   no consensus, no HTTP.
2. The network: a fresh 4-validator network on the embedded Ray with its JSON-RPC on Ray
   Serve; the same txs sent as batched `eth_sendRawTransaction` requests, at most
   WINDOW_BLOCKS full blocks of them accepted and not yet committed, for up to --duration
   seconds per kind. A watcher polls `eth_getBlockByNumber` and stamps each tx when its
   block is seen: committed tx/s (first send -> last commit seen) and commit latency
   p50/p99 (send -> block seen).
3. Each kind's figure as a ratio to its anchor, against the issue's aim RATIO_AIM (four
   validators sharing two cores bound it at 0.5x), and beside 0G's published figures.

Native senders are the first half of the funded devnet accounts, ERC-20 senders the
second half (each deploys its own token at nonce 0), so that a kind cut short by
--duration leaves no nonce gap for the other.
"""

from __future__ import annotations

import gc
import json
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
from eth_account import Account as EthAccount
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address
from rich.console import Console
from rich.table import Table

from zg_actors.chain.execution import tune_gc_for_execution
from zg_actors.chain.modules.base import BlockInfo
from zg_actors.chain.network import build_state_machine
from zg_actors.chain.tx import decode_tx
from zg_actors.config import Config
from zg_actors.crypto.devkeys import load_account
from zg_actors.errors import InvalidInput
from zg_actors.evm.contracts import erc20
from zg_actors.workload import error_kind, percentile

KINDS = ("native", "erc20")
# 0glabs/evmchainbench README (docs/spec/evm.md "Published figures"): simple transfers/s
# and ERC-20 transfers/s on 0G.
PUBLISHED_TX_PER_S = {"native": 769, "erc20": 369}
RATIO_AIM = 0.3  # issue 19: at least 0.3x the single-process figure for each kind
GWEI = 10**9
# The base fee rises 12.5% per full block and the run fills every block: 50 gwei was under
# it after ~33 of them (the anchor, which runs both kinds on one chain without empty blocks
# between, then found no tx it could include). 10^6 gwei lasts ~117 full blocks; a tx pays
# the base fee plus the tip, not this cap, and 1M ZG covers the cap's upfront check.
MAX_FEE_PER_GAS = 10**6 * GWEI
PRIORITY_FEE_PER_GAS = GWEI // 10
TRANSFER_GAS = 21_000
ERC20_TRANSFER_GAS = 80_000  # the Vyper transfer uses about 35-52k; the rest is refunded
ERC20_DEPLOY_GAS = 2_000_000
TOKEN_SUPPLY = 10**30
TOKEN_AMOUNT = 1  # token units per transfer
TRANSFER_VALUE = 1  # wei per native transfer
TRANSFER_SELECTOR = function_signature_to_4byte_selector("transfer(address,uint256)")
# Per kind: about 40 s of each on the 2-core machine (native ~770 tx/s, ERC-20 ~260), so
# that the pipeline's fill before the first commit (~2 s, counted in the whole-run rate)
# weighs ~5% (evmchainbench counts over spans of 50 s or more); 10,000 native were 13 s.
DEFAULT_TXS = {"native": 30_000, "erc20": 10_000}
DEFAULT_DURATION_S = 60.0  # longest a kind is offered to the network
# Accepted but not yet seen committed, per kind: this many full blocks of its txs (as the
# anchor packs them, to the block gas limit: 1,428 native transfers, ~580 ERC-20 ones), so
# that the proposer's mempool holds the next full block while one commits (a window of
# 1,500 for both kinds left native blocks two-thirds full). evmchainbench bounds its
# sender alike, by a mempool size that each committed block raises.
WINDOW_BLOCKS = 2
BATCH_TXS = 500  # eth_sendRawTransaction requests per HTTP batch: Serve's proxy and replica
# spend ~2 ms of CPU per HTTP request, CPU the validators need (against 150: +5-8% tx/s)
SEND_THREADS = 2  # batches in flight at once: one travels while the next is answered.
# 8 committed no more here (64 vs 63 native tx/s) and raised p50 latency from 1.6 s to 13 s:
# the RPC answers a batch of 50 in about 1.5 s, one submit at a time, on the validators' cores
POLL_S = 0.1  # the block watcher's interval: each poll is an HTTP request (see BATCH_TXS);
# a commit is seen 0.05 s late on average
QUIET_FRACTION = 0.5  # of the last gap between blocks, waited before polling for the next
SETTLE_TIMEOUT_S = 60.0  # after the offer stops, how long sent txs may take to commit
HTTP_TIMEOUT_S = 60.0
RECEIPT_TIMEOUT_S = 90.0
SAMPLE_RECEIPTS = 20  # receipts per kind checked for status 1 after the run



class EvmBenchError(InvalidInput):
    """The bench could not run as planned (a tx refused by the anchor, a deploy failed)."""

    code = "EVM_BENCH_FAILED"


def compile_erc20() -> dict[str, Any]:
    """The token's ABI and init bytecode, compiled in this process (no compiler download)."""
    return erc20()


def contract_address(sender: bytes, nonce: int) -> bytes:
    """Where a CREATE by `sender` at `nonce` puts the contract."""
    import rlp

    return keccak(rlp.encode([sender, nonce]))[12:]


def recipient(index: int) -> bytes:
    """The index-th receiver: fresh addresses, as evmchainbench's transfers go to."""
    return keccak(b"zg-bench-evm-recipient" + index.to_bytes(8, "big"))[:20]


def erc20_transfer_data(to: bytes, amount: int) -> bytes:
    return TRANSFER_SELECTOR + to.rjust(32, b"\0") + amount.to_bytes(32, "big")


def sign(key: Any, chain_id: int, nonce: int, to: bytes | None, gas: int, value: int = 0,
         data: bytes = b"") -> bytes:
    """An EIP-1559 tx signed as a wallet signs it (eth-account)."""
    fields: dict[str, Any] = {"type": 2, "chainId": chain_id, "nonce": nonce, "gas": gas,
                              "value": value, "data": data, "maxFeePerGas": MAX_FEE_PER_GAS,
                              "maxPriorityFeePerGas": PRIORITY_FEE_PER_GAS}
    if to is not None:
        fields["to"] = to_checksum_address(to)
    return bytes(key.sign_transaction(fields).raw_transaction)


@dataclass
class BenchTxs:
    """Every signed tx of one run: the ERC-20 deploys, then the transfers of each kind."""

    chain_id: int
    deploys: list[bytes]
    transfers: dict[str, list[bytes]]


def split_senders(accounts: int) -> dict[str, list[int]]:
    """Native senders: the first half of the funded accounts; ERC-20: the second half."""
    if accounts < 2:
        raise EvmBenchError(f"networks.load_accounts is {accounts}: the bench needs at "
                            "least 2 funded accounts (one per kind)")
    half = accounts // 2
    return {"native": list(range(half)), "erc20": list(range(half, 2 * half))}


def make_txs(seed: str, chain_id: int, accounts: int, counts: Mapping[str, int],
             init_code: bytes) -> BenchTxs:
    """`counts[kind]` txs of each kind, round-robin over that kind's senders (a batch
    carries one nonce of many senders), each sender's nonces from 0 at genesis."""
    senders = split_senders(accounts)
    keys = {i: EthAccount.from_key(load_account(seed, i).secret) for s in senders.values()
            for i in s}
    deploy_data = init_code + TOKEN_SUPPLY.to_bytes(32, "big")  # constructor(supply)
    deploys = [sign(keys[i], chain_id, 0, None, ERC20_DEPLOY_GAS, data=deploy_data)
               for i in senders["erc20"]]
    tokens = {i: contract_address(bytes.fromhex(keys[i].address[2:]), 0)
              for i in senders["erc20"]}
    transfers: dict[str, list[bytes]] = {kind: [] for kind in KINDS}
    for n in range(counts["native"]):
        i = senders["native"][n % len(senders["native"])]
        nonce = n // len(senders["native"])
        transfers["native"].append(sign(keys[i], chain_id, nonce, recipient(n),
                                        TRANSFER_GAS, value=TRANSFER_VALUE))
    for n in range(counts["erc20"]):
        i = senders["erc20"][n % len(senders["erc20"])]
        nonce = 1 + n // len(senders["erc20"])  # nonce 0 deployed the sender's token
        transfers["erc20"].append(sign(keys[i], chain_id, nonce, tokens[i], ERC20_TRANSFER_GAS,
                                       data=erc20_transfer_data(recipient(n), TOKEN_AMOUNT)))
    return BenchTxs(chain_id, deploys, transfers)


# ---- the anchor: py-evm in this process --------------------------------------------------
def anchor_rates(config: Config, network_id: int, txs: BenchTxs) -> dict[str, dict]:
    """Each kind's txs decoded and applied by network `network_id`'s state machine from
    its genesis, in blocks as full as its limits allow (the deploys first, untimed)."""
    machine = build_state_machine(config, network_id)
    state: dict[bytes, bytes] = dict(machine.genesis({}.get).writes())
    chain = {"root": b"\x00" * 32, "height": 0}

    def apply(raws: list[bytes]) -> tuple[int, int]:
        """Blocks made, and the most txs one held."""
        pending = [decode_tx(raw) for raw in raws]
        blocks = fullest = 0
        while pending:
            chain["height"] += 1
            height = chain["height"]
            included, rejected, result = machine.build_block(
                state.get, BlockInfo(network_id, height, height, bytes(20)), pending,
                chain["root"])
            if rejected:
                tx, error = rejected[0]
                raise EvmBenchError(f"the anchor refused tx 0x{tx.hash.hex()}: {error}")
            if not included:
                raise EvmBenchError(
                    f"the anchor could include none of {len(pending)} txs at height {height} "
                    "(a nonce gap, or fee caps under the base fee)", height=height)
            failed = [r for r in result.receipts if not r.ok]
            if failed:  # a reverted transfer would measure the wrong work
                raise EvmBenchError(f"tx 0x{failed[0].tx_hash.hex()} failed in the anchor: "
                                    f"{failed[0].error}")
            for key, value in result.overlay.writes():
                state[key] = value
            chain["root"] = result.state_root
            done = {tx.hash for tx in included}
            pending = [tx for tx in pending if tx.hash not in done]
            blocks += 1
            fullest = max(fullest, len(included))
        return blocks, fullest

    apply(txs.deploys)
    rates = {}
    # With the collector settings the validators run with, so that the anchor stays the
    # limit on this machine.
    thresholds = tune_gc_for_execution()
    try:
        for kind in KINDS:
            start = time.perf_counter()
            blocks, fullest = apply(txs.transfers[kind])
            seconds = time.perf_counter() - start
            count = len(txs.transfers[kind])
            rates[kind] = {"txs": count, "blocks": blocks, "full_block_txs": fullest,
                           "seconds": seconds, "tx_per_s": count / max(seconds, 1e-9)}
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    return rates


# ---- the network: JSON-RPC over HTTP -----------------------------------------------------
class EthRpc:
    """A JSON-RPC client (one HTTP session per thread); a batch answers in request order."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def batch(self, calls: Sequence[tuple[str, list]]) -> list[dict]:
        return self.post_batch([request_json(i, m, p) for i, (m, p) in enumerate(calls)])

    def post_batch(self, requests_json: Sequence[bytes]) -> list[dict]:
        """A batch of encoded request objects (request_json); the answers by id."""
        answers = self._session().post(
            self.url, data=b"[" + b",".join(requests_json) + b"]", timeout=HTTP_TIMEOUT_S,
            headers={"Content-Type": "application/json"}).json()
        if not isinstance(answers, list):  # the whole batch refused
            raise EvmBenchError(f"batch refused: {answers}")
        if not all(isinstance(a, dict) and isinstance(a.get("id"), int) for a in answers):
            raise EvmBenchError(f"batch answered without numeric ids: {answers[:2]}")
        return sorted(answers, key=lambda a: a["id"])

    def call(self, method: str, params: list) -> Any:
        [answer] = self.batch([(method, params)])
        if "error" in answer:
            raise EvmBenchError(f"{method}: {answer['error']}")
        return answer["result"]


def poll_delay(now: float, last_seen: float | None, gap: float) -> float:
    """Seconds until the watcher asks for the next block: POLL_S, or longer while less than
    QUIET_FRACTION of `gap` (the last gap between blocks seen) has passed since the last
    block was seen at `last_seen`."""
    if last_seen is None:
        return POLL_S
    return max(POLL_S, last_seen + QUIET_FRACTION * gap - now)


class BlockWatcher:
    """Stamps each tx hash with the time its block was first seen (eth_getBlockByNumber)."""

    def __init__(self, rpc: EthRpc, clock: Callable[[], float] = time.monotonic) -> None:
        self.rpc = rpc
        self.clock = clock
        self.seen: dict[str, float] = {}
        self.height = int(rpc.call("eth_blockNumber", []), 16)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="zg-bench-evm-blocks",
                                        daemon=True)

    def start(self) -> BlockWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(HTTP_TIMEOUT_S)

    def _run(self) -> None:
        """One call per poll: the block after the last one seen (null until it commits);
        once one comes, the next is asked for at once. Between blocks it first waits
        QUIET_FRACTION of the last gap between blocks seen, then polls every POLL_S (a
        block sooner than that is seen late, which can only lower the figures)."""
        last_seen: float | None = None
        gap = 0.0
        while not self._stop.is_set():
            try:
                block = self.rpc.call("eth_getBlockByNumber", [hex(self.height + 1), False])
                if block is not None:
                    now = self.clock()
                    for tx_hash in block["transactions"]:
                        self.seen.setdefault(tx_hash, now)
                    self.height += 1
                    gap, last_seen = (now - last_seen if last_seen is not None else 0.0), now
                    continue
            except (requests.RequestException, EvmBenchError, KeyError, TypeError):
                pass  # the next poll asks again
            self._stop.wait(poll_delay(self.clock(), last_seen, gap))


def tx_hash_of(raw: bytes) -> str:
    return "0x" + keccak(raw).hex()


def request_json(request_id: int, method: str, params: list) -> bytes:
    """One JSON-RPC request object, encoded."""
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                       "params": params}, separators=(",", ":")).encode()


def send_stream(rpc: EthRpc, raws: list[bytes], duration_s: float,
                say: Callable[[str], None], window: int,
                clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Send `raws` in batches, while at most `window` accepted txs are not seen committed
    (the SEND_THREADS batches in flight come on top), for up to duration_s; then wait for
    what was accepted to commit. Committed tx/s and latency p50/p99 as the client sees
    them; refusals counted by Geth's words."""
    # Encoded and hashed before the clock starts, as evmchainbench prepares its txs: on this
    # machine the client's CPU is the network's.
    encoded = [request_json(i, "eth_sendRawTransaction", ["0x" + raw.hex()])
               for i, raw in enumerate(raws)]
    hashes = [tx_hash_of(raw) for raw in raws]
    watcher = BlockWatcher(rpc, clock).start()
    sent: dict[str, float] = {}
    errors: dict[str, int] = {}
    lock = threading.Lock()

    def send(first: int, last: int) -> None:
        at = clock()
        try:
            answers = rpc.post_batch(encoded[first:last])
            if [a.get("id") for a in answers] != list(range(first, last)):
                raise EvmBenchError(f"batch of requests {first}-{last - 1} answered ids "
                                    f"{[a.get('id') for a in answers][:5]}...")
        except (requests.RequestException, EvmBenchError, ValueError) as exc:
            with lock:
                key = error_kind(exc)
                errors[key] = errors.get(key, 0) + last - first
            return
        with lock:
            for tx_hash, answer in zip(hashes[first:last], answers, strict=True):
                if "error" in answer:
                    key = answer["error"].get("message", str(answer["error"]))
                    errors[key] = errors.get(key, 0) + 1
                else:
                    sent[tx_hash] = at

    start = clock()
    next_report = start + 5.0
    offset = 0
    try:
        with ThreadPoolExecutor(SEND_THREADS, thread_name_prefix="zg-bench-evm-send") as pool:
            inflight: set = set()
            while offset < len(raws) and clock() - start < duration_s:
                inflight = {f for f in inflight if not f.done()}
                # The network runs only the bench's txs: every tx in a block is one of ours
                # (counting them one by one would take CPU from the validators).
                uncommitted = len(sent) - len(watcher.seen)
                batch = min(BATCH_TXS, window, len(raws) - offset)
                if len(inflight) >= SEND_THREADS or uncommitted + batch > window:
                    time.sleep(POLL_S / 5)
                else:
                    inflight.add(pool.submit(send, offset, offset + batch))
                    offset += batch
                if clock() >= next_report:
                    say(f"  t={clock() - start:5.1f}s  {min(offset, len(raws))} sent, "
                        f"{len(watcher.seen)} committed, {sum(errors.values())} refused")
                    next_report += 5.0
        offered_s = clock() - start
        deadline = clock() + SETTLE_TIMEOUT_S
        while clock() < deadline and any(h not in watcher.seen for h in list(sent)):
            time.sleep(POLL_S)
    finally:
        watcher.stop()
    report = stream_report(sent, watcher.seen, errors, offered_s)
    report["_seen"] = set(watcher.seen)  # for the caller's receipt check, not reported
    return report


def stream_report(sent: dict[str, float], seen: dict[str, float], errors: dict[str, int],
                  offered_s: float) -> dict[str, Any]:
    """Committed tx/s two ways: over the whole run (first send -> last commit seen: the
    pipeline's fill counts) and sustained, as evmchainbench counts it (the txs of the
    blocks after the first one seen, over the time from that block to the last one:
    what the network commits once it runs full); latency send -> block seen."""
    committed = {h: seen[h] - at for h, at in sent.items() if h in seen}
    span = (max(seen[h] for h in committed) - min(sent.values())) if committed else 0.0
    latencies = list(committed.values())
    # Blocks seen at one poll share its time: one observation of the chain each.
    per_poll: dict[float, int] = {}
    for h in committed:
        per_poll[seen[h]] = per_poll.get(seen[h], 0) + 1
    polls = sorted(per_poll)
    sustained_span = polls[-1] - polls[0] if len(polls) > 1 else 0.0
    sustained_txs = len(committed) - per_poll[polls[0]] if polls else 0
    return {"sent": len(sent), "committed": len(committed),
            "uncommitted": len(sent) - len(committed), "offered_s": offered_s,
            "seconds": span, "tx_per_s": len(committed) / span if span > 0 else 0.0,
            "sustained_seconds": sustained_span, "sustained_txs": sustained_txs,
            "sustained_tx_per_s": (sustained_txs / sustained_span if sustained_span > 0
                                   else 0.0),
            "latency_p50_s": percentile(latencies, 50),
            "latency_p99_s": percentile(latencies, 99),
            "refused": sum(errors.values()), "errors": errors}


def wait_receipts(rpc: EthRpc, hashes: list[str], timeout_s: float = RECEIPT_TIMEOUT_S
                  ) -> list[dict]:
    """The receipts of `hashes` once all exist."""
    deadline = time.monotonic() + timeout_s
    while True:
        answers = rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
        receipts = [a.get("result") for a in answers]
        if all(receipts):
            return receipts
        if time.monotonic() > deadline:
            missing = [h for h, r in zip(hashes, receipts, strict=True) if not r]
            raise EvmBenchError(f"{len(missing)} receipts missing after {timeout_s:.0f} s, "
                                f"e.g. {missing[0]}")
        time.sleep(0.2)


def check_statuses(rpc: EthRpc, raws: list[bytes], what: str) -> None:
    """Committed is not enough: the txs must have succeeded (status 1)."""
    if not raws:
        return
    hashes = [tx_hash_of(raw) for raw in raws]
    failed = [h for h, r in zip(hashes, wait_receipts(rpc, hashes), strict=True)
              if r["status"] != "0x1"]
    if failed:
        raise EvmBenchError(f"{len(failed)} of {len(hashes)} {what} failed, e.g. {failed[0]}")


def window_txs(anchor: dict[str, dict]) -> dict[str, int]:
    """Per kind, the txs sent and not yet seen committed at most: WINDOW_BLOCKS of the
    fullest block the anchor made of them."""
    return {kind: WINDOW_BLOCKS * a["full_block_txs"] for kind, a in anchor.items()}


def measure_network(url: str, txs: BenchTxs, duration_s: float, windows: dict[str, int],
                    say: Callable[[str], None]) -> dict[str, dict]:
    """The deploys (untimed, checked), then each kind streamed through the JSON-RPC, at
    most windows[kind] txs uncommitted."""
    rpc = EthRpc(url)
    chain_id = int(rpc.call("eth_chainId", []), 16)
    if chain_id != txs.chain_id:
        raise EvmBenchError(f"{url} has chain id {chain_id}, the txs are for {txs.chain_id}")
    say(f"deploying {len(txs.deploys)} ERC-20 tokens")
    answers = rpc.batch([("eth_sendRawTransaction", ["0x" + raw.hex()]) for raw in txs.deploys])
    refused = [a["error"] for a in answers if "error" in a]
    if refused:
        raise EvmBenchError(f"deploy refused: {refused[0]}")
    check_statuses(rpc, txs.deploys, "deploys")
    reports = {}
    for kind in KINDS:
        raws = txs.transfers[kind]
        say(f"[bold]{kind}[/]: {len(raws)} signed txs, at most {windows[kind]} uncommitted "
            f"({WINDOW_BLOCKS} full blocks), for up to {duration_s:.0f} s")
        reports[kind] = send_stream(rpc, raws, duration_s, say, windows[kind])
        committed = [raw for raw in raws if tx_hash_of(raw) in reports[kind]["_seen"]]
        check_statuses(rpc, committed[-SAMPLE_RECEIPTS:], f"{kind} transfers (sampled)")
        del reports[kind]["_seen"]
    return reports


# ---- the report --------------------------------------------------------------------------
def assemble_report(network: dict[str, dict], anchor: dict[str, dict], config: dict[str, Any]
                    ) -> dict[str, Any]:
    """Per kind: the network's figures, the anchor's, their ratios (whole run, and
    sustained as evmchainbench counts), the aim met or not (on the whole run's ratio, the
    stricter: it counts the pipeline's fill), and 0G's published figure (a sustained one);
    `ok` when every kind met the aim."""
    kinds = {}
    for kind in KINDS:
        per_s = max(anchor[kind]["tx_per_s"], 1e-9)
        ratio = network[kind]["tx_per_s"] / per_s
        kinds[kind] = {"network": network[kind], "anchor": anchor[kind], "ratio": ratio,
                       "sustained_ratio": network[kind].get("sustained_tx_per_s", 0.0) / per_s,
                       "aim": RATIO_AIM, "aim_met": ratio >= RATIO_AIM,
                       "published_0g_tx_per_s": PUBLISHED_TX_PER_S[kind]}
    return {"kinds": kinds, "ok": all(k["aim_met"] for k in kinds.values()), "config": config}


def format_report(report: dict[str, Any]) -> Table:
    table = Table(title="zg bench evm: 4 validators, signed raw txs through the JSON-RPC")
    for column in ("kind", "committed tx/s (whole run)", "sustained tx/s", "p50 latency",
                   "p99 latency", "py-evm alone tx/s", "ratio (sustained)",
                   f"aim {RATIO_AIM}x", "0G published tx/s"):
        table.add_column(column, justify="right")
    for kind, k in report["kinds"].items():
        net = k["network"]

        def secs(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f} s"

        table.add_row(kind, f"{net['tx_per_s']:.0f} ({net['committed']} txs)",
                      f"{net.get('sustained_tx_per_s', 0.0):.0f}",
                      secs(net["latency_p50_s"]), secs(net["latency_p99_s"]),
                      f"{k['anchor']['tx_per_s']:.0f}",
                      f"{k['ratio']:.2f}x ({k['sustained_ratio']:.2f}x)",
                      "met" if k["aim_met"] else "not met", str(k["published_0g_tx_per_s"]))
    return table


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_evm_bench(config: Config, duration_s: float = DEFAULT_DURATION_S,
                  txs: Mapping[str, int] = DEFAULT_TXS, quiet: bool = False, table: bool = True,
                  console: Console | None = None) -> dict[str, Any]:
    """The whole bench on the embedded Ray, in a temporary data dir removed after; progress
    on `console` (stderr) unless quiet, and the table unless `table` is False."""
    from ray import serve

    from zg_actors import runtime
    from zg_actors.evm.serve import start_evm_rpc, stop_all_evm_rpc

    for kind in KINDS:
        if (count := txs.get(kind, 0)) < 1:
            raise EvmBenchError(f"--txs must be >= 1 for each kind, got {count} for {kind}",
                                kind=kind, value=count)
    if not duration_s > 0:
        raise EvmBenchError(f"--duration must be > 0 seconds, got {duration_s}",
                            value=duration_s)
    console = console or Console(stderr=True)
    say = (lambda *_: None) if quiet else console.print
    data_dir = tempfile.mkdtemp(prefix="zg-bench-evm-")
    config = config.replace(**{"data_dir": data_dir, "networks.evm.rpc_port": free_port()})
    runtime.connect(config, None)
    try:
        deployment = runtime.deploy(config, detached=False)
        network_id = runtime.call(deployment.manager.launch_network.remote(4), 300)["network_id"]
        say(f"signing {', '.join(f'{txs[kind]:,} {kind}' for kind in KINDS)} txs "
            f"(eth-account) for network {network_id}")
        compiled = compile_erc20()
        signed = make_txs(config.devnet.key_seed, config.networks.evm.chain_id(network_id),
                          config.networks.load_accounts, txs,
                          bytes.fromhex(compiled["bytecode"].removeprefix("0x")))
        say("[bold]anchor[/]: the same txs applied to py-evm in this process (the state "
            "machine's build_block, root once per block)")
        anchor = anchor_rates(config, network_id, signed)
        for kind, a in anchor.items():
            say(f"  {kind}: {a['tx_per_s']:,.0f} tx/s ({a['txs']} txs, {a['blocks']} blocks)")
        url = start_evm_rpc(config, network_id)
        say(f"network {network_id}: 4 validators, JSON-RPC at {url}")
        windows = window_txs(anchor)
        network = measure_network(url, signed, duration_s, windows, say)
    finally:
        stop_all_evm_rpc()
        serve.shutdown()
        runtime.teardown()
        runtime.shutdown()
        shutil.rmtree(data_dir, ignore_errors=True)
    report = assemble_report(network, anchor, {
        "txs_per_kind": dict(txs), "duration_s": duration_s, "window_txs": windows,
        "batch_txs": BATCH_TXS, "block_interval_s": config.networks.block_interval_s,
        "max_block_txs": config.networks.max_block_txs,
        "block_gas_limit": config.networks.evm.block_gas_limit})
    if table:
        console.print(format_report(report))
        console.print(
            f"anchor: the same signed txs decoded (sender recovery) and applied to py-evm "
            f"by the state machine in one process, trie root once per block; aim: network "
            f">= {RATIO_AIM}x the anchor per kind over the whole run (4 validators on this "
            f"machine's cores); sustained: the blocks after the first, as evmchainbench "
            f"counts. 0G's figures: 0glabs/evmchainbench README, for reference only.")
    return report
