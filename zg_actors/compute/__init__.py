"""0G Compute Network: the `serving` contract (services, ledgers, settlement), providers
that serve a real model and settle signed receipts in batches, and the client SDK.

Pure core: `params.py`, `errors.py`, `request.py`, `ledger.py`, `settlement.py`,
`serving.py` (the chain module), `accounts.py` (devnet keys, network-0 genesis),
`book.py` (a provider's admission and receipts), `model.py`.  Ray shells: `actors.py`
(ComputeProvider), `sdk.py`, `bench.py`, `demo.py`; `cli.py` holds the `zg compute`
command bodies.
"""
