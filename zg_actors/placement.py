"""Where zg actors run on a Ray cluster, and where each keeps its data there.

cluster.yaml gives each node type custom resources named after the zg roles. An actor
asks for its role's resource when the cluster offers it; the embedded Ray offers none and
places actors anywhere. Roles kept in several copies (miners, DA nodes, KV nodes,
providers) are also spread over the nodes: erasure coding and quorums count on one node's
loss taking as few of them as possible.

With `data_dir_per_node`, an actor keeps its data under <data_dir>/<node name>/, so that
one shared data_dir (a mounted volume, or one machine in tests) behaves as the local disks
of a real cluster: an actor that Ray moves to another node starts there on an empty store
and recovers by its pillar's own paths (a validator catches up from peers, the repairer
refills a miner, a DA node signs new blobs and holds nothing of the old ones).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ray

CONTROL_RESOURCE = "zg_control"  # the head: C0, networks, relayer, dispersers, repairer, gateway
VALIDATOR_RESOURCE = "zg_validator"
MINER_RESOURCE = "zg_miner"
DA_NODE_RESOURCE = "zg_da_node"
KV_RESOURCE = "zg_kv"
PROVIDER_RESOURCE = "zg_provider"
# The head offers zg_control: 1; each control actor takes this share of it, so that all
# of them (and any added later) fit there.
CONTROL_SHARE = 0.01
NODE_LABEL = "zg-node"  # `ray start --labels zg-node=NAME`: the node's name for its data dir


def role_options(resource: str, amount: float = 1.0, spread: bool = False) -> dict[str, Any]:
    """Actor options for a role: its resource where the cluster offers it, and SPREAD
    scheduling for roles kept in several copies."""
    options: dict[str, Any] = {}
    if resource in ray.cluster_resources():
        options["resources"] = {resource: amount}
    if spread:
        options["scheduling_strategy"] = "SPREAD"
    return options


def control_options() -> dict[str, Any]:
    """Actor options of a cluster-wide singleton: on the head, which is never taken away."""
    return role_options(CONTROL_RESOURCE, CONTROL_SHARE)


def node_name() -> str:
    """This actor's node: its zg-node label, else its Ray node id (new at each node start,
    so an unlabelled node that restarts starts on empty stores)."""
    context = ray.get_runtime_context()
    return context.get_node_labels().get(NODE_LABEL) or context.get_node_id()


def node_data_dir(data_dir: str | Path, per_node: bool) -> Path:
    """Where an actor on this node keeps its stores: data_dir, or data_dir/<node name>."""
    return Path(data_dir) / node_name() if per_node else Path(data_dir)
