"""A hand-assembled contract and a wallet that signs Ethereum txs as a user's does
(eth-account), shared by the EVM unit and integration tests."""

from __future__ import annotations

from eth_account import Account as EthAccount
from eth_utils import to_checksum_address

from zg_actors.crypto.devkeys import load_account

GWEI = 10**9

# A hand-assembled contract. The first calldata byte selects: 1 stores the next 32
# bytes in slot 0 and logs them under topic 0xAA; 2 returns slot 0; 3 reverts with
# 0xdeadbeef; 4 loops until out of gas; anything else stops.
OPCODES = {"STOP": 0x00, "SUB": 0x03, "EQ": 0x14, "SHR": 0x1C, "CALLDATALOAD": 0x35,
           "CODECOPY": 0x39, "BLOCKHASH": 0x40, "NUMBER": 0x43, "MSTORE": 0x52,
           "SLOAD": 0x54, "SSTORE": 0x55, "JUMP": 0x56, "JUMPI": 0x57, "JUMPDEST": 0x5B,
           "PUSH1": 0x60, "PUSH4": 0x63, "DUP1": 0x80, "LOG1": 0xA1, "RETURN": 0xF3,
           "REVERT": 0xFD}


def _immediate(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def assemble(program: list[str | int]) -> bytes:
    """Mnemonics, int immediates, ':label' (a JUMPDEST) and '@label' (its offset, as a
    PUSH1 operand) to bytecode, in two passes."""
    labels: dict[str, int] = {}
    size = 0
    for item in program:
        if isinstance(item, str) and item.startswith(":"):
            labels[item[1:]] = size
        size += len(_immediate(item)) if isinstance(item, int) else 1
    out = bytearray()
    for item in program:
        if isinstance(item, int):
            out += _immediate(item)
        elif item.startswith(":"):
            out.append(OPCODES["JUMPDEST"])
        elif item.startswith("@"):
            out.append(labels[item[1:]])
        else:
            out.append(OPCODES[item])
    return bytes(out)


RUNTIME = assemble([
    "PUSH1", 0, "CALLDATALOAD", "PUSH1", 0xF8, "SHR",
    "DUP1", "PUSH1", 1, "EQ", "PUSH1", "@store", "JUMPI",
    "DUP1", "PUSH1", 2, "EQ", "PUSH1", "@load", "JUMPI",
    "DUP1", "PUSH1", 3, "EQ", "PUSH1", "@revert", "JUMPI",
    "DUP1", "PUSH1", 4, "EQ", "PUSH1", "@loop", "JUMPI",
    "STOP",
    ":store", "PUSH1", 1, "CALLDATALOAD", "DUP1", "PUSH1", 0, "SSTORE", "PUSH1", 0, "MSTORE",
    "PUSH1", 0xAA, "PUSH1", 32, "PUSH1", 0, "LOG1", "STOP",
    ":load", "PUSH1", 0, "SLOAD", "PUSH1", 0, "MSTORE", "PUSH1", 32, "PUSH1", 0, "RETURN",
    ":revert", "PUSH4", 0xDEADBEEF, "PUSH1", 0, "MSTORE", "PUSH1", 4, "PUSH1", 28, "REVERT",
    ":loop", "PUSH1", "@loop", "JUMP",
])
INIT_LENGTH = 12


def deployable(runtime: bytes) -> bytes:
    """Init code that returns `runtime` as the new contract's code."""
    init = assemble(["PUSH1", len(runtime), "PUSH1", INIT_LENGTH, "PUSH1", 0, "CODECOPY",
                     "PUSH1", len(runtime), "PUSH1", 0, "RETURN"])
    assert len(init) == INIT_LENGTH
    return init + runtime


INIT = deployable(RUNTIME)
# Stores BLOCKHASH(NUMBER - 1), its parent block's hash, in slot 0.
PARENT_HASH_RECORDER = assemble(["PUSH1", 1, "NUMBER", "SUB", "BLOCKHASH", "PUSH1", 0,
                                 "SSTORE", "STOP"])


def store_call(value: int) -> bytes:
    return b"\x01" + value.to_bytes(32, "big")



class Wallet:
    """A funded devnet account signing Ethereum txs as a wallet does (eth-account)."""

    def __init__(self, index: int, chain_id: int, seed: str = "zg-devnet") -> None:
        self.account = load_account(seed, index)
        self.key = EthAccount.from_key(self.account.secret)
        self.chain_id = chain_id
        self.nonce = 0

    @property
    def address(self) -> bytes:
        return self.account.address

    def sign(self, to: bytes | None = None, value: int = 0, data: bytes = b"",
             gas: int = 100_000, kind: int = 2, nonce: int | None = None,
             chain_id: int | None = None, max_fee: int = 2 * GWEI) -> bytes:
        fields: dict = {"chainId": self.chain_id if chain_id is None else chain_id,
                        "nonce": self.nonce if nonce is None else nonce, "value": value,
                        "data": data, "gas": gas}
        if to is not None:
            fields["to"] = to_checksum_address(to)
        if kind == 2:
            fields.update(type=2, maxFeePerGas=max_fee, maxPriorityFeePerGas=GWEI // 10)
        else:
            fields["gasPrice"] = max_fee
            if kind == 1:
                fields.update(type=1, accessList=[])
        if nonce is None:
            self.nonce += 1
        return bytes(self.key.sign_transaction(fields).raw_transaction)
