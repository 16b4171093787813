"""The ERC-20 that `jobs/evm_load.py` deploys: Vyper source, compiled in-process (no
compiler binary downloaded). Vyper is an optional dependency (the `test` extra); `erc20()`
says so in a typed error when it is missing.

The same source as tests/integration/test_evm_rpc.py's ERC20 on this branch; main now has
it once in zg_actors/evm/bench.py (ERC20_SOURCE, compile_erc20): on merge, this module's
source goes and erc20() compiles that one."""

from __future__ import annotations

from zg_actors.errors import Unavailable

ERC20_SUPPLY = 10**24  # token units the deployer is minted
ERC20 = """
# pragma version 0.4.3
# pragma evm-version cancun
event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

name: public(String[32])
symbol: public(String[8])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])

@deploy
def __init__(supply: uint256):
    self.name = "Test Token"
    self.symbol = "TST"
    self.decimals = 18
    self.totalSupply = supply
    self.balanceOf[msg.sender] = supply
    log Transfer(sender=empty(address), receiver=msg.sender, value=supply)

@external
def transfer(to: address, amount: uint256) -> bool:
    assert self.balanceOf[msg.sender] >= amount, "insufficient balance"
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount
    log Transfer(sender=msg.sender, receiver=to, value=amount)
    return True
"""


def erc20() -> dict:
    """The ERC-20's ABI and deploy bytecode."""
    try:
        import vyper
    except ImportError as exc:
        raise Unavailable("compiling the ERC-20 needs Vyper: pip install 'vyper>=0.4.3,<0.5' "
                          "(or the project's `test` extra)") from exc
    return vyper.compile_code(ERC20, output_formats=["abi", "bytecode"])
