"""`serving`: the compute marketplace's system contract on network 0.

Services: one per provider address, registered with a stake that removal returns.
Ledgers: a main account per user and a sub-account per (user, provider) (ledger.py).
Settlement: providers submit batches of signed request traces (settlement.py).

All funds the module holds sit in the token module under one escrow address, so the
token supply checks keep holding: escrow balance = main accounts + sub-accounts + stakes.
"""

from __future__ import annotations

from dataclasses import dataclass

from zg_actors.chain.modules import token
from zg_actors.chain.modules.base import ArgDecoder, Context, Module, ModuleState
from zg_actors.compute.errors import (
    ComputeInsufficientBalance,
    InvalidServiceCall,
    UnknownLedger,
    UnknownProvider,
)
from zg_actors.compute.ledger import (
    MainAccount,
    SubAccount,
    cancel_refunds,
    request_refund,
    take_unlocked,
)
from zg_actors.compute.params import (
    MS_PER_S,
    REFUNDS_PER_ACCOUNT_MAX,
    SERVICE_FIELD_MAX_CHARS,
    SERVICES_MAX,
    SERVING_MODULE,
    SETTLEMENTS_PER_TX_MAX,
    TRACES_PER_TX_MAX,
    VERIFIABILITY,
)
from zg_actors.compute.settlement import (
    Settlement,
    SettlementResult,
    SettlementStatus,
    settle,
)
from zg_actors.crypto.accounts import ADDRESS_BYTES
from zg_actors.crypto.encoding import (
    Decoded,
    EncodingError,
    as_bytes,
    as_int,
    as_list,
    as_str,
)
from zg_actors.crypto.keccak import keccak256

# Token-module address that holds every deposit and stake; no key exists for it.
ESCROW = keccak256(b"zg/serving/escrow")[-ADDRESS_BYTES:]
_SERVICES = b"services"  # index: encoded list of provider addresses
_args = ArgDecoder(InvalidServiceCall)


@dataclass(frozen=True)
class ServingParams:
    provider_stake: int  # locked on first registration, returned on removal
    min_ledger_balance: int  # a main account is created with at least this
    refund_lock_ms: int  # how long a retrieved refund stays payable to the provider


def _svc_key(provider: bytes) -> bytes:
    return b"svc/" + provider


def _ledger_key(user: bytes) -> bytes:
    return b"ledger/" + user


def _sub_key(user: bytes, provider: bytes) -> bytes:
    return b"sub/" + user + provider


def _subs_key(user: bytes) -> bytes:
    return b"subs/" + user


def _text(value: Decoded, name: str) -> str:
    return _args.text(value, name, SERVICE_FIELD_MAX_CHARS)


def _hex(address: bytes) -> str:
    return "0x" + address.hex()


# ---- state access (also used by the queries) -------------------------------------------
def get_service(state: ModuleState, provider: bytes) -> dict | None:
    raw = state.get_obj(_svc_key(provider))
    if raw is None:
        return None
    f = as_list(raw, 9)
    return {"provider": provider, "service_type": as_str(f[0]), "endpoint": as_str(f[1]),
            "model": as_str(f[2]), "verifiability": as_str(f[3]),
            "input_price": as_int(f[4]), "output_price": as_int(f[5]), "extra": as_str(f[6]),
            "updated_at_ms": as_int(f[7]), "stake": as_int(f[8])}


def _put_service(state: ModuleState, s: dict) -> None:
    state.put_obj(_svc_key(s["provider"]), [
        s["service_type"], s["endpoint"], s["model"], s["verifiability"], s["input_price"],
        s["output_price"], s["extra"], s["updated_at_ms"], s["stake"]])


def service_index(state: ModuleState) -> list[bytes]:
    raw = state.get_obj(_SERVICES)
    return [] if raw is None else [as_bytes(p) for p in as_list(raw)]


def require_service(state: ModuleState, provider: bytes) -> dict:
    service = get_service(state, provider)
    if service is None:
        raise UnknownProvider(f"no service is registered by provider {_hex(provider)}; "
                              f"`zg compute services` lists them", provider=provider)
    return service


def get_ledger(state: ModuleState, user: bytes) -> MainAccount | None:
    raw = state.get(_ledger_key(user))
    return None if raw is None else MainAccount.decode(raw)


def require_ledger(state: ModuleState, user: bytes) -> MainAccount:
    ledger = get_ledger(state, user)
    if ledger is None:
        raise UnknownLedger(f"{_hex(user)} has no compute account yet: deposit first "
                            f"(`zg compute deposit AMOUNT`)", user=user)
    return ledger


def get_sub(state: ModuleState, user: bytes, provider: bytes) -> SubAccount | None:
    raw = state.get(_sub_key(user, provider))
    return None if raw is None else SubAccount.decode(raw)


def sub_providers(state: ModuleState, user: bytes) -> list[bytes]:
    raw = state.get_obj(_subs_key(user))
    return [] if raw is None else [as_bytes(p) for p in as_list(raw)]


def _put_sub(state: ModuleState, user: bytes, provider: bytes, sub: SubAccount) -> None:
    if state.get(_sub_key(user, provider)) is None:
        state.put_obj(_subs_key(user), [*sub_providers(state, user), provider])
    state.put(_sub_key(user, provider), sub.encode())


class ServingModule(Module):
    name = SERVING_MODULE

    def __init__(self, params: ServingParams) -> None:
        self.params = params

    def apply(self, ctx: Context, method: str, args: tuple[Decoded, ...]) -> Decoded:
        result = super().apply(ctx, method, args)
        # Written only when the call succeeds (a failed call rolls back): clients learn
        # the outcome of their committed tx from it.
        ctx.state(SERVING_MODULE).put(b"last/" + ctx.sender, ctx.tx_hash)
        return result

    # ---- escrow -----------------------------------------------------------------------
    def _pay_in(self, ctx: Context, amount: int, what: str) -> None:
        wallet = ctx.state(token.MODULE)
        balance = token.balance_of(wallet, ctx.sender)
        if balance < amount:
            raise ComputeInsufficientBalance(
                f"{what} needs {amount} but wallet {_hex(ctx.sender)} holds {balance}: "
                f"{amount - balance} more tokens are needed in that wallet",
                address=ctx.sender, balance=balance, needed=amount,
                shortfall=amount - balance)
        token.debit(wallet, ctx.sender, amount)
        token.credit(wallet, ESCROW, amount)

    def _pay_out(self, ctx: Context, to: bytes, amount: int) -> None:
        if amount:
            wallet = ctx.state(token.MODULE)
            token.debit(wallet, ESCROW, amount)
            token.credit(wallet, to, amount)

    # ---- services ---------------------------------------------------------------------
    def tx_add_service(self, ctx: Context, service_type: Decoded, endpoint: Decoded,
                       model: Decoded, verifiability: Decoded, input_price: Decoded,
                       output_price: Decoded, extra: Decoded) -> Decoded:
        """Register or update the sender's one service; the first registration stakes."""
        state = ctx.state(SERVING_MODULE)
        verify = _text(verifiability, "verifiability")
        if verify not in VERIFIABILITY:
            raise InvalidServiceCall(f"verifiability must be one of {VERIFIABILITY}, got "
                                     f"{verify!r}", verifiability=verify)
        existing = get_service(state, ctx.sender)
        service = {"provider": ctx.sender, "service_type": _text(service_type, "service_type"),
                   "endpoint": _text(endpoint, "endpoint"), "model": _text(model, "model"),
                   "verifiability": verify,
                   "input_price": _args.uint(input_price, "input_price"),
                   "output_price": _args.uint(output_price, "output_price"),
                   "extra": _text(extra, "extra"), "updated_at_ms": ctx.block.time_ms,
                   "stake": existing["stake"] if existing else self.params.provider_stake}
        if existing is None:
            index = service_index(state)
            if len(index) >= SERVICES_MAX:
                raise InvalidServiceCall(f"the registry is full ({SERVICES_MAX} services)",
                                         limit=SERVICES_MAX)
            self._pay_in(ctx, self.params.provider_stake, "the provider stake")
            state.put_obj(_SERVICES, [*index, ctx.sender])
        _put_service(state, service)
        ctx.emit(SERVING_MODULE, "ServiceUpdated" if existing else "ServiceAdded", ctx.sender,
                 service["model"], service["input_price"], service["output_price"])
        return b""

    def tx_remove_service(self, ctx: Context) -> Decoded:
        """Remove the sender's service and return its stake.

        Users' sub-accounts stay: the provider can still settle what it served, and
        users retrieve the rest through the refund lock as usual.
        """
        state = ctx.state(SERVING_MODULE)
        service = require_service(state, ctx.sender)
        state.delete(_svc_key(ctx.sender))
        state.put_obj(_SERVICES, [p for p in service_index(state) if p != ctx.sender])
        self._pay_out(ctx, ctx.sender, service["stake"])
        ctx.emit(SERVING_MODULE, "ServiceRemoved", ctx.sender, service["stake"])
        return b""

    # ---- main account -----------------------------------------------------------------
    def tx_deposit(self, ctx: Context, amount: Decoded) -> Decoded:
        """Wallet -> main account; the first deposit creates it with the minimum balance."""
        value = _args.uint(amount, "amount", positive=True)
        state = ctx.state(SERVING_MODULE)
        ledger = get_ledger(state, ctx.sender)
        if ledger is None:
            if value < self.params.min_ledger_balance:
                raise InvalidServiceCall(
                    f"a new compute account needs at least {self.params.min_ledger_balance}, "
                    f"got {value}", amount=value, minimum=self.params.min_ledger_balance)
            ledger = MainAccount(0, ctx.block.time_ms)
        self._pay_in(ctx, value, "the deposit")
        ledger.available += value
        state.put(_ledger_key(ctx.sender), ledger.encode())
        ctx.emit(SERVING_MODULE, "Deposit", ctx.sender, value, ledger.available)
        return ledger.available

    def _collect_unlocked(self, ctx: Context, state: ModuleState, user: bytes,
                          ledger: MainAccount) -> int:
        unlocked = 0
        for provider in sub_providers(state, user):
            sub = get_sub(state, user, provider)
            if sub is not None and sub.refunds:
                taken = take_unlocked(sub, ctx.block.time_ms)
                if taken:
                    unlocked += taken
                    state.put(_sub_key(user, provider), sub.encode())
        ledger.available += unlocked
        return unlocked

    def tx_refund(self, ctx: Context, amount: Decoded) -> Decoded:
        """Main account -> wallet, after collecting every sub-account refund that unlocked."""
        value = _args.uint(amount, "amount", positive=True)
        state = ctx.state(SERVING_MODULE)
        ledger = require_ledger(state, ctx.sender)
        self._collect_unlocked(ctx, state, ctx.sender, ledger)
        if value > ledger.available:
            raise ComputeInsufficientBalance(
                f"main account {_hex(ctx.sender)} has {ledger.available} refundable, asked "
                f"{value}; funds in sub-accounts come back with `zg compute retrieve` after "
                f"the lock", available=ledger.available, needed=value,
                shortfall=value - ledger.available)
        ledger.available -= value
        state.put(_ledger_key(ctx.sender), ledger.encode())
        self._pay_out(ctx, ctx.sender, value)
        ctx.emit(SERVING_MODULE, "Refund", ctx.sender, value)
        return ledger.available

    def tx_delete_ledger(self, ctx: Context) -> Decoded:
        """Close the main account: pays out what is available; sub-accounts must be empty."""
        state = ctx.state(SERVING_MODULE)
        ledger = require_ledger(state, ctx.sender)
        self._collect_unlocked(ctx, state, ctx.sender, ledger)
        for provider in sub_providers(state, ctx.sender):
            sub = get_sub(state, ctx.sender, provider)
            if sub is not None and sub.balance:
                raise InvalidServiceCall(
                    f"sub-account with provider {_hex(provider)} still holds {sub.balance}; "
                    f"retrieve it and wait for the lock first", provider=provider,
                    balance=sub.balance)
        for provider in sub_providers(state, ctx.sender):
            state.delete(_sub_key(ctx.sender, provider))
        state.delete(_subs_key(ctx.sender))
        state.delete(_ledger_key(ctx.sender))
        self._pay_out(ctx, ctx.sender, ledger.available)
        ctx.emit(SERVING_MODULE, "LedgerDeleted", ctx.sender, ledger.available)
        return ledger.available

    # ---- sub-accounts -----------------------------------------------------------------
    def tx_transfer(self, ctx: Context, provider: Decoded, amount: Decoded) -> Decoded:
        """Main account -> the sub-account of `provider`, cancelling pending refunds first."""
        to, value = _args.address(provider, "provider"), _args.uint(amount, "amount", positive=True)
        state = ctx.state(SERVING_MODULE)
        require_service(state, to)
        ledger = require_ledger(state, ctx.sender)
        sub = get_sub(state, ctx.sender, to) or SubAccount()
        cancelled = cancel_refunds(sub, value)
        needed = value - cancelled
        if needed > ledger.available:
            raise ComputeInsufficientBalance(
                f"moving {value} to provider {_hex(to)} needs {needed} from the main account, "
                f"which has {ledger.available}: deposit {needed - ledger.available} more "
                f"(`zg compute deposit`)", available=ledger.available, needed=needed,
                shortfall=needed - ledger.available)
        ledger.available -= needed
        sub.balance += needed
        state.put(_ledger_key(ctx.sender), ledger.encode())
        _put_sub(state, ctx.sender, to, sub)
        ctx.emit(SERVING_MODULE, "Transfer", ctx.sender, to, value, cancelled)
        return sub.balance

    def tx_retrieve(self, ctx: Context, provider: Decoded) -> Decoded:
        """Collect unlocked refunds of this sub-account, and start a refund of the rest."""
        of = _args.address(provider, "provider")
        state = ctx.state(SERVING_MODULE)
        ledger = require_ledger(state, ctx.sender)
        sub = get_sub(state, ctx.sender, of)
        if sub is None:
            raise UnknownProvider(f"{_hex(ctx.sender)} has no sub-account with provider "
                                  f"{_hex(of)}", provider=of)
        unlocked = take_unlocked(sub, ctx.block.time_ms)
        if sub.available and len(sub.refunds) >= REFUNDS_PER_ACCOUNT_MAX:
            raise InvalidServiceCall(f"{REFUNDS_PER_ACCOUNT_MAX} refunds already pending with "
                                     f"provider {_hex(of)}; wait for one to unlock",
                                     limit=REFUNDS_PER_ACCOUNT_MAX)
        refund = request_refund(sub, ctx.block.time_ms, self.params.refund_lock_ms)
        ledger.available += unlocked
        state.put(_ledger_key(ctx.sender), ledger.encode())
        state.put(_sub_key(ctx.sender, of), sub.encode())
        locked, unlock_at = (refund.amount, refund.unlock_at_ms) if refund else (0, 0)
        ctx.emit(SERVING_MODULE, "Retrieve", ctx.sender, of, unlocked, locked, unlock_at)
        return [unlocked, locked, unlock_at]

    # ---- settlement -------------------------------------------------------------------
    def tx_settle(self, ctx: Context, items: Decoded) -> Decoded:
        """Pay the sending provider for batches of its users' signed requests."""
        try:
            settlements = [Settlement.from_list(i) for i in as_list(items)]
        except EncodingError as exc:
            raise InvalidServiceCall(f"malformed settlement batch: {exc}") from exc
        if not 0 < len(settlements) <= SETTLEMENTS_PER_TX_MAX:
            raise InvalidServiceCall(f"a settlement tx carries 1..{SETTLEMENTS_PER_TX_MAX} "
                                     f"items, got {len(settlements)}", items=len(settlements))
        traces = sum(len(s.traces) for s in settlements)
        if traces > TRACES_PER_TX_MAX:
            raise InvalidServiceCall(f"{traces} traces in one tx, limit {TRACES_PER_TX_MAX}",
                                     traces=traces)
        state = ctx.state(SERVING_MODULE)
        results: list[SettlementResult] = []
        paid = 0
        for item in settlements:
            sub = get_sub(state, item.user, ctx.sender) or SubAccount()
            result = settle(item, ctx.sender, sub, ctx.block.network_id)
            if result.status in (SettlementStatus.SUCCESS, SettlementStatus.PARTIAL):
                _put_sub(state, item.user, ctx.sender, sub)
            paid += result.paid
            results.append(result)
        self._pay_out(ctx, ctx.sender, paid)
        encoded = [r.to_list() for r in results]
        state.put_obj(b"settle/" + ctx.tx_hash, encoded)
        ctx.emit(SERVING_MODULE, "Settled", ctx.sender, len(settlements), traces, paid)
        return encoded

    # ---- queries ----------------------------------------------------------------------
    def query_params(self, state: ModuleState) -> dict:
        return {"provider_stake": self.params.provider_stake,
                "min_ledger_balance": self.params.min_ledger_balance,
                "refund_lock_s": self.params.refund_lock_ms / MS_PER_S,
                "settlements_per_tx_max": SETTLEMENTS_PER_TX_MAX, "escrow": ESCROW}

    def query_services(self, state: ModuleState) -> list[dict]:
        return [s for p in service_index(state) if (s := get_service(state, p)) is not None]

    def query_service(self, state: ModuleState, provider: bytes) -> dict:
        return require_service(state, provider)

    def query_sub_account(self, state: ModuleState, user: bytes,
                          provider: bytes) -> dict | None:
        sub = get_sub(state, user, provider)
        return None if sub is None else sub.to_dict()

    def query_account(self, state: ModuleState, user: bytes) -> dict:
        ledger = get_ledger(state, user)
        subs = []
        for provider in sub_providers(state, user):
            sub = get_sub(state, user, provider)
            if sub is not None:
                subs.append({"provider": provider, **sub.to_dict()})
        return {"user": user, "exists": ledger is not None,
                "main_available": ledger.available if ledger else 0, "sub_accounts": subs}

    def query_settlement(self, state: ModuleState, tx_hash: bytes) -> list[dict] | None:
        raw = state.get_obj(b"settle/" + tx_hash)
        return None if raw is None else [SettlementResult.from_list(r).to_dict()
                                         for r in as_list(raw)]

    def query_last_tx(self, state: ModuleState, sender: bytes) -> bytes:
        return state.get(b"last/" + sender) or b""

