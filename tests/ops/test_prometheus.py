"""Prometheus config and alert rules: promtool accepts them, unit tests pass, metrics exist."""

from __future__ import annotations

import subprocess

import yaml

from tests.ops.support import DOCKER, promql_metric_names

PROMETHEUS = DOCKER / "prometheus"


def _promtool(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], capture_output=True, text=True, cwd=PROMETHEUS, timeout=60)


def test_promtool_accepts_config_and_rules(promtool: str) -> None:
    config = _promtool(promtool, "check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    assert "1 rule files found" in config.stdout
    rules = _promtool(promtool, "check", "rules", "alerts.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_alert_unit_tests_pass(promtool: str) -> None:
    result = _promtool(promtool, "test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_unit_tested_and_documented() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    alerts = {r["alert"]: r for group in rules["groups"] for r in group["rules"]}
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())
    fired = {case["alertname"] for test in tests["tests"] for case in test["alert_rule_test"] if case.get("exp_alerts")}
    assert fired == set(alerts), "every alert needs a test case where it fires"
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, name
        assert {"summary", "description"} <= set(rule["annotations"]), name
    assert {
        "AImPactRunFailureRateHigh",
        "AImPactActivityScheduleToStartSlow",
        "AImPactWorkflowTaskScheduleToStartSlow",
        "AImPactApprovalsWaitingTooLong",
        "AImPactApi5xxRateHigh",
    } <= set(alerts)


def test_alerts_name_only_exported_metrics(exported_names: set[str]) -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    used = {r["alert"]: promql_metric_names(r["expr"]) for g in rules["groups"] for r in g["rules"]}
    unknown = {alert: names - exported_names for alert, names in used.items() if names - exported_names}
    assert not unknown, f"alerts use metrics nothing exports: {unknown}"
    assert all(used.values())


def test_scrape_config_reaches_every_metrics_port_of_compose() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    compose = yaml.safe_load((DOCKER / "compose.yml").read_text())
    targets = set()
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            targets |= {(name, sd["port"]) for name in sd["names"]}
        for static in job.get("static_configs", []):
            targets |= {tuple(t.split(":")) for t in static["targets"]}
    assert {("api", 8000), ("worker-agents", 9464), ("worker-agents", 9465)} <= targets
    services = set(compose["services"])
    assert {name for name, _ in targets} - {"localhost"} <= services
    assert config["rule_files"] == ["alerts.yml"]
