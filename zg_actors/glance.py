"""`zg status` at a glance: one look at every pillar's live figures, the rates between two
looks, and the view drawn from them.

`rates` and `render` are pure (tested without Ray); `look` asks the actors.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group
from rich.table import Table

from zg_actors.config import ZG, Config
from zg_actors.errors import ZgError
from zg_actors.storage.constants import SECTOR_BYTES

BYTES_PER_MB = 1_000_000
LOOK_CALL_TIMEOUT_S = 10.0  # an actor slower than this is left out of one look
STATE_COLOURS = {"up": "green", "partial": "yellow"}  # anything else (down) is red


# ---- rates (pure) ---------------------------------------------------------------------------
def _per_s(after: float | None, before: float | None, seconds: float) -> float | None:
    """The rate of a counter between two looks; None when it is unknown or went back (the
    process that counts restarted)."""
    if after is None or before is None or seconds <= 0 or after < before:
        return None
    return (after - before) / seconds


def rates(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Per second between two looks: txs per network, file bytes stored per network, DA
    bytes certified (MB/s), inference requests per provider."""
    seconds = after["at"] - before["at"]
    old_networks = {n["network_id"]: n for n in before.get("networks", [])}
    tx_per_s = {}
    for network in after.get("networks", []):
        old = old_networks.get(network["network_id"], {})
        same_validator = old.get("identity") == network.get("identity")
        tx_per_s[network["network_id"]] = _per_s(
            network.get("committed_txs"), old.get("committed_txs") if same_validator else None,
            seconds)
    old_flows = before.get("storage", {}).get("flows", {})
    stored_per_s = {net: _per_s(flow["bytes"], old_flows.get(net, {}).get("bytes"), seconds)
                    for net, flow in after.get("storage", {}).get("flows", {}).items()}
    certified = _per_s(after.get("da", {}).get("confirmed_bytes"),
                       before.get("da", {}).get("confirmed_bytes"), seconds)
    old_providers = {p["index"]: p for p in before.get("compute", {}).get("providers", [])}
    requests_per_s = {p["index"]: _per_s(p["served"], old_providers.get(p["index"], {})
                                         .get("served"), seconds)
                      for p in after.get("compute", {}).get("providers", [])}
    return {"seconds": seconds, "tx_per_s": tx_per_s, "stored_bytes_per_s": stored_per_s,
            "da_mb_per_s": None if certified is None else certified / BYTES_PER_MB,
            "requests_per_s": requests_per_s}


# ---- the view (pure) ------------------------------------------------------------------------
def _rate(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _mb(size: int) -> str:
    return f"{size / BYTES_PER_MB:,.2f} MB"


def _pillars_table(look: dict[str, Any]) -> Table:
    table = Table(title=f"pillars in namespace {look['namespace']}")
    for column in ("pillar", "state", "actors", "missing"):
        table.add_column(column)
    for name, p in look["pillars"].items():
        colour = STATE_COLOURS.get(p["state"], "red")
        missing = p["missing"] if p["state"] == "partial" else []
        table.add_row(name, f"[{colour}]{p['state']}[/]", f"{p['running']}/{p['expected']}",
                      ", ".join(missing[:4]) + (" ..." if len(missing) > 4 else ""))
    return table


def _chain_table(look: dict[str, Any], per_s: dict[str, Any]) -> Table:
    table = Table(title="chain: consensus networks")
    for column in ("network", "status", "height", "tx/s", "mempool", "validators"):
        table.add_column(column, justify="right")
    for n in look["networks"]:
        validators = n.get("validators") or n.get("members") or []
        table.add_row(str(n["network_id"]), n["status"], str(n.get("height", "-")),
                      _rate(per_s.get("tx_per_s", {}).get(n["network_id"])),
                      str(n.get("mempool", "-")), str(len(validators)))
    return table


def _staking_line(look: dict[str, Any]) -> str:
    s = look["staking"]
    invariants = "ok" if s["invariants_ok"] else s["problems"]
    return (f"C0 tick {s['tick']}: ZG supply {s['supply'] / ZG:,.2f}, staked "
            f"{s['total_staked'] / ZG:,.0f}, bridge mints {s['bridge_mints']}, slashings "
            f"{s['slashings']}, invariants {invariants}")


def _storage_parts(storage: dict[str, Any], per_s: dict[str, Any]) -> list[Any]:
    table = Table(title="storage")
    for column in ("network", "files", "bytes stored", "stored MB/s"):
        table.add_column(column, justify="right")
    for net, flow in sorted(storage["flows"].items()):
        stored = per_s.get("stored_bytes_per_s", {}).get(net)
        table.add_row(str(net), str(flow["files"]), _mb(flow["bytes"]),
                      _rate(None if stored is None else stored / BYTES_PER_MB, 2))
    shards = ", ".join(f"{m['miner']}: {m['shards']}" for m in storage["miners"])
    return [table, f"shards per miner {shards or '-'}; segments short "
                   f"{storage['repair'].get('short', '-')}, lost "
                   f"{storage['repair'].get('lost', '-')}"]


def _da_table(da: dict[str, Any], per_s: dict[str, Any]) -> Table:
    table = Table(title=f"DA (epoch {da.get('epoch', '-')})")
    statuses = sorted(da["statuses"])
    for column in (*statuses, "certified MB/s"):
        table.add_column(column, justify="right")
    table.add_row(*(str(da["statuses"][s]) for s in statuses),
                  _rate(per_s.get("da_mb_per_s"), 2))
    return table


def _compute_table(compute: dict[str, Any], per_s: dict[str, Any]) -> Table:
    table = Table(title="compute providers")
    for column in ("provider", "model", "served", "requests/s", "unsettled requests",
                   "unsettled fees (ZG)"):
        table.add_column(column, justify="right")
    for p in compute["providers"]:
        table.add_row(str(p["index"]), p["model"], str(p["served"]),
                      _rate(per_s.get("requests_per_s", {}).get(p["index"]), 2),
                      str(p["unsettled_requests"]), f"{p['unsettled_fees'] / ZG:.6f}")
    return table


def replay_lag(statuses: list[dict[str, Any]], entries: dict[int, int]) -> list[dict]:
    """Each KV node's replay lag: the flow entries of its network it has not replayed
    (`entries` by network id); a node that did not answer keeps its "down"."""
    out = []
    for s in statuses:
        if "down" in s:
            out.append({"index": s["index"], "down": s["down"]})
            continue
        total = entries.get(s["network_id"])
        out.append({"index": s["index"], "network_id": s["network_id"],
                    "replayed": s["next_tx_seq"], "entries": total,
                    "lag": None if total is None else max(0, total - s["next_tx_seq"]),
                    "last_error": s.get("last_error")})
    return out


def _kv_table(kv: dict[str, Any]) -> Table:
    table = Table(title="KV nodes")
    for column in ("node", "network", "entries replayed", "flow entries", "replay lag",
                   "last error"):
        table.add_column(column)
    for n in kv["nodes"]:
        if "down" in n:
            table.add_row(str(n["index"]), "-", "-", "-", "-", f"[red]down ({n['down']})[/]")
            continue
        table.add_row(str(n["index"]), str(n["network_id"]), str(n["replayed"]),
                      "-" if n["entries"] is None else str(n["entries"]),
                      "-" if n["lag"] is None else str(n["lag"]), n["last_error"] or "")
    return table


def _endpoints_table(endpoints: dict[str, str]) -> Table:
    table = Table(title="endpoints")
    table.add_column("service")
    table.add_column("address")
    for service, address in endpoints.items():
        table.add_row(service, address)
    return table


def render(look: dict[str, Any], per_s: dict[str, Any] | None = None) -> Group:
    """Every pillar's figures as tables: what `zg status` prints and `--watch` redraws."""
    per_s = per_s or {}
    parts: list[Any] = [_pillars_table(look)]
    if "networks" in look:
        parts += [_chain_table(look, per_s), _staking_line(look)]
    if "storage" in look:
        parts += _storage_parts(look["storage"], per_s)
    if "kv" in look:
        parts.append(_kv_table(look["kv"]))
    if "da" in look:
        parts.append(_da_table(look["da"], per_s))
    if "compute" in look:
        parts.append(_compute_table(look["compute"], per_s))
    if look.get("endpoints"):
        parts.append(_endpoints_table(look["endpoints"]))
    parts.append(f"[dim]at {time.strftime('%H:%M:%S', time.localtime(look['at']))}"
                 + (f", rates over {per_s['seconds']:.1f} s" if per_s else
                    ", no rates (one look)") + "[/]")
    return Group(*parts)


# ---- one look (Ray) ---------------------------------------------------------------------------
def look(config: Config) -> dict[str, Any]:
    """Every pillar's state and live figures now; pillars that are down only say so."""
    from zg_actors import stack
    from zg_actors.runtime import call, find_deployment

    pillars = stack.pillar_states(config)
    data: dict[str, Any] = {"namespace": stack.namespace(), "pillars": pillars,
                            "at": time.time(), "endpoints": {}}
    if pillars["chain"]["state"] != "up":
        return data
    d = find_deployment()
    data["networks"] = call(d.manager.list_networks.remote())
    data["staking"] = call(d.staking.supply_report.remote())
    data["relayer"] = call(d.relayer.status.remote())
    active = [n["network_id"] for n in data["networks"] if n["status"] == "active"]
    if pillars["storage"]["state"] != "down":
        data["storage"] = _storage(config, active)
    if pillars["kv"]["state"] != "down":
        data["kv"] = _kv(config)
    data["endpoints"].update(_jsonrpc_endpoints(config))
    if pillars["da"]["state"] != "down":
        pillars["da"]["epoch"] = call(d.staking.da_current_epoch.remote())
        data["da"] = _da(config, pillars["da"]["epoch"])
        data["endpoints"].update(_gateway_endpoint())
    if pillars["compute"]["state"] != "down":
        data["compute"] = _compute(config)
    return data


def _answers(refs: list[Any]) -> list[Any]:
    """The answers of the calls that answered in time; a busy or restarting actor is
    left out of this look."""
    import ray

    from zg_actors.runtime import call

    out = []
    for ref in refs:
        try:
            out.append(call(ref, timeout=LOOK_CALL_TIMEOUT_S))
        except (ray.exceptions.RayError, ZgError):
            continue
    return out


def _storage(config: Config, networks: list[int]) -> dict[str, Any]:
    import ray

    from zg_actors.chain.client import SyncChainClient
    from zg_actors.storage.actors import REPAIRER_NAME, find_miners

    flows = {}
    for network_id in networks:
        flow = SyncChainClient(network_id).query("flow", "flow")
        flows[network_id] = {"files": flow["entries"], "bytes": flow["length"] * SECTOR_BYTES}
    miners = _answers([m.stats.remote() for m in find_miners(config).values()])
    try:
        report = _answers([ray.get_actor(REPAIRER_NAME).status.remote()])
    except ValueError:
        report = []
    repair = {"short": sum(report[0]["short"].values()),
              "lost": sum(len(s) for s in report[0]["lost"].values())} if report else {}
    return {"flows": flows, "repair": repair, "miners": miners}


def _da(config: Config, epoch: int) -> dict[str, Any]:
    from zg_actors.da.deploy import running_dispersers

    stats = _answers([h.stats.remote() for h in running_dispersers(config)])
    statuses: dict[str, int] = {}
    for s in stats:
        for status, count in s["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    return {"epoch": epoch, "statuses": statuses,
            "confirmed_bytes": sum(s["confirmed_bytes"] for s in stats)}


def _kv(config: Config) -> dict[str, Any]:
    from zg_actors.chain.client import SyncChainClient
    from zg_actors.storage.kv.actors import kv_statuses

    statuses = kv_statuses(config)
    entries = {}
    for network_id in {s["network_id"] for s in statuses if "down" not in s}:
        try:
            entries[network_id] = SyncChainClient(network_id).query("flow", "flow")["entries"]
        except (ZgError, OSError):  # the network's validators busy: no lag this look
            continue
    return {"nodes": replay_lag(statuses, entries)}


def _jsonrpc_endpoints(config: Config) -> dict[str, str]:
    """The JSON-RPC apps running on Ray Serve: each network's Ethereum JSON-RPC, the KV's."""
    from ray import serve

    from zg_actors.evm.serve import APP_PREFIX, evm_rpc_url
    from zg_actors.storage.kv.actors import KV_RPC_APP, kv_rpc_url

    try:
        running = list(serve.status().applications)
    except Exception:  # noqa: BLE001 - Serve never started in this cluster: no apps
        return {}
    out = {f"network {name[len(APP_PREFIX):]} Ethereum (JSON-RPC)":
           evm_rpc_url(config, int(name[len(APP_PREFIX):]))
           for name in sorted(running) if name.startswith(APP_PREFIX)}
    if KV_RPC_APP in running:
        out["KV (JSON-RPC)"] = kv_rpc_url(config)
    return out


def _gateway_endpoint() -> dict[str, str]:
    import ray

    from zg_actors.rpc.gateway import GATEWAY_NAME

    try:
        where = _answers([ray.get_actor(GATEWAY_NAME).endpoint.remote()])
    except ValueError:
        return {}
    return {"DA Disperser (gRPC)": f"{where[0]['host']}:{where[0]['port']}"} if where else {}


def _compute(config: Config) -> dict[str, Any]:
    import ray

    from zg_actors.compute.actors import provider_name

    handles = []
    for index in range(config.compute.providers):
        try:
            handles.append(ray.get_actor(provider_name(index)))
        except ValueError:
            continue
    return {"providers": _answers([h.status.remote() for h in handles])}
