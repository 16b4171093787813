"""Reading the Grafana dashboards in dashboards/: their panels and each panel's PromQL, for
the unit tests (names, structure) and the Prometheus test (every query has data)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zg_actors.metrics import ALL_METRICS

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
# Ray exports a metric `name` as `ray_<name>`, a counter with `_total`, a histogram through
# `_bucket`, `_sum` and `_count`.
EXPORTED_SUFFIXES = {"gauge": ("",), "counter": ("_total",),
                     "histogram": ("_bucket", "_sum", "_count")}
METRIC_TOKEN = re.compile(r"ray_zg_[a-z_]+")


def exported_names() -> dict[str, str]:
    """Each Prometheus series name Ray exports for our metrics -> the metrics.py name."""
    return {f"ray_{name}{suffix}": name
            for name, (kind, _, _) in ALL_METRICS.items()
            for suffix in EXPORTED_SUFFIXES[kind]}


def base_name(token: str) -> str:
    """`ray_zg_x_total` -> `zg_x`: what a token names once the prefix and suffix are gone."""
    name = token.removeprefix("ray_")
    for suffix in ("_bucket", "_sum", "_count", "_total"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


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


def at_all(dashboard: dict[str, Any], expr: str) -> str:
    """`expr` as Grafana sends it with every variable at "All" (the variable's allValue)."""
    for variable in dashboard["templating"]["list"]:
        if "allValue" in variable:
            for spelling in (f"${{{variable['name']}}}", f"${variable['name']}"):
                expr = expr.replace(spelling, variable["allValue"])
    return expr


def all_expressions() -> Iterator[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL with every variable at "All") over every
    dashboard."""
    for path in DASHBOARDS:
        dashboard = load(path)
        for title, expr in expressions(dashboard):
            yield path.name, title, at_all(dashboard, expr)
