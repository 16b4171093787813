"""cluster.yaml passes the validation `ray up` runs, and declares the zg role resources."""

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from zg_actors import placement

CLUSTER_YAML = Path(__file__).resolve().parents[2] / "cluster.yaml"
HEAD, CPU_WORKER, GPU_WORKER = "zg.head", "zg.cpu_worker", "zg.gpu_worker"
CPU_ROLES = ("zg_validator", "zg_miner", "zg_da_node", "zg_kv", "zg_provider")


def raw_config() -> dict[str, Any]:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def ray_validate(config: dict[str, Any]) -> dict[str, Any]:
    """What `ray up` does before it talks to the cloud: fill in the provider's defaults, merge
    the setup commands, then validate against Ray's schema and cross-field rules."""
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def resources(node_type: str) -> dict[str, int]:
    return raw_config()["available_node_types"][node_type]["resources"]


def test_cluster_yaml_passes_ray_validation() -> None:
    prepared = ray_validate(raw_config())
    assert prepared["cluster_name"] == "zg-actors"
    assert prepared["head_node_type"] == HEAD


def test_node_types_head_cpu_and_gpu_workers() -> None:
    assert set(raw_config()["available_node_types"]) == {HEAD, CPU_WORKER, GPU_WORKER}


def test_cpu_workers_declare_the_zg_role_resources() -> None:
    for role in CPU_ROLES:
        assert resources(CPU_WORKER).get(role, 0) >= 1, role
    assert "GPU" not in resources(CPU_WORKER)


def test_gpu_workers_declare_a_gpu_and_the_encoder_resource() -> None:
    assert resources(GPU_WORKER)["GPU"] >= 1
    assert resources(GPU_WORKER)["zg_gpu_encoder"] >= 1


def test_zg_roles_live_only_on_their_node_type() -> None:
    custom = {node_type: {r for r in resources(node_type) if r.startswith("zg_")}
              for node_type in (HEAD, CPU_WORKER, GPU_WORKER)}
    assert custom == {HEAD: {"zg_control"}, CPU_WORKER: set(CPU_ROLES),
                      GPU_WORKER: {"zg_gpu_encoder"}}


def test_every_node_installs_the_project() -> None:
    # A node type's own worker_setup_commands replace the global ones, so check the merged
    # list each node really runs.
    prepared = ray_validate(raw_config())
    assert "~/zg-actors" in prepared["file_mounts"]
    head_commands = prepared["head_setup_commands"]
    assert any("pip install -e ~/zg-actors" in c for c in head_commands)
    for name, node_type in prepared["available_node_types"].items():
        if name == HEAD:
            continue
        commands = node_type.get("worker_setup_commands", prepared["worker_setup_commands"])
        assert any("pip install -e ~/zg-actors" in c for c in commands), name


def test_every_node_exports_metrics_on_the_same_port() -> None:
    config = raw_config()
    ports = set()
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = [c for c in config[key] if "ray start" in c]
        assert len(start) == 1, key
        ports.update(re.findall(r"--metrics-export-port[= ](\d+)", start[0]))
    assert len(ports) == 1
    assert "--dashboard-host" in " ".join(config["head_start_ray_commands"])


def broken_unknown_top_level_key() -> dict[str, Any]:
    config = raw_config()
    config["zg_networks"] = 3
    return config


def broken_node_type_without_resources() -> dict[str, Any]:
    config = raw_config()
    del config["available_node_types"][CPU_WORKER]["resources"]
    return config


def broken_fractional_custom_resource() -> dict[str, Any]:
    config = raw_config()
    config["available_node_types"][GPU_WORKER]["resources"]["zg_gpu_encoder"] = 0.5
    return config


@pytest.mark.parametrize("broken", [broken_unknown_top_level_key,
                                    broken_node_type_without_resources,
                                    broken_fractional_custom_resource])
def test_ray_validation_rejects_a_broken_copy(broken: Any) -> None:
    with pytest.raises(jsonschema.ValidationError):
        ray_validate(broken())


def test_ray_validation_rejects_an_unknown_head_node_type() -> None:
    config = raw_config()
    config["head_node_type"] = "zg.missing"
    with pytest.raises(ValueError, match="head_node_type"):
        ray_validate(config)


def test_every_zg_role_resource_is_one_that_actors_ask_for() -> None:
    # A resource no actor asks for places nothing: miners, DA nodes, providers and the
    # control singletons once landed on any node, the head's or a GPU worker's included.
    asked = {placement.CONTROL_RESOURCE, placement.VALIDATOR_RESOURCE,
             placement.MINER_RESOURCE, placement.DA_NODE_RESOURCE, placement.KV_RESOURCE,
             placement.PROVIDER_RESOURCE}
    assert set(resources(HEAD)) - {"CPU"} == {placement.CONTROL_RESOURCE}
    assert set(resources(CPU_WORKER)) - {"CPU"} == asked - {placement.CONTROL_RESOURCE}
    # zg_control: 1 on the head holds every singleton's share with room to spare.
    assert resources(HEAD)[placement.CONTROL_RESOURCE] / placement.CONTROL_SHARE >= 10
