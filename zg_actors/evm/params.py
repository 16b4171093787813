"""The EVM's fork and EIP-1559 constants (docs/spec/evm.md); no chain imports, so that the
tx format (chain/tx.py) can name the fork without a cycle."""

from __future__ import annotations

from eth.vm.forks.cancun import CancunVM

MODULE = "evm"
FORK = CancunVM  # Cancun (Dencun): EIP-1559, EIP-2930, transient storage, MCOPY, PUSH0
FORK_NAME = "cancun"

# EIP-1559: the block's gas target is limit / ELASTICITY; the base fee moves by at most
# 1/BASE_FEE_CHANGE_DENOMINATOR per block toward it.
ELASTICITY_MULTIPLIER = 2
BASE_FEE_CHANGE_DENOMINATOR = 8

BLOOM_BYTES = 256  # a logs bloom: 2048 bits

LEGACY_TX_TYPE = 0
ACCESS_LIST_TX_TYPE = 1  # EIP-2930
DYNAMIC_FEE_TX_TYPE = 2  # EIP-1559
SUPPORTED_TX_TYPES = (LEGACY_TX_TYPE, ACCESS_LIST_TX_TYPE, DYNAMIC_FEE_TX_TYPE)
TX_TYPE_NAMES = {LEGACY_TX_TYPE: "legacy", ACCESS_LIST_TX_TYPE: "access_list",
                 DYNAMIC_FEE_TX_TYPE: "dynamic_fee"}  # Geth's names, as metric tags


def next_base_fee(base_fee: int, gas_used: int, gas_limit: int, min_base_fee: int) -> int:
    """EIP-1559: the next block's base fee from this block's gas used against the target,
    never below min_base_fee (so that an idle chain's fee does not decay to nothing)."""
    target = gas_limit // ELASTICITY_MULTIPLIER
    if gas_used == target:
        return base_fee
    if gas_used > target:
        delta = max(1, base_fee * (gas_used - target) // target // BASE_FEE_CHANGE_DENOMINATOR)
        return base_fee + delta
    delta = base_fee * (target - gas_used) // target // BASE_FEE_CHANGE_DENOMINATOR
    return max(min_base_fee, base_fee - delta)
