"""ERC-20 transfers through a network's Ethereum JSON-RPC, as dApp users send them.

    ray job submit --working-dir . -- python jobs/evm_load.py --senders 4 --duration 60

Deploys the ERC-20 of zg_actors/evm/contracts.py (compiled with Vyper, which this job needs:
pip install 'vyper>=0.4.3,<0.5' web3, the project's `test` extra) from devnet account 0,
gives each of --senders devnet accounts (1, 2, ...) tokens, then each sender signs EIP-1559
transfers locally and sends them with eth_sendRawTransaction, one after another, each
followed to its receipt, for --duration seconds. Reports transfers/s, latency (sent to
receipt) p50/p99, gas used, the base fee seen, and errors (failed receipts count); then
checks that the recipients' token balances add up to what was transferred.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from zg_actors.workload import Progress, Tally, finish, job_parser, session, summarize

RECEIPT_TIMEOUT_S = 90.0
RECEIPT_POLL_S = 0.2
AMOUNT = 1_000  # token units per transfer
FEE_HEADROOM = 2  # maxFeePerGas = this many times the latest base fee, plus the tip


def parse_args(argv: list[str] | None = None) -> Any:
    parser = job_parser(__doc__)
    parser.add_argument("--senders", type=int, default=4,
                        help="devnet accounts sending transfers at once (4)")
    parser.add_argument("--duration", type=float, default=30.0,
                        help="seconds of sending (30)")
    parser.add_argument("--network", type=int, default=None,
                        help="network whose JSON-RPC is used (default: the first active)")
    parser.add_argument("--rpc", metavar="URL",
                        help="the network's JSON-RPC URL (default: the deployment's)")
    return parser.parse_args(argv)


def needs() -> tuple[Any, Any]:
    """web3.Web3 and eth_account.Account, or a clear error naming what to install."""
    try:
        from eth_account import Account
        from web3 import Web3
    except ImportError as exc:
        from zg_actors.errors import Unavailable

        raise Unavailable(f"evm_load needs web3.py and eth-account ({exc.name} is missing): "
                          "pip install web3 'vyper>=0.4.3,<0.5' (the project's `test` "
                          "extra)") from exc
    return Web3, Account


class Sender:
    """A devnet account signing transfers locally, its nonce counted here."""

    def __init__(self, w3: Any, key: Any) -> None:
        self.w3, self.key, self.address = w3, key, key.address
        self.nonce = w3.eth.get_transaction_count(key.address)

    def send(self, tx: dict) -> dict:
        tip = self.w3.eth.max_priority_fee
        base_fee = self.w3.eth.get_block("latest")["baseFeePerGas"]
        tx = {"chainId": self.w3.eth.chain_id, "nonce": self.nonce, "type": 2,
              "maxPriorityFeePerGas": tip,
              "maxFeePerGas": FEE_HEADROOM * base_fee + tip, **tx}
        tx_hash = self.w3.eth.send_raw_transaction(self.key.sign_transaction(tx).raw_transaction)
        self.nonce += 1
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, RECEIPT_TIMEOUT_S,
                                                           RECEIPT_POLL_S)
        return dict(receipt) | {"base_fee": base_fee}


def devnet_keys(seed: str, count: int) -> list[Any]:
    from zg_actors.crypto.devkeys import load_account

    _, account = needs()
    return [account.from_key(load_account(seed, i).secret) for i in range(count)]


def run_load(w3: Any, keys: list[Any], duration_s: float, progress: Progress) -> dict[str, Any]:
    """Deploy the ERC-20 from keys[0], fund keys[1:] with tokens, and let each of them send
    transfers for `duration_s` seconds; the report."""
    from zg_actors.evm.contracts import ERC20_SUPPLY, erc20

    compiled = erc20()
    deployer, senders = Sender(w3, keys[0]), [Sender(w3, k) for k in keys[1:]]
    factory = w3.eth.contract(abi=compiled["abi"], bytecode=compiled["bytecode"])
    deployed = deployer.send({"data": factory.constructor(ERC20_SUPPLY).data_in_transaction,
                              "gas": 2_000_000})
    if deployed["status"] != 1:
        raise RuntimeError(f"the ERC-20 deploy failed: tx 0x{deployed['transactionHash'].hex()}")
    token = w3.eth.contract(address=deployed["contractAddress"], abi=compiled["abi"])
    progress.say(f"ERC-20 at {token.address}; funding {len(senders)} senders")
    share = ERC20_SUPPLY // (2 * max(1, len(senders)))
    for sender in senders:
        deployer.send(token.functions.transfer(sender.address, share).build_transaction(
            {"from": deployer.address, "nonce": deployer.nonce, "gas": 100_000}))
    # Each sender pays its own recipient, fresh per run (a balance that starts at 0).
    recipients = [w3.eth.account.create().address for _ in senders]
    transfers = Tally()
    base_fees: list[int] = []
    lock = threading.Lock()
    start = time.monotonic()

    def send_transfers(index: int) -> None:
        sender, to = senders[index], recipients[index]
        while time.monotonic() - start < duration_s:
            began = time.monotonic()
            try:
                receipt = sender.send(token.functions.transfer(to, AMOUNT).build_transaction(
                    {"from": sender.address, "nonce": sender.nonce, "gas": 100_000}))
            except Exception as exc:  # counted; the sender goes on with a fresh nonce
                transfers.error(exc)
                sender.nonce = w3.eth.get_transaction_count(sender.address)
                continue
            if receipt["status"] != 1:
                transfers.error(f"tx 0x{receipt['transactionHash'].hex()} reverted")
                continue
            transfers.ok(time.monotonic() - began)
            transfers.count(gas_used=receipt["gasUsed"], tokens=AMOUNT)
            with lock:
                base_fees.append(receipt["base_fee"])
            progress.tick(lambda: f"{transfers.ops} transfers, {transfers.error_count} errors")

    threads = [threading.Thread(target=send_transfers, args=(i,), name=f"zg-evm-{i}")
               for i in range(len(senders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall_s = time.monotonic() - start
    received = sum(token.functions.balanceOf(to).call() for to in recipients)
    if received != transfers.counts.get("tokens", 0):
        transfers.error(f"recipients hold {received} tokens, {transfers.counts.get('tokens')} "
                        "were transferred")
    report = {"job": "evm_load", "chain_id": w3.eth.chain_id, "token": token.address,
              "senders": len(senders), "duration_s": duration_s,
              "transfers": summarize(transfers, wall_s, "transfers"),
              "gas_used": transfers.counts.get("gas_used", 0),
              "tokens_received": received,
              "base_fee_min": min(base_fees, default=None),
              "base_fee_max": max(base_fees, default=None)}
    report["transfers_per_s"] = report["transfers"]["transfers_per_s"]
    report["errors"] = transfers.error_count
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    web3, _ = needs()
    progress = Progress(args.quiet)
    with session(args, ["chain"], progress) as config:
        import ray

        from zg_actors import runtime
        from zg_actors.chain.network_manager import NETWORK_MANAGER_NAME
        from zg_actors.evm.serve import evm_rpc_url

        network = args.network
        if network is None:
            network = runtime.call(ray.get_actor(NETWORK_MANAGER_NAME)
                                   .active_networks.remote())[0]
        url = args.rpc or evm_rpc_url(config, network)
        w3 = web3(web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
        progress.say(f"JSON-RPC {url} (chain id {w3.eth.chain_id})")
        report = run_load(w3, devnet_keys(config.devnet.key_seed, args.senders + 1),
                          args.duration, progress)
    return finish(args, report)


if __name__ == "__main__":
    sys.exit(main())
