"""deploy/k8s: the base and the example overlay render, pass strict schema validation, and are wired.

Rendering uses ``kubectl kustomize`` when kubectl is installed, else a small Python renderer
(tests/ops/support.py); with kubectl present both must agree.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import ValidationError

from core.settings import Settings
from tests.ops.support import K8S, by_key, render_kustomization

BASE = K8S / "base"
OVERLAY = K8S / "overlays" / "example"
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
WORKER_VARIABLES = {"AIMPACT_WORKER_METRICS_HOST", "AIMPACT_WORKER_METRICS_PORT", "AIMPACT_WORKER_SDK_METRICS_PORT"}


def _kubectl_render(folder: Path) -> list[dict[str, Any]] | None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    result = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module", params=["base", "example"])
def rendered(request: pytest.FixtureRequest) -> tuple[str, dict[tuple[str, str], dict[str, Any]]]:
    """(name, resources by (kind, name)) of one kustomization."""
    folder = BASE if request.param == "base" else OVERLAY
    docs = _kubectl_render(folder) or render_kustomization(folder)
    return request.param, by_key(docs)


@pytest.mark.parametrize("folder", [BASE, OVERLAY], ids=["base", "example"])
def test_fallback_renderer_matches_kubectl(folder: Path) -> None:
    ours = by_key(render_kustomization(folder))
    theirs = _kubectl_render(folder)
    if theirs is None:
        pytest.skip("kubectl not installed: only the Python renderer is available")
    assert ours == by_key(theirs)


def test_resources_pass_strict_schema_validation(rendered: tuple[str, dict]) -> None:
    _, resources = rendered
    for version in KUBERNETES_VERSIONS:
        for doc in resources.values():
            kubernetes_validate.validate(doc, version, strict=True)
    broken = dict(resources[("Deployment", "api")], spec={"replicas": 1, "templat": {}})
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_every_resource_file_validates_on_its_own() -> None:
    files = sorted(BASE.glob("*.yaml"))
    assert {f.name for f in files} - {"kustomization.yaml"} == set(
        yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"]
    )
    for path in files:
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            kubernetes_validate.validate(doc, KUBERNETES_VERSIONS[-1], strict=True)


def _pod(resources: dict, kind: str, name: str) -> dict[str, Any]:
    pod: dict[str, Any] = resources[(kind, name)]["spec"]["template"]["spec"]
    return pod


def test_deployments_probe_health_and_readiness_with_resources(rendered: tuple[str, dict]) -> None:
    _, resources = rendered
    ports = {"api": ("http", 8000), "worker-agents": ("metrics", 9464)}
    for name, (port_name, port) in ports.items():
        deployment = resources[("Deployment", name)]
        assert "replicas" not in deployment["spec"], "the HorizontalPodAutoscaler owns the replica count"
        (container,) = _pod(resources, "Deployment", name)["containers"]
        assert {p["name"]: p["containerPort"] for p in container["ports"]}[port_name] == port
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port_name}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port_name}
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert set(container["resources"]) == {"requests", "limits"}
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert _pod(resources, "Deployment", name)["securityContext"]["runAsNonRoot"] is True
        selector = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()
    worker = _pod(resources, "Deployment", "worker-agents")["containers"][0]
    assert worker["args"] == ["worker", "--queue", "agents"]
    assert {p["containerPort"] for p in worker["ports"]} == {9464, 9465}


def test_autoscalers_budgets_and_services_select_real_pods(rendered: tuple[str, dict]) -> None:
    _, resources = rendered
    pods = {
        name: resources[("Deployment", name)]["spec"]["template"]["metadata"]["labels"]
        for name in ("api", "worker-agents")
    }
    for name in pods:
        hpa = resources[("HorizontalPodAutoscaler", name)]["spec"]
        assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert 1 < hpa["minReplicas"] <= hpa["maxReplicas"]
        pdb = resources[("PodDisruptionBudget", name)]["spec"]
        assert pdb["selector"]["matchLabels"].items() <= pods[name].items()
        assert pdb["minAvailable"] < hpa["minReplicas"], "a budget equal to the minimum would block every drain"
    api = resources[("Service", "api")]["spec"]
    assert api["selector"].items() <= pods["api"].items()
    assert api["ports"][0]["targetPort"] == "http"
    metrics = resources[("Service", "worker-agents-metrics")]["spec"]
    assert metrics["selector"].items() <= pods["worker-agents"].items()


def test_config_and_secret_wiring(rendered: tuple[str, dict]) -> None:
    name, resources = rendered
    config = resources[("ConfigMap", "aimpact-config")]["data"]
    known = {f"AIMPACT_{field.upper()}" for field in Settings.model_fields} | WORKER_VARIABLES
    assert set(config) <= known
    secret_keys = {
        "AIMPACT_DATABASE_URL",
        "AIMPACT_REDIS_URL",
        "AIMPACT_ADMIN_PASSWORD",
        "AIMPACT_BOOTSTRAP_API_KEY",
        "AIMPACT_JWT_SECRET",
        "AIMPACT_ENCRYPTION_KEYS",
    }
    assert not secret_keys & set(config), "secrets belong in the Secret"
    if name == "base":
        placeholders = resources[("Secret", "aimpact-secrets")]["stringData"]
        assert secret_keys <= set(placeholders)
        env = {**config, **placeholders}
        with pytest.raises(ValidationError, match="AIMPACT_JWT_SECRET"):  # placeholders never run a pod
            Settings(_env_file=None, **{k.removeprefix("AIMPACT_").lower(): v for k, v in env.items() if k in known})
    else:
        assert ("Secret", "aimpact-secrets") not in resources, "the overlay's Secret is created out of band"
    workloads = [
        *(_pod(resources, "Deployment", n) for n in ("api", "worker-agents")),
        _pod(resources, "Job", "migrate"),
    ]
    for pod in workloads:
        assert pod["serviceAccountName"] == "aimpact"
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            refs = {next(iter(ref)): next(iter(ref.values()))["name"] for ref in container["envFrom"]}
            assert refs == {"configMapRef": "aimpact-config", "secretRef": "aimpact-secrets"}


def test_migration_job_migrates_then_seeds(rendered: tuple[str, dict]) -> None:
    _, resources = rendered
    job = resources[("Job", "migrate")]["spec"]
    pod = job["template"]["spec"]
    assert [c["args"] for c in pod["initContainers"]] == [["migrate"]]
    assert [c["args"] for c in pod["containers"]] == [["seed"]]
    assert pod["restartPolicy"] == "Never"
    assert job["backoffLimit"] >= 1


def test_example_overlay_points_at_an_existing_temporal_cluster() -> None:
    resources = by_key(_kubectl_render(OVERLAY) or render_kustomization(OVERLAY))
    config = resources[("ConfigMap", "aimpact-config")]["data"]
    assert config["AIMPACT_TEMPORAL_ADDRESS"] == "temporal-frontend.temporal:7233"
    assert {doc["metadata"].get("namespace") for doc in resources.values()} == {"aimpact"}
    images = {
        c["image"]
        for key, doc in resources.items()
        if key[0] in {"Deployment", "Job"}
        for c in [
            *doc["spec"]["template"]["spec"].get("initContainers", []),
            *doc["spec"]["template"]["spec"]["containers"],
        ]
    }
    assert images == {"registry.example.com/aimpact:0.1.0"}
    assert resources[("HorizontalPodAutoscaler", "worker-agents")]["spec"]["minReplicas"] == 3
    worker = resources[("Deployment", "worker-agents")]["spec"]["template"]["spec"]["containers"][0]
    assert worker["resources"]["limits"]["memory"] == "2Gi"
    assert worker["readinessProbe"]["httpGet"]["path"] == "/readyz"  # the patch kept the base's probes
