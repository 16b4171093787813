"""The Grafana dashboards query only metrics zg_actors.metrics defines, by their exported names.

Ray exports a metric `name` to Prometheus as `ray_<name>`; prometheus_client and Ray's
OpenTelemetry exporter add `_total` to a counter, and a histogram is read through `_bucket`,
`_sum` and `_count`. A counter queried without `_total` finds nothing on a current Ray, so the
suffix must match the metric's kind, not merely be one of the known suffixes.
"""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from zg_actors.metrics import CHAIN_METRICS, STAKING_METRICS

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
METRICS = {**CHAIN_METRICS, **STAKING_METRICS}
EXPORTED_SUFFIXES = {"gauge": ("",), "counter": ("_total",),
                     "histogram": ("_bucket", "_sum", "_count")}
METRIC_TOKEN = re.compile(r"ray_zg_[a-z_]+")
DATASOURCE = "${datasource}"


def exported_names() -> dict[str, str]:
    """Each Prometheus series name Ray exports for our metrics -> the metrics.py name."""
    return {f"ray_{name}{suffix}": name
            for name, (kind, _, _) in METRICS.items()
            for suffix in EXPORTED_SUFFIXES[kind]}


def base_name(token: str) -> str:
    """`ray_zg_x_total` -> `zg_x`: what a token names once the prefix and suffix are gone."""
    name = token.removeprefix("ray_")
    for suffix in ("_bucket", "_sum", "_count", "_total"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def expressions(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) for every panel target."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def test_there_is_a_dashboard() -> None:
    assert [p.name for p in DASHBOARDS] == ["zg-chain.json"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_only_metrics_defined_in_metrics_py(path: Path) -> None:
    exported = exported_names()
    for title, expr in expressions(load(path)):
        for token in METRIC_TOKEN.findall(expr):
            assert base_name(token) in METRICS, f"{path.name} / {title}: unknown {token}"
            kind = METRICS[base_name(token)][0]
            assert token in exported, (f"{path.name} / {title}: {token} is not exported; "
                                       f"a {kind} is queried as {EXPORTED_SUFFIXES[kind]}")


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_network_variable_uses_an_exported_metric(path: Path) -> None:
    exported = exported_names()
    for variable in load(path)["templating"]["list"]:
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query)
        for token in METRIC_TOKEN.findall(text):
            assert token in exported, f"{path.name} variable {variable['name']}: {token}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_panel_queries_the_datasource_variable(path: Path) -> None:
    dashboard = load(path)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == DATASOURCE, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE, panel["title"]


def test_every_metric_is_on_some_panel() -> None:
    shown = {base_name(token)
             for path in DASHBOARDS
             for _, expr in expressions(load(path))
             for token in METRIC_TOKEN.findall(expr)}
    assert sorted(set(METRICS) - shown) == []


def test_commit_latency_quantiles_come_from_the_histogram_buckets() -> None:
    exprs = [expr for path in DASHBOARDS for _, expr in expressions(load(path))]
    quantiles = [e for e in exprs if "histogram_quantile" in e]
    assert {re.search(r"histogram_quantile\((0\.\d+)", e).group(1) for e in quantiles} >= {
        "0.5", "0.99"}
    for expr in quantiles:
        assert "ray_zg_chain_commit_latency_seconds_bucket" in expr
        assert " le)" in expr or ", le)" in expr, expr


def test_every_metric_is_listed_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    assert sorted(name for name in METRICS if f"`{name}`" not in readme) == []
