"""`token`: the network's local reward token.

Block rewards are minted here to the proposer; holders transfer it and pay tx
fees in it; `burn` destroys it on this network so that the bridge can mint the
same amount of ZG on C0 from the burn proof.
"""

from __future__ import annotations

from zg_actors.chain.modules.base import ArgDecoder, Context, Module, ModuleError, ModuleState
from zg_actors.crypto.encoding import Decoded
from zg_actors.errors import InsufficientBalance

MODULE = "token"
_SUPPLY = b"supply"
_MINTED = b"minted"
_BURNED = b"burned"
_args = ArgDecoder(ModuleError)


class TokenInsufficientBalance(ModuleError, InsufficientBalance):
    code = "TOKEN_INSUFFICIENT_BALANCE"


def _balance_key(address: bytes) -> bytes:
    return b"bal/" + address


def balance_of(state: ModuleState, address: bytes) -> int:
    return state.get_int(_balance_key(address))


def debit(state: ModuleState, address: bytes, amount: int) -> None:
    balance = balance_of(state, address)
    if balance < amount:
        raise TokenInsufficientBalance(
            f"0x{address.hex()} has {balance}, needs {amount} (short by {amount - balance})",
            address=address, balance=balance, needed=amount)
    state.put_int(_balance_key(address), balance - amount)


def credit(state: ModuleState, address: bytes, amount: int) -> None:
    state.add_int(_balance_key(address), amount)


def destroy(state: ModuleState, amount: int) -> None:
    """ZG that left every balance: the supply falls and `burned` grows, so that supply =
    genesis + minted - burned still holds (a burn for the bridge; an EVM SELFDESTRUCT of a
    contract to itself in the tx that created it)."""
    state.add_int(_SUPPLY, -amount)
    state.add_int(_BURNED, amount)


class TokenModule(Module):
    name = MODULE

    def __init__(self, block_reward: int, genesis_balances: dict[bytes, int] | None = None):
        self.block_reward = block_reward
        self.genesis_balances = genesis_balances or {}

    def genesis(self, state: ModuleState) -> None:
        for address, amount in sorted(self.genesis_balances.items()):
            credit(state, address, amount)
        total = sum(self.genesis_balances.values())
        state.put_int(_SUPPLY, total)
        state.put_int(b"genesis", total)

    def begin_block(self, ctx: Context) -> None:
        if self.block_reward:
            state = ctx.state(MODULE)
            credit(state, ctx.block.proposer, self.block_reward)
            state.add_int(_SUPPLY, self.block_reward)
            state.add_int(_MINTED, self.block_reward)
            ctx.emit(MODULE, "Reward", ctx.block.proposer, self.block_reward)

    def tx_transfer(self, ctx: Context, to: Decoded, amount: Decoded) -> Decoded:
        recipient, value = _args.address(to, "to"), _args.uint(amount, "amount")
        state = ctx.state(MODULE)
        debit(state, ctx.sender, value)
        credit(state, recipient, value)
        ctx.emit(MODULE, "Transfer", ctx.sender, recipient, value)
        return b""

    def tx_burn(self, ctx: Context, amount: Decoded, c0_recipient: Decoded) -> Decoded:
        """Destroy `amount` here; the bridge mints it as ZG to c0_recipient on C0."""
        value = _args.uint(amount, "amount")
        recipient = _args.address(c0_recipient, "c0_recipient")
        if value == 0:
            raise ModuleError("burn amount must be positive", amount=value)
        state = ctx.state(MODULE)
        debit(state, ctx.sender, value)
        destroy(state, value)
        ctx.emit(MODULE, "Burn", ctx.sender, recipient, value)
        return b""

    def query_balance(self, state: ModuleState, address: bytes) -> int:
        return balance_of(state, address)

    def query_supply(self, state: ModuleState) -> dict[str, int]:
        return {"supply": state.get_int(_SUPPLY), "genesis": state.get_int(b"genesis"),
                "minted": state.get_int(_MINTED), "burned": state.get_int(_BURNED)}
