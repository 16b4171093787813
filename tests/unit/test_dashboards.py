"""The Grafana dashboards: each is Grafana dashboard JSON (its schema's required fields,
types and layout rules), and queries only metrics zg_actors.metrics defines, by their
exported names.

Ray exports a metric `name` to Prometheus as `ray_<name>`; prometheus_client and Ray's
OpenTelemetry exporter add `_total` to a counter, and a histogram is read through `_bucket`,
`_sum` and `_count`. A counter queried without `_total` finds nothing on a current Ray, so the
suffix must match the metric's kind, not merely be one of the known suffixes.
"""

import re
from pathlib import Path

import jsonschema
import pytest

from tests.dashboards import (
    DASHBOARDS,
    EXPORTED_SUFFIXES,
    METRIC_TOKEN,
    ROOT,
    all_expressions,
    base_name,
    exported_names,
    expressions,
    load,
    panels,
)
from zg_actors.metrics import ALL_METRICS, PILLAR_METRICS

DATASOURCE = "${datasource}"
PANEL_TYPES = ("row", "timeseries", "stat", "bargauge", "gauge", "table", "text")
GRID_COLUMNS = 24  # Grafana's dashboard grid is 24 columns wide
# The part of Grafana's dashboard JSON model (schemaVersion 39) that an import needs: what
# Grafana's dashboard kind requires, the types it gives, and the grid's bounds.
DATASOURCE_REF = {"type": "object", "required": ["type", "uid"],
                  "properties": {"type": {"type": "string"}, "uid": {"type": "string"}}}
GRID_POS = {"type": "object", "required": ["x", "y", "w", "h"], "properties": {
    "x": {"type": "integer", "minimum": 0, "maximum": GRID_COLUMNS - 1},
    "y": {"type": "integer", "minimum": 0},
    "w": {"type": "integer", "minimum": 1, "maximum": GRID_COLUMNS},
    "h": {"type": "integer", "minimum": 1}}}
TARGET = {"type": "object", "required": ["refId", "expr", "datasource"], "properties": {
    "refId": {"type": "string", "pattern": "^[A-Z]$"}, "expr": {"type": "string",
                                                               "minLength": 1},
    "legendFormat": {"type": "string"}, "datasource": DATASOURCE_REF}}
PANEL = {"type": "object", "required": ["id", "type", "title", "gridPos"], "properties": {
    "id": {"type": "integer", "minimum": 1}, "type": {"enum": list(PANEL_TYPES)},
    "title": {"type": "string", "minLength": 1}, "description": {"type": "string"},
    "gridPos": GRID_POS, "datasource": DATASOURCE_REF,
    "targets": {"type": "array", "items": TARGET},
    "fieldConfig": {"type": "object", "required": ["defaults", "overrides"]},
    "options": {"type": "object"}, "panels": {"type": "array"},
    "collapsed": {"type": "boolean"}}}
DASHBOARD_SCHEMA = {
    "type": "object",
    "required": ["title", "uid", "schemaVersion", "panels", "templating", "time", "version"],
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "uid": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,40}$"},
        "description": {"type": "string"}, "tags": {"type": "array",
                                                    "items": {"type": "string"}},
        "schemaVersion": {"type": "integer", "minimum": 36},
        "version": {"type": "integer"}, "editable": {"type": "boolean"},
        "graphTooltip": {"enum": [0, 1, 2]}, "refresh": {"type": "string"},
        "timezone": {"type": "string"},
        "time": {"type": "object", "required": ["from", "to"]},
        "templating": {"type": "object", "required": ["list"], "properties": {
            "list": {"type": "array", "items": {"type": "object",
                                                "required": ["name", "type"]}}}},
        "annotations": {"type": "object", "required": ["list"]},
        "panels": {"type": "array", "minItems": 1, "items": PANEL}},
}


def test_one_dashboard_per_pillar_and_an_overview() -> None:
    assert [p.name for p in DASHBOARDS] == ["zg-chain.json", "zg-compute.json", "zg-da.json",
                                            "zg-evm.json", "zg-kv.json", "zg-overview.json",
                                            "zg-storage.json"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_grafana_dashboard_json(path: Path) -> None:
    dashboard = load(path)
    jsonschema.validate(dashboard, DASHBOARD_SCHEMA)
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), f"{path.name}: panel ids repeat"
    cells: set[tuple[int, int]] = set()
    for panel in panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= GRID_COLUMNS, f"{path.name} / {panel['title']}"
        taken = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                 for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & taken, f"{path.name} / {panel['title']} overlaps another panel"
        cells |= taken
        refs = [target["refId"] for target in panel.get("targets", [])]
        assert len(refs) == len(set(refs)), f"{path.name} / {panel['title']}: refIds repeat"


def test_every_variable_a_query_uses_has_an_all_value() -> None:
    for name, title, expr in all_expressions():
        assert "$" not in expr, f"{name} / {title}: {expr} uses a variable without allValue"


def test_dashboard_uids_are_distinct() -> None:
    uids = [load(path)["uid"] for path in DASHBOARDS]
    assert len(uids) == len(set(uids))


def test_a_broken_dashboard_fails_the_schema() -> None:
    dashboard = load(DASHBOARDS[0])
    dashboard["panels"][1]["gridPos"]["w"] = 30
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(dashboard, DASHBOARD_SCHEMA)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_only_metrics_defined_in_metrics_py(path: Path) -> None:
    exported = exported_names()
    for title, expr in expressions(load(path)):
        assert METRIC_TOKEN.search(expr), f"{path.name} / {title}: queries no metric of ours"
        for token in METRIC_TOKEN.findall(expr):
            assert base_name(token) in ALL_METRICS, f"{path.name} / {title}: unknown {token}"
            kind = ALL_METRICS[base_name(token)][0]
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


def shown(paths: list[Path]) -> set[str]:
    return {base_name(token) for path in paths for _, expr in expressions(load(path))
            for token in METRIC_TOKEN.findall(expr)}


def test_every_metric_is_on_its_pillar_dashboard() -> None:
    by_file = {path.name: path for path in DASHBOARDS}
    where = {"chain": "zg-chain.json", "staking": "zg-chain.json",
             "storage": "zg-storage.json", "da": "zg-da.json", "compute": "zg-compute.json",
             "kv": "zg-kv.json", "evm": "zg-evm.json", "gateway": "zg-da.json"}
    assert set(where) == set(PILLAR_METRICS), "a new metrics table needs its dashboard"
    for pillar, table in PILLAR_METRICS.items():
        assert sorted(set(table) - shown([by_file[where[pillar]]])) == [], pillar


def test_the_overview_shows_every_pillar() -> None:
    overview = shown([ROOT / "dashboards" / "zg-overview.json"])
    for pillar, table in PILLAR_METRICS.items():
        assert overview & set(table), f"the overview shows nothing of {pillar}"


def test_latency_quantiles_come_from_histogram_buckets() -> None:
    quantiles = [(name, title, e) for name, title, e in all_expressions()
                 if "histogram_quantile" in e]
    assert {re.search(r"histogram_quantile\((0\.\d+)", e).group(1)
            for _, _, e in quantiles} >= {"0.5", "0.99"}
    for name, title, expr in quantiles:
        tokens = METRIC_TOKEN.findall(expr)
        assert tokens and all(t.endswith("_bucket") for t in tokens), (name, title)
        assert all(ALL_METRICS[base_name(t)][0] == "histogram" for t in tokens), (name, title)
        assert re.search(r"by \((?:\w+, )*le\)", expr), f"{expr} does not keep `le`"


def test_every_metric_is_listed_in_the_monitoring_guide() -> None:
    guide = (ROOT / "docs" / "monitoring.md").read_text()
    assert sorted(name for name in ALL_METRICS if f"`{name}`" not in guide) == []


