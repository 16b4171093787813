"""Protocol constants of the compute marketplace, named once with their units."""

from __future__ import annotations

from zg_actors.config import ZG

SERVING_NETWORK_ID = 0  # the consensus network whose `serving` module runs the marketplace
SERVING_MODULE = "serving"
MS_PER_S = 1_000
AMOUNT_MAX = 2**256 - 1  # base units: 0G's serving contract takes amounts as uint256
REFUND_LOCK_DEFAULT_S = 86_400  # 0G default lock before a retrieved refund unlocks
REFUND_LOCK_MAX_S = 7 * 86_400  # 0G upper bound (its lower bound, 1 h, is relaxed on devnets)
SETTLEMENTS_PER_TX_MAX = 50  # 0G: settlements (one user's requests each) per transaction
# Traces per settlement tx: each is about 170 encoded bytes, so 200 stay well under the
# devnet's 64 KiB tx limit.
TRACES_PER_TX_MAX = 200
REFUNDS_PER_ACCOUNT_MAX = 30  # pending refunds per sub-account; bounds the state a user can grow
SERVICES_MAX = 1_000  # registered services (the registry index is one state entry)
SERVICE_FIELD_MAX_CHARS = 256  # model, endpoint, service type, verifiability, extra info
VERIFIABILITY = ("none", "TeeML")  # 0G: no proof, or a TEE-signed response


def as_tokens(amount: int) -> str:
    """Base units as exact tokens for people (18 decimals): 33000000000000 -> "0.000033"."""
    whole, fraction = divmod(abs(amount), ZG)
    sign = "-" if amount < 0 else ""
    return f"{sign}{whole}.{fraction:018d}".rstrip("0").rstrip(".")
