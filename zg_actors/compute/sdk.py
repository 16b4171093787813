"""Python SDK of the compute network: the `zg compute` commands are thin wrappers on it.

`ServingChain` sends serving txs to network 0 (through the one chain client) and waits
for them to commit;
`ComputeClient` is one user's view: services, deposit, fund, retrieve, refund,
account, and `infer`, which signs a request, sends it to the provider's actor and
checks the provider's signature and bill on the answer.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import ray

from zg_actors.chain.client import ChainClient, SyncChainClient, TxRefused, run_sync
from zg_actors.compute.errors import (
    ChainTxFailed,
    ComputeInsufficientBalance,
    InvalidServiceCall,
    ProviderDown,
    ResponseSignatureInvalid,
    UnknownLedger,
    UnknownProvider,
)
from zg_actors.compute.params import MS_PER_S, SERVING_MODULE, SERVING_NETWORK_ID
from zg_actors.compute.params import as_tokens as tokens
from zg_actors.compute.request import (
    Receipt,
    check_within_cap,
    fee_cap,
    fee_for,
    sign_request,
)
from zg_actors.crypto.accounts import Account, parse_address
from zg_actors.crypto.encoding import encode
from zg_actors.errors import InvalidSignature, ZgError
from zg_actors.runtime import call as _get

COMMIT_TIMEOUT_S = 30.0
INFER_TIMEOUT_S = 120.0
PROVIDER_RETRY_S = 20.0  # how long infer waits for a provider Ray is restarting
SERVICE_CACHE_S = 5.0  # how long infer reuses a provider's registered prices and endpoint


def _hex(address: bytes) -> str:
    return "0x" + address.hex()


async def send_serving_tx(chain: ChainClient, account: Account, method: str,
                          args: list) -> bytes:
    """Send a `serving` tx, wait until it commits; ChainTxFailed if it was refused or its
    call failed (the module records each account's last successful tx)."""
    try:
        tx = await chain.send_and_wait(account, SERVING_MODULE, method, args,
                                       COMMIT_TIMEOUT_S)
    except TxRefused as exc:
        raise ChainTxFailed(str(exc), method=method, tx=exc.details["tx"]) from None
    if await chain.query(SERVING_MODULE, "last_tx", account.address) != tx.hash:
        raise ChainTxFailed(f"{method} tx 0x{tx.hash.hex()} committed but its call failed "
                            f"(only the tx fee was taken)", method=method, tx=tx.hash)
    return tx.hash


class ServingChain:
    """Network 0's `serving` module and wallets, blocking (the SDK's and CLI's view)."""

    def __init__(self, network_id: int = SERVING_NETWORK_ID) -> None:
        self.network_id = network_id
        self.client = SyncChainClient(network_id)

    def query(self, method: str, *args: Any) -> Any:
        return self.client.query(SERVING_MODULE, method, *args)

    def wallet(self, address: bytes) -> dict:
        """Network-0 token balance and next tx nonce of an address."""
        return self.client.account(address)

    def submit(self, account: Account, method: str, args: list) -> bytes:
        return run_sync(send_serving_tx(self.client.chain, account, method, args))


def resolve_provider(text: str, seed: str) -> bytes:
    """A provider given as 0x-address or as a devnet provider index."""
    if text.isdigit():
        from zg_actors.compute.accounts import provider_account

        return provider_account(seed, int(text)).address
    return parse_address(text)


class ComputeClient:
    """One user of the compute network (their account signs txs and requests)."""

    def __init__(self, account: Account, chain: ServingChain | None = None,
                 provider_retry_s: float = PROVIDER_RETRY_S) -> None:
        self.account = account
        self.chain = chain or ServingChain()
        self.provider_retry_s = provider_retry_s
        self._last_nonce = 0
        self._services: dict[bytes, dict] = {}
        self._services_at = 0.0

    # ---- reading ----------------------------------------------------------------------
    def services(self) -> list[dict]:
        return self.chain.query("services")

    def service(self, provider: bytes, max_age_s: float = 0.0) -> dict:
        """The provider's registered service; max_age_s lets a burst of requests reuse it."""
        if provider not in self._services or time.time() - self._services_at > max_age_s:
            self._services = {s["provider"]: s for s in self.services()}
            self._services_at = time.time()
        if provider in self._services:
            return self._services[provider]
        raise UnknownProvider(f"no service is registered by provider {_hex(provider)}; "
                              f"`zg compute services` lists them", provider=provider)

    def account_state(self) -> dict:
        """Main account, sub-accounts and pending refunds, each explained in words."""
        state = self.chain.query("account", self.account.address)
        wallet = self.chain.wallet(self.account.address)["balance"]
        return {**state, "wallet": wallet,
                "explanation": explain_account(state, wallet, time.time())}

    # ---- ledger txs -------------------------------------------------------------------
    def deposit(self, amount: int) -> dict:
        """Wallet -> main account (opens it on the first deposit)."""
        wallet = self.chain.wallet(self.account.address)["balance"]
        if amount > wallet:
            raise ComputeInsufficientBalance(
                f"wallet {_hex(self.account.address)} holds {tokens(wallet)} tokens, the deposit "
                f"is {tokens(amount)}: {tokens(amount - wallet)} more are needed in the wallet",
                balance=wallet, needed=amount, shortfall=amount - wallet)
        state = self.chain.query("account", self.account.address)
        minimum = self.chain.query("params")["min_ledger_balance"]
        if not state["exists"] and amount < minimum:
            raise InvalidServiceCall(f"a new compute account needs a first deposit of at least "
                                     f"{tokens(minimum)} tokens, got {tokens(amount)}",
                                     amount=amount, minimum=minimum)
        tx = self.chain.submit(self.account, "deposit", [amount])
        return {"tx": tx, **self.account_state()}

    def fund(self, provider: bytes, amount: int) -> dict:
        """Main account -> the provider's sub-account (pending refunds are reused first)."""
        self.service(provider)
        state = self.chain.query("account", self.account.address)
        if not state["exists"]:
            raise UnknownLedger(f"{_hex(self.account.address)} has no compute account yet: "
                                f"`zg compute deposit AMOUNT` first", user=self.account.address)
        sub = next((s for s in state["sub_accounts"] if s["provider"] == provider), None)
        reusable = min(amount, sub["pending_refund"]) if sub else 0
        needed = amount - reusable
        if needed > state["main_available"]:
            short = needed - state["main_available"]
            raise ComputeInsufficientBalance(
                f"funding {tokens(amount)} tokens needs {tokens(needed)} from the main account, "
                f"which has {tokens(state['main_available'])}: deposit {tokens(short)} more "
                f"with `zg compute deposit {tokens(short)}`", available=state["main_available"],
                needed=needed, shortfall=short)
        tx = self.chain.submit(self.account, "transfer", [provider, amount])
        return {"tx": tx, **self.account_state()}

    def retrieve(self, provider: bytes) -> dict:
        """Start taking a sub-account's unused balance back (unlocks after the lock)."""
        tx = self.chain.submit(self.account, "retrieve", [provider])
        return {"tx": tx, **self.account_state()}

    def refund(self, amount: int) -> dict:
        """Main account -> wallet (collects sub-account refunds that have unlocked)."""
        tx = self.chain.submit(self.account, "refund", [amount])
        return {"tx": tx, **self.account_state()}

    # ---- inference --------------------------------------------------------------------
    def next_nonce(self) -> int:
        """Microseconds since the epoch, strictly increasing: no state to keep between runs
        (0G's SDK does the same)."""
        self._last_nonce = max(time.time_ns() // 1_000, self._last_nonce + 1)
        return self._last_nonce

    def infer(self, provider: bytes, text: str, max_tokens: int = 16) -> dict:
        """Send one signed request; returns the answer with its verified bill."""
        from zg_actors.compute.model import tokenizer

        # Prices may be a few seconds old: the signed cap and the check below use the same.
        service = self.service(provider, SERVICE_CACHE_S)
        prompt_tokens = tokenizer().count_tokens(text)
        max_fee = fee_cap(prompt_tokens, max_tokens, service["input_price"],
                          service["output_price"])
        signed = sign_request(self.account, self.chain.network_id, provider, self.next_nonce(),
                              text, max_fee, max_tokens)
        raw = self._send(service, encode(signed.request.to_list()), signed.signature, text)
        receipt = Receipt.decode(raw)
        verify_receipt(receipt, signed.request.hash, provider, service, prompt_tokens)
        return {"provider": provider, "model": service["model"], "output": receipt.output,
                "prompt_tokens": receipt.prompt_tokens,
                "completion_tokens": receipt.completion_tokens, "fee": receipt.fee,
                "max_fee": max_fee, "nonce": signed.request.nonce, "signature_ok": True,
                "receipt": raw}

    def _send(self, service: dict, request: bytes, signature: bytes, text: str) -> bytes:
        """Call the provider's actor; the same signed request is re-sent while Ray restarts
        it, and a provider that persisted it before crashing answers with the same receipt."""
        deadline = time.time() + self.provider_retry_s
        while True:
            try:
                handle = ray.get_actor(service["endpoint"])
                return _get(handle.infer.remote(request, signature, text), INFER_TIMEOUT_S)
            except ZgError:
                raise
            except Exception as exc:  # actor gone, dead or restarting: not charged
                if time.time() > deadline:
                    raise ProviderDown(
                        f"provider {_hex(service['provider'])} ({service['endpoint']}) is not "
                        f"answering: {type(exc).__name__}; you were not charged",
                        provider=service["provider"], endpoint=service["endpoint"]) from None
                time.sleep(0.5)


def verify_receipt(receipt: Receipt, request_hash: bytes, provider: bytes, service: dict,
                   prompt_tokens: int) -> None:
    """The answer is for our request, signed by the provider, and billed by the rules,
    within the cap we signed."""
    try:
        signer = receipt.response_signer()
    except InvalidSignature as exc:
        raise ResponseSignatureInvalid(f"response signature is malformed: {exc}",
                                       provider=provider) from exc
    if signer != provider:
        raise ResponseSignatureInvalid(f"response signed by {_hex(signer)}, not by provider "
                                       f"{_hex(provider)}", signer=signer, provider=provider)
    if receipt.request.hash != request_hash:
        raise ResponseSignatureInvalid("response answers another request", provider=provider)
    expected = fee_for(receipt.prompt_tokens, receipt.completion_tokens,
                       service["input_price"], service["output_price"])
    if receipt.prompt_tokens != prompt_tokens or receipt.fee != expected:
        raise ResponseSignatureInvalid(
            f"bill does not add up: {receipt.prompt_tokens} prompt tokens (we count "
            f"{prompt_tokens}), fee {receipt.fee} (prices give {expected})",
            fee=receipt.fee, expected=expected)
    check_within_cap(receipt)


def _when(unlock_at_ms: int, now_s: float) -> str:
    at = datetime.fromtimestamp(unlock_at_ms / MS_PER_S, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    left = unlock_at_ms / MS_PER_S - now_s
    if left <= 0:
        return f"unlocked since {at}"
    return f"unlocks at {at} (in {_duration(left)})"


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def explain_account(state: dict, wallet: int, now_s: float) -> list[str]:
    """The account in sentences: which money is where and what each part can do."""
    lines = [f"Wallet: {tokens(wallet)} tokens on network 0, not in the compute ledger."]
    if not state["exists"]:
        return [*lines, "No compute account yet: `zg compute deposit AMOUNT` opens one."]
    lines.append(f"Main account: {tokens(state['main_available'])} tokens not assigned to any "
                 f"provider; `zg compute refund` returns them to the wallet, `zg compute fund` "
                 f"moves them to a provider.")
    for sub in state["sub_accounts"]:
        line = (f"Provider {_hex(sub['provider'])}: {tokens(sub['balance'])} tokens held, "
                f"{tokens(sub['available'])} usable for new requests")
        if sub["pending_refund"]:
            line += (f", {tokens(sub['pending_refund'])} on their way back to you (still payable "
                     f"to the provider for requests already served)")
        lines.append(line + f"; requests up to nonce {sub['nonce']} are settled.")
        for refund in sub["refunds"]:
            lines.append(f"  refund of {tokens(refund['amount'])} tokens "
                         f"{_when(refund['unlock_at_ms'], now_s)}; then `zg compute refund` "
                         f"(or another retrieve) collects it.")
    return lines
