"""py-evm's state kept in the chain's state (pure: no LMDB here, only Overlays).

One ZG balance and one nonce: an account's EVM balance IS its `token` module balance
and its EVM nonce IS the chain's account nonce (`auth/nonce/`), read and written in the
block's Overlay, so a native transfer and an EVM value transfer move the same funds and
tools see one account. Code and storage live in py-evm's Merkle-Patricia tries, whose
nodes go through py-evm's key-value DB interface into the same Overlay (`evm/db/`), so
the validator persists them in its LMDB store with the block. An account with neither
code nor storage has no trie entry: the trie's root covers contracts, the write-set
state root (chain/execution.py) covers everything.
"""

from __future__ import annotations

from eth.abc import AtomicDatabaseAPI
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth.db.backends.base import BaseDB
from eth.rlp.accounts import Account as TrieAccount
from eth.typing import JournalDBCheckpoint
from eth.vm.forks.cancun import CancunState
from eth_typing import Address, Hash32

from zg_actors.chain.execution import nonce_key, read_nonce
from zg_actors.chain.modules import token
from zg_actors.chain.modules.base import ModuleState
from zg_actors.evm.params import MODULE
from zg_actors.store.overlay import Overlay

TRIE_DB_PREFIX = MODULE.encode() + b"/db/"  # trie nodes and code, by hash
_BLANK_ACCOUNT = TrieAccount()


class OverlayDB(BaseDB):
    """py-evm's key-value interface over the chain state, under `evm/db/`. `overlay` is
    the block's Overlay: trie nodes are written once per block, when the state persists."""

    def __init__(self, overlay: Overlay) -> None:
        self.overlay = overlay

    def __getitem__(self, key: bytes) -> bytes:
        value = self.overlay.get(TRIE_DB_PREFIX + key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.overlay.put(TRIE_DB_PREFIX + key, value)

    def __delitem__(self, key: bytes) -> None:
        self.overlay.delete(TRIE_DB_PREFIX + key)

    def _exists(self, key: bytes) -> bool:
        return self.overlay.get(TRIE_DB_PREFIX + key) is not None


def state_db(overlay: Overlay) -> AtomicDB:
    return AtomicDB(OverlayDB(overlay))


class LedgerAccountDB(AccountDB):
    """py-evm's AccountDB whose balances and nonces are the chain's own (token module,
    account nonces), journaled as py-evm journals the rest: one Overlay layer per open
    checkpoint, so a reverted call frame takes its value transfers back with it."""

    def __init__(self, db: AtomicDatabaseAPI, state_root: Hash32) -> None:
        super().__init__(db, state_root)
        self._layers: list[Overlay] = []
        self._checkpoints: list[JournalDBCheckpoint] = []
        self._balance_changes: list[int] = []  # per layer: the sum of its balance changes

    def bind(self, overlay: Overlay) -> None:
        """Read and write balances and nonces in `overlay` (the current tx's), from now on."""
        self._layers = [overlay]
        self._checkpoints = []
        self._balance_changes = [0]

    @property
    def balance_change(self) -> int:
        """The sum of all balance changes since bind, once every checkpoint has closed: ZG
        created (> 0) or destroyed (< 0) by execution."""
        return self._balance_changes[0]

    @property
    def _ledger(self) -> Overlay:
        return self._layers[-1]

    # ---- the chain's balances and nonces --------------------------------------------
    def get_balance(self, address: Address) -> int:
        return token.balance_of(ModuleState(self._ledger, token.MODULE), address)

    def set_balance(self, address: Address, balance: int) -> None:
        state = ModuleState(self._ledger, token.MODULE)
        delta = balance - token.balance_of(state, address)
        if delta > 0:
            token.credit(state, address, delta)
        elif delta < 0:
            token.debit(state, address, -delta)
        self._balance_changes[-1] += delta

    def get_nonce(self, address: Address) -> int:
        return read_nonce(self._ledger.get, address)

    def set_nonce(self, address: Address, nonce: int) -> None:
        self._ledger.put(nonce_key(address), nonce.to_bytes(8, "big"))

    def increment_nonce(self, address: Address) -> None:
        self.set_nonce(address, self.get_nonce(address) + 1)

    def account_exists(self, address: Address) -> bool:
        return (super().account_exists(address) or self.get_nonce(address) != 0
                or self.get_balance(address) != 0)

    def touch_account(self, address: Address) -> None:
        """Touching creates no trie entry: an account without code or storage has none."""

    def delete_account(self, address: Address) -> None:
        super().delete_account(address)
        self._ledger.delete(nonce_key(address))
        self.set_balance(address, 0)

    def _set_account(self, address: Address, account: TrieAccount) -> None:
        blank = account.copy(nonce=0, balance=0)
        if blank == _BLANK_ACCOUNT:
            self._account_cache[address] = blank
            del self._journaltrie[address]
            return
        super()._set_account(address, blank)

    # ---- journal: py-evm's checkpoints also open and close ledger layers ----------------
    def record(self) -> JournalDBCheckpoint:
        checkpoint = super().record()
        self._layers.append(self._ledger.child())
        self._balance_changes.append(0)
        self._checkpoints.append(checkpoint)
        return checkpoint

    def commit(self, checkpoint: JournalDBCheckpoint) -> None:
        super().commit(checkpoint)
        at = self._checkpoints.index(checkpoint)
        for upper in range(len(self._layers) - 1, at, -1):
            self._layers[upper - 1].merge(self._layers[upper])
            self._balance_changes[upper - 1] += self._balance_changes[upper]
        del self._layers[at + 1:], self._balance_changes[at + 1:], self._checkpoints[at:]

    def discard(self, checkpoint: JournalDBCheckpoint) -> None:
        super().discard(checkpoint)
        at = self._checkpoints.index(checkpoint)
        del self._layers[at + 1:], self._balance_changes[at + 1:], self._checkpoints[at:]


class LedgerState(CancunState):
    """The Cancun state over LedgerAccountDB."""

    account_db_class = LedgerAccountDB

    def bind(self, overlay: Overlay) -> None:
        self._account_db.bind(overlay)

    @property
    def balance_change(self) -> int:
        return self._account_db.balance_change
