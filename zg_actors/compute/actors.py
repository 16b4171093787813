"""ComputeProvider: one provider's Ray actor (thin shell over book.py and model.py).

It registers its service, serves requests with the model, signs every response, keeps
each signed receipt in LMDB before answering, and settles receipts in batches when the
unsettled amount passes a threshold, on an interval, or when a user's refund is about
to unlock.  Restarted by Ray, it reloads its receipts and settles what the chain has not
paid yet: each request is paid exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import ray

from zg_actors.chain.client import ChainClient
from zg_actors.compute.accounts import provider_account
from zg_actors.compute.book import Prices, ProviderBook
from zg_actors.compute.errors import ComputeInsufficientBalance, InvalidServiceCall
from zg_actors.compute.ledger import SubAccount
from zg_actors.compute.model import CONTEXT_TOKENS, Completion, TextModel
from zg_actors.compute.params import (
    MS_PER_S,
    SERVING_MODULE,
    SERVING_NETWORK_ID,
    TRACES_PER_TX_MAX,
)
from zg_actors.compute.request import Receipt, Request, make_receipt
from zg_actors.compute.sdk import send_serving_tx
from zg_actors.compute.settlement import SettlementStatus
from zg_actors.config import ZG, Config, config_from_dict
from zg_actors.crypto.accounts import recover_address
from zg_actors.crypto.encoding import EncodingError, as_bytes, as_int, as_list, decode, encode
from zg_actors.crypto.keccak import keccak256
from zg_actors.errors import InvalidInput, InvalidSignature, Unavailable
from zg_actors.metrics import COMPUTE_METRICS, Metrics
from zg_actors.placement import PROVIDER_RESOURCE, node_data_dir, role_options
from zg_actors.store import Store, u64

log = logging.getLogger(__name__)

SERVICE_TYPE = "chatbot"
CHECK_INTERVAL_S = 1.0  # how often the settlement triggers are looked at
REFUND_MARGIN_MS = 60 * MS_PER_S  # settle a user whose refund unlocks within this
DBS = ("receipts", "nonces", "rejected")


def provider_name(index: int) -> str:
    return f"zg-compute-provider-{index}"


def _receipt_key(user: bytes, nonce: int) -> bytes:
    return user + u64(nonce)


@ray.remote(max_restarts=-1, max_task_retries=0)
class ComputeProvider:
    """One provider: model, request log and unsettled receipts (LMDB)."""

    def __init__(self, config_dict: dict, index: int, data_dir: str,
                 model_roots: list[bytes] | None = None) -> None:
        """`model_roots`: load the model from 0G Storage, the GGUF file whose fragments
        have these file roots (fetched and verified first), instead of the installed one."""
        self.config = config_from_dict(config_dict)
        self.compute = self.config.compute
        self.index = index
        self.account = provider_account(self.config.devnet.key_seed, index)
        self.address = self.account.address
        directory = (node_data_dir(data_dir, self.config.data_dir_per_node) / "compute"
                     / f"provider-{index}")
        self.store = Store(directory, DBS, self.config.lmdb_map_mb)
        self.model_roots = list(model_roots or [])
        weights = fetch_model(self.config, self.model_roots, directory) \
            if self.model_roots else None
        self.book = ProviderBook(self.address)
        for _, raw in self.store.items("receipts"):
            self.book.record(Receipt.decode(raw))
        for user, raw in self.store.items("nonces"):
            fields = as_list(decode(raw), 2)
            nonce, request_hash = as_int(fields[0]), as_bytes(fields[1])
            if nonce > self.book.last_nonce[user]:  # admitted, then the actor died unanswered
                self.book.last_nonce[user] = nonce
                self.book.unanswered[user] = request_hash
        self.recovered = self.book.count_unsettled()
        self.model = TextModel(threads=self.compute.model_threads, path=weights)
        self.prices = Prices(self.compute.input_price, self.compute.output_price)
        self.chain = ChainClient(SERVING_NETWORK_ID, prefer=index)
        self._subs: dict[bytes, tuple[float, SubAccount]] = {}  # {user: (read at, account)}
        self._settle_lock = asyncio.Lock()
        self._loop: asyncio.Task | None = None
        self._last_settle = time.time()
        self.stats = {"served": 0, "prompt_tokens": 0, "completion_tokens": 0, "fees": 0,
                      "settled_requests": 0, "paid": 0, "unpaid": 0, "settlement_txs": 0,
                      "rejected_traces": 0, "errors": []}
        self.metrics = Metrics(COMPUTE_METRICS, provider=index)
        self._unsettled_changed()

    # ---- lifecycle ----------------------------------------------------------------------
    async def start(self) -> dict:
        """Register (or update) the service on network 0 and start the settlement timer."""
        wanted = {"service_type": SERVICE_TYPE, "endpoint": provider_name(self.index),
                  "model": self.model.name, "verifiability": "none",
                  "input_price": self.prices.input_price,
                  "output_price": self.prices.output_price}
        services = await self.chain.query(SERVING_MODULE, "services")
        current = next((s for s in services if s["provider"] == self.address), None)
        if current is None or any(current[k] != v for k, v in wanted.items()):
            await send_serving_tx(self.chain, self.account, "add_service", [
                wanted["service_type"], wanted["endpoint"], wanted["model"],
                wanted["verifiability"], wanted["input_price"], wanted["output_price"], ""])
        if self._loop is None or self._loop.done():
            self._loop = asyncio.get_running_loop().create_task(self._run())
        return await self.status()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(CHECK_INTERVAL_S)
            if await self._settlement_due():
                try:
                    await self.settle_now()
                except Exception as exc:  # chain busy or a validator restarting: next check
                    self._note(f"settlement failed: {exc}")

    async def _settlement_due(self) -> bool:
        if not self.book.unsettled:
            return False
        if self.book.total_unsettled() >= self.compute.settle_threshold:
            return True
        if time.time() - self._last_settle >= self.compute.settle_interval_s:
            return True
        # A user's refund that unlocks soon stops backing what we served: settle first.
        # (Sub-accounts are re-read at most every account_cache_s, so a retrieve is seen.)
        soon = time.time() * MS_PER_S + REFUND_MARGIN_MS
        for user in list(self.book.unsettled):
            sub = await self._sub_account(user)
            if any(r.unlock_at_ms <= soon for r in sub.refunds):
                return True
        return False

    def _note(self, message: str) -> None:
        log.warning("provider %d: %s", self.index, message)
        self.stats["errors"] = [*self.stats["errors"][-9:], message]

    # ---- serving ------------------------------------------------------------------------
    async def _sub_account(self, user: bytes, fresh: bool = False) -> SubAccount:
        cached = self._subs.get(user)
        if cached and not fresh and time.time() - cached[0] < self.compute.account_cache_s:
            return cached[1]
        data = await self.chain.query(SERVING_MODULE, "sub_account", user, self.address)
        sub = SubAccount() if data is None else SubAccount.from_dict(data)
        self._subs[user] = (time.time(), sub)
        return sub

    def _check_request(self, request: Request, signature: bytes, text: str) -> None:
        if request.provider != self.address:
            raise InvalidInput(f"request is for provider 0x{request.provider.hex()}, this is "
                               f"0x{self.address.hex()}", provider=request.provider)
        if request.network_id != SERVING_NETWORK_ID:
            raise InvalidInput(f"request is for network {request.network_id}, settlement is on "
                               f"network {SERVING_NETWORK_ID}", network_id=request.network_id)
        if request.input_hash != keccak256(text.encode()):
            raise InvalidInput("request's input hash does not match its text",
                               input_hash=request.input_hash)
        try:
            signer = recover_address(request.hash, signature)
        except InvalidSignature as exc:
            raise InvalidSignature(f"request signature is malformed: {exc}",
                                   user=request.user) from exc
        if signer != request.user:
            raise InvalidSignature(f"request is signed by 0x{signer.hex()}, not by its user "
                                   f"0x{request.user.hex()}", user=request.user, signer=signer)

    async def infer(self, request_raw: bytes, signature: bytes, text: str) -> bytes:
        """Serve one signed request (canonically encoded); returns the signed receipt,
        persisted first."""
        try:
            request = Request.from_list(decode(request_raw))
        except EncodingError as exc:
            raise InvalidInput(f"malformed request: {exc}") from exc
        earlier = self.book.unsettled.get(request.user, {}).get(request.nonce)
        if earlier is not None and earlier.request.hash == request.hash:
            return earlier.encode()  # the same request re-sent after a crash: same answer
        self._check_request(request, signature, text)
        prompt_tokens = self.model.count_tokens(text)
        if prompt_tokens + request.max_tokens > CONTEXT_TOKENS:
            raise InvalidServiceCall(f"{prompt_tokens} prompt + {request.max_tokens} output "
                                     f"tokens exceed the model's {CONTEXT_TOKENS}-token window",
                                     prompt_tokens=prompt_tokens)
        sub = await self._sub_account(request.user)
        try:
            reserved = self.book.admit(request, prompt_tokens, self.prices, sub)
        except ComputeInsufficientBalance:
            # The cached balance may predate a transfer: decide on the chain's current view.
            sub = await self._sub_account(request.user, fresh=True)
            reserved = self.book.admit(request, prompt_tokens, self.prices, sub)
        try:
            # The admitted nonce is durable before any work: a restart cannot serve it twice.
            self.store.put("nonces", request.user, encode([request.nonce, request.hash]))
            completion = await asyncio.to_thread(self.model.generate, text, request.max_tokens)
            receipt = self._bill(request, signature, completion)
            # Persisted (synced) before we answer: a crash after this loses no payment.
            self.store.put("receipts", _receipt_key(request.user, request.nonce),
                           receipt.encode())
            self.book.record(receipt)
        finally:
            self.book.release(request, reserved)
        self.stats["served"] += 1
        self.stats["prompt_tokens"] += receipt.prompt_tokens
        self.stats["completion_tokens"] += receipt.completion_tokens
        self.stats["fees"] += receipt.fee
        self.metrics.inc("zg_compute_requests", model=self.model.name)
        self.metrics.inc("zg_compute_tokens", receipt.prompt_tokens, kind="prompt")
        self.metrics.inc("zg_compute_tokens", receipt.completion_tokens, kind="completion")
        self.metrics.inc("zg_compute_fees", receipt.fee / ZG)
        self._unsettled_changed()
        if self.book.total_unsettled() >= self.compute.settle_threshold:
            asyncio.get_running_loop().create_task(self._settle_quietly())
        return receipt.encode()

    def _unsettled_changed(self) -> None:
        self.metrics.set("zg_compute_unsettled_fees", self.book.total_unsettled() / ZG)

    def _bill(self, request: Request, signature: bytes, completion: Completion) -> Receipt:
        """The signed receipt of a served request; never one above the user's signed cap."""
        return make_receipt(request, signature, completion.prompt_tokens,
                            completion.completion_tokens, completion.text,
                            self.prices.input_price, self.prices.output_price
                            ).signed_by(self.account)

    async def _settle_quietly(self) -> None:
        try:
            await self.settle_now()
        except Exception as exc:
            self._note(f"settlement failed: {exc}")

    # ---- settlement ---------------------------------------------------------------------
    async def _forget(self, user: bytes, settled_nonce: int) -> int:
        gone = self.book.drop_settled(user, settled_nonce)
        if gone:
            self.store.write([("receipts", _receipt_key(user, r.request.nonce), None)
                              for r in gone])
        return len(gone)

    async def _reconcile(self) -> None:
        """Drop receipts the chain already paid (a crash between settling and forgetting)."""
        for user in list(self.book.unsettled):
            sub = await self._sub_account(user, fresh=True)
            await self._forget(user, sub.nonce)

    async def settle_now(self) -> dict:
        """Settle every unsettled receipt now, in as few txs as the limits allow."""
        async with self._settle_lock:
            self._last_settle = time.time()
            await self._reconcile()
            report = {"txs": 0, "requests": 0, "paid": 0, "unpaid": 0, "results": []}
            for items in self.book.plan(self.compute.settle_batch_max, TRACES_PER_TX_MAX):
                tx_hash = await send_serving_tx(self.chain, self.account, "settle",
                                                [[i.to_list() for i in items]])
                results = await self.chain.query(SERVING_MODULE, "settlement", tx_hash)
                if results is None:  # a validator switch mid-way: reconciled next round
                    raise Unavailable(f"settlement tx 0x{tx_hash.hex()} result not visible yet",
                                      tx=tx_hash)
                report["txs"] += 1
                for item, result in zip(items, results, strict=True):
                    if result["rejected"]:
                        await self._reject(item.user, result["rejected"])
                    status = SettlementStatus[result["status"]]
                    if status in (SettlementStatus.SUCCESS, SettlementStatus.PARTIAL):
                        report["requests"] += await self._forget(item.user,
                                                                 result["last_nonce"])
                    report["paid"] += result["paid"]
                    report["unpaid"] += result["unpaid"]
                    report["results"].append(result)
                self._subs.clear()  # balances changed
            for key in ("paid", "unpaid"):
                self.stats[key] += report[key]
            self.stats["settlement_txs"] += report["txs"]
            self.stats["settled_requests"] += report["requests"]
            self.metrics.inc("zg_compute_settlement_txs", report["txs"])
            self._unsettled_changed()
            return report

    async def _reject(self, user: bytes, rejected: list[dict]) -> None:
        """Receipts the chain refused: kept aside as evidence and not retried, since the
        chain would refuse them again."""
        self.stats["rejected_traces"] += len(rejected)
        reasons = ", ".join(f"nonce {r['nonce']}: {r['status']}" for r in rejected)
        self._note(f"settlement of {len(rejected)} requests of 0x{user.hex()} refused "
                   f"({reasons})")
        receipts = self.book.unsettled.get(user, {})
        writes = []
        for nonce in (r["nonce"] for r in rejected):
            receipt = receipts.pop(nonce, None)
            if receipt is not None:
                key = _receipt_key(user, nonce)
                writes += [("rejected", key, receipt.encode()), ("receipts", key, None)]
        if not receipts:
            self.book.unsettled.pop(user, None)
        self.store.write(writes)

    # ---- views --------------------------------------------------------------------------
    async def status(self) -> dict:
        return {"index": self.index, "address": self.address, "endpoint": provider_name(
            self.index), "model": self.model.name, "unsettled_requests":
            self.book.count_unsettled(), "unsettled_fees": self.book.total_unsettled(),
            "recovered_receipts": self.recovered, "model_roots": self.model_roots,
            **self.stats}

    async def unsettled_receipts(self) -> list[bytes]:
        return [r.encode() for receipts in self.book.unsettled.values()
                for r in receipts.values()]

    async def ping(self) -> bool:
        return True



def fetch_model(config: Config, roots: list[bytes], directory: Path) -> Path:
    """The model file whose fragments have file roots `roots`, downloaded from the storage
    miners (every segment proof and each fragment's file root checked against the chain)
    into `directory`; a restarted provider fetches and checks it again."""
    from zg_actors.storage.sdk import StorageClient

    data = StorageClient(config, start=False).download_fragments(roots)
    path = directory / f"model-{roots[0].hex()[:16]}.gguf"
    partial = path.with_suffix(".part")  # a crash mid-write leaves no half model at `path`
    partial.write_bytes(data)
    partial.replace(path)
    return path


def launch_providers(config_dict: dict, data_dir: str, count: int, num_cpus: float,
                     detached: bool) -> list:
    """Start (or find) providers 0..count-1 and register their services; returns handles."""
    lifetime = {"lifetime": "detached"} if detached else {}
    spread = role_options(PROVIDER_RESOURCE, spread=True)
    handles = [ComputeProvider.options(name=provider_name(i), num_cpus=num_cpus,
                                       get_if_exists=True, **lifetime, **spread).remote(
        config_dict, i, data_dir) for i in range(count)]
    ray.get([h.start.remote() for h in handles], timeout=120)
    return handles
