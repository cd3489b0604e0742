"""deploy/k8s: the base and the example overlay render, pass strict schema validation, and are wired.

Rendering uses ``kubectl kustomize`` when kubectl is installed, else a small Python renderer
(tests/ops/support.py); with kubectl present both must agree.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import typer
import yaml
from pydantic import ValidationError

from cli.main import app
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


def _job(resources: dict) -> dict[str, Any]:
    """The migration Job (its name carries the image tag in overlays)."""
    (job,) = [doc for (kind, _), doc in resources.items() if kind == "Job"]
    return job  # type: ignore[no-any-return]


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
        _job(resources)["spec"]["template"]["spec"],
    ]
    for pod in workloads:
        assert pod["serviceAccountName"] == "aimpact"
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            refs = {next(iter(ref)): next(iter(ref.values()))["name"] for ref in container["envFrom"]}
            assert refs == {"configMapRef": "aimpact-config", "secretRef": "aimpact-secrets"}


def test_migration_job_migrates_then_seeds(rendered: tuple[str, dict]) -> None:
    _, resources = rendered
    job = _job(resources)["spec"]
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


def _render(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    return by_key(_kubectl_render(folder) or render_kustomization(folder))


def test_each_release_gets_its_own_migration_job(tmp_path: Path) -> None:
    """A Job's pod template is immutable: a new image tag must create a new Job, not patch the old one."""
    assert _job(_render(OVERLAY))["metadata"]["name"] == "migrate-0.1.0"
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    kustomization = copy / "overlays" / "example" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace('newTag: "0.1.0"', 'newTag: "0.2.0-rc.1"'))
    job = _job(_render(copy / "overlays" / "example"))
    assert job["metadata"]["name"] == "migrate-0.2.0-rc.1"
    images = {
        c["image"]
        for c in [*job["spec"]["template"]["spec"]["initContainers"], *job["spec"]["template"]["spec"]["containers"]]
    }
    assert images == {"registry.example.com/aimpact:0.2.0-rc.1"}
    assert job["spec"]["ttlSecondsAfterFinished"] > 0  # finished Jobs of earlier releases go away


def test_app_pods_wait_for_the_schema_of_their_image(rendered: tuple[str, dict]) -> None:
    _, resources = rendered
    options = {p.name for p in typer.main.get_command(app).commands["migrate"].params}  # type: ignore[attr-defined]
    assert {"wait", "timeout"} <= options
    for name in ("api", "worker-agents", "worker-webhooks", "worker-pipelines", "worker-optimizer", "worker-voice"):
        pod = _pod(resources, "Deployment", name)
        (wait,) = pod["initContainers"]
        assert wait["args"][:2] == ["migrate", "--wait"]
        assert int(wait["args"][wait["args"].index("--timeout") + 1]) > 0
        assert wait["image"] == pod["containers"][0]["image"], "the same image knows the schema it needs"
        assert wait["securityContext"]["readOnlyRootFilesystem"] is True


def test_example_ingress_serves_the_api_over_tls_and_streams_events() -> None:
    resources = _render(OVERLAY)
    ingress = resources[("Ingress", "api")]
    public = urlsplit(resources[("ConfigMap", "aimpact-config")]["data"]["AIMPACT_PUBLIC_URL"])
    assert public.scheme == "https"
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == public.hostname
    assert ingress["spec"]["tls"][0]["hosts"] == [public.hostname]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    service = resources[("Service", "api")]["spec"]
    assert backend["name"] == "api"
    assert backend["port"]["name"] in {p["name"] for p in service["ports"]}
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"  # SSE events arrive as written
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > 10 * settings.stream_keepalive_s
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-body-size"].removesuffix("m")) * 1024**2 >= (
        settings.max_body_bytes
    )


def test_temporal_ui_decodes_through_the_api_codec() -> None:
    """The separately installed UI calls the API's /codec from its origin; the API admits that origin."""
    config = _render(OVERLAY)[("ConfigMap", "aimpact-config")]["data"]
    values = yaml.safe_load((OVERLAY / "temporal-values.yaml").read_text())
    env = {item["name"]: item["value"] for item in values["web"]["additionalEnv"]}
    assert env["TEMPORAL_CODEC_ENDPOINT"] == config["AIMPACT_PUBLIC_URL"].rstrip("/") + "/codec"
    assert env["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"  # the codec-session cookie goes along
    ui = urlsplit(config["AIMPACT_TEMPORAL_UI_URL"])
    assert (ui.scheme, ui.path) == ("https", ""), "CORS compares exact origins: no path"
