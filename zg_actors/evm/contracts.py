"""The one ERC-20 of the project (`zg bench evm`, `jobs/evm_load.py`, the web3.py tests):
Vyper source, compiled in-process (no compiler binary downloaded); `erc20()` says in a
typed error what to install when Vyper is missing."""

from __future__ import annotations

from zg_actors.errors import Unavailable

ERC20_SUPPLY = 10**24  # token units the deployer is minted
ERC20_SOURCE = """
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
                          "(a dependency of zg-actors)") from exc
    return vyper.compile_code(ERC20_SOURCE, output_formats=["abi", "bytecode"])
