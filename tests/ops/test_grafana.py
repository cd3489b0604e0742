"""Grafana provisioning and dashboards: valid JSON, wired to the datasource, only exported metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.support import (
    DOCKER,
    promql_metric_names,
    promtool_check_expressions,
    substitute_grafana_variables,
)

GRAFANA = DOCKER / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range", "__all"}


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _query_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] not in {"row", "text"}]


def _expressions() -> dict[str, str]:
    return {
        f"{path.name}: {panel['title']} [{target['refId']}]": target["expr"]
        for path in DASHBOARDS
        for panel in _query_panels(_load(path))
        for target in panel["targets"]
    }


def test_promql_name_extraction_sees_metrics_and_skips_the_rest() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, route) "
        '(rate(aimpact_http_request_duration_seconds_bucket{route!="x"}[5m])))'
        ' / on (job) group_left sum without (instance) (up{job="a"} offset 1h) * 1e6 > bool 0.5'
    )
    assert promql_metric_names(expr) == {"aimpact_http_request_duration_seconds_bucket", "up"}
    assert substitute_grafana_variables('rate(x{q=~"$task_queue"}[$__rate_interval]) * $price') == (
        'rate(x{q=~".*"}[5m]) * 1'
    )


def test_provisioning_points_grafana_at_prometheus_and_the_dashboards() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert (source["uid"], source["type"], source["url"]) == ("prometheus", "prometheus", "http://prometheus:9090")
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "aimpact.yml").read_text())
    (provider,) = providers["providers"]
    grafana = yaml.safe_load((DOCKER / "compose.yml").read_text())["services"]["grafana"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in grafana["volumes"]}
    assert mounts[provider["options"]["path"]] == "./grafana/dashboards"
    assert mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path: Path) -> None:
    dashboard = _load(path)
    assert dashboard["uid"].startswith("aimpact-")
    assert dashboard["title"].startswith("AImPact / ")
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    panels = _query_panels(dashboard)
    assert len(panels) >= 5
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, panel["title"]
        assert panel["targets"], panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel["targets"]:
            used = set(re.findall(r"\$\{?(\w+)", target["expr"]))
            assert used <= variables | BUILTIN_VARIABLES, (panel["title"], used - variables)


def test_dashboard_uids_are_unique_and_cover_the_topics() -> None:
    dashboards = {p.name: _load(p) for p in DASHBOARDS}
    assert set(dashboards) == {"platform-overview.json", "usage-cost.json", "temporal-sdk.json", "voice.json"}
    assert len({d["uid"] for d in dashboards.values()}) == 4

    def names(name: str) -> set[str]:
        return {
            m for p in _query_panels(dashboards[name]) for t in p["targets"] for m in promql_metric_names(t["expr"])
        }

    assert {
        "aimpact_runs_started_total",
        "aimpact_runs_finished_total",
        "aimpact_run_duration_seconds_bucket",
        "temporal_activity_schedule_to_start_latency_bucket",
        "aimpact_http_requests_total",
        "aimpact_approvals_waiting",
    } <= names("platform-overview.json")
    assert {"aimpact_llm_tokens_total", "aimpact_runs_finished_total"} <= names("usage-cost.json")
    assert all(n.startswith("temporal_") for n in names("temporal-sdk.json"))
    assert {
        "aimpact_voice_stage_duration_seconds_bucket",
        "aimpact_voice_turns_total",
        "aimpact_voice_sessions_ended_total",
        "aimpact_voice_audio_seconds_sum",
    } <= names("voice.json")
    voice_text = json.dumps(dashboards["voice.json"])
    assert all(f'stage=\\"{stage}\\"' in voice_text for stage in ("total", "stt", "tts", "first_audio"))
    usage_text = json.dumps(dashboards["usage-cost.json"])
    assert "no tenant label" in usage_text  # the dashboard says where per-tenant usage lives


def test_every_panel_query_parses_with_promtool(promtool: str, tmp_path: Path) -> None:
    expressions = {k: substitute_grafana_variables(v) for k, v in _expressions().items()}
    assert len(expressions) >= 30
    promtool_check_expressions(promtool, expressions, tmp_path)


def test_every_panel_query_names_only_exported_metrics(exported_names: set[str]) -> None:
    unknown = {}
    for where, expr in _expressions().items():
        names = promql_metric_names(substitute_grafana_variables(expr))
        assert names, where
        if names - exported_names:
            unknown[where] = names - exported_names
    assert not unknown, f"panels query metrics nothing exports: {unknown}"
