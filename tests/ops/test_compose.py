"""docker/compose.yml: valid Compose, complete wiring, settings the app accepts, working setup scripts.

Validators: the ``compose-spec`` parser (strict types and keys, network references), the
checks below (dependencies, volumes, mounts, variables), Debian's ``docker-compose`` 1.29
``config -q`` and, where installed, ``docker compose config -q``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sysconfig
import uuid
from pathlib import Path
from typing import Any

import compose_spec
import pytest
import yaml
from pydantic import ValidationError

from core.ids import SEARCH_ATTRIBUTES
from core.settings import Settings
from tests.ops.conftest import OpsStack
from tests.ops.support import DOCKER, MissingVariableError, interpolate, read_env_file
from workers import registry

COMPOSE = DOCKER / "compose.yml"
ENV_EXAMPLE = DOCKER / ".env.example"
APP_SERVICES = {
    "migrate",
    "seed",
    "api",
    "worker-agents",
    "worker-webhooks",
    "worker-pipelines",
    "worker-optimizer",
    "worker-voice",
}
WORKER_VARIABLES = {"AIMPACT_WORKER_METRICS_HOST", "AIMPACT_WORKER_METRICS_PORT", "AIMPACT_WORKER_SDK_METRICS_PORT"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file interpolated with .env.example."""
    raw = yaml.safe_load(COMPOSE.read_text())
    rendered: dict[str, Any] = interpolate(raw, read_env_file(ENV_EXAMPLE))
    return rendered


def test_compose_spec_parses_and_references_resolve(compose: dict[str, Any]) -> None:
    project = compose_spec.PyCompose.from_json(json.dumps(compose))
    project.validate()
    assert {
        "temporal-postgres",
        "temporal-schema",
        "temporal",
        "temporal-setup",
        "temporal-ui",
        "postgres",
        "redis",
        "migrate",
        "seed",
        "api",
        "worker-agents",
        "worker-webhooks",
        "worker-pipelines",
        "worker-optimizer",
        "worker-voice",
        "prometheus",
        "grafana",
    } == set(project.service_names())
    # The parser is strict (a misspelt key is an error), so acceptance above means something.
    broken = json.loads(json.dumps(compose))
    broken["services"]["api"]["helthcheck"] = broken["services"]["api"].pop("healthcheck")
    with pytest.raises(ValueError, match="helthcheck"):
        compose_spec.PyCompose.from_json(json.dumps(broken))


def test_required_secrets_have_no_defaults() -> None:
    raw = yaml.safe_load(COMPOSE.read_text())
    env = read_env_file(ENV_EXAMPLE)
    for secret in ("POSTGRES_PASSWORD", "AIMPACT_JWT_SECRET", "AIMPACT_ENCRYPTION_KEYS", "AIMPACT_ADMIN_PASSWORD"):
        with pytest.raises(MissingVariableError, match=secret):
            interpolate(raw, {k: v for k, v in env.items() if k != secret})


def test_dependencies_exist_and_wait_for_health_or_completion(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        for target, rule in depends.items() if isinstance(depends, dict) else ((d, {}) for d in depends):
            assert target in services, (name, target)
            condition = rule.get("condition", "service_started")
            if condition == "service_healthy":
                assert "healthcheck" in services[target], (name, target)
            if condition == "service_completed_successfully":
                assert services[target].get("restart", "no") in {"no", "on-failure"}, target
    for app in ("api", "worker-agents", "worker-webhooks", "worker-pipelines", "worker-optimizer"):
        conditions = {t: r["condition"] for t, r in services[app]["depends_on"].items()}
        assert conditions == {
            "seed": "service_completed_successfully",
            "redis": "service_healthy",
            "temporal-setup": "service_completed_successfully",
        }
    assert services["seed"]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}


def test_images_are_pinned_ports_local_and_mounts_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        assert ":" in image, name
        assert not image.endswith(":latest"), name
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DOCKER / source).exists(), (name, source)
            else:
                assert source in compose["volumes"], (name, source)
    assert compose["services"]["postgres"]["image"].startswith("pgvector/pgvector:pg16")
    for name, queue in registry.QUEUES.items():  # a worker-<queue> service per registered task queue
        worker = compose["services"][f"worker-{name}"]
        assert worker["command"] == ["worker", "--queue", name]
        assert f"127.0.0.1:{queue.metrics.default}/readyz" in " ".join(worker["healthcheck"]["test"])


def test_app_environment_is_settings_the_app_accepts(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    known = {f"AIMPACT_{name.upper()}" for name in Settings.model_fields} | WORKER_VARIABLES
    envs = [compose["services"][name]["environment"] for name in APP_SERVICES]
    assert all(env == envs[0] for env in envs)
    env = envs[0]
    unknown = {k for k in env if k.startswith("AIMPACT_")} - known
    assert not unknown, f"compose sets variables Settings does not read: {unknown}"
    for key in (
        "AIMPACT_ENV",
        "AIMPACT_HOME",
        "AIMPACT_API_HOST",
        "AIMPACT_API_PORT",
        "AIMPACT_DATABASE_URL",
        "AIMPACT_REDIS_URL",
        "AIMPACT_TEMPORAL_ADDRESS",
        "AIMPACT_TEMPORAL_NAMESPACE",
        "AIMPACT_ADMIN_EMAIL",
        "AIMPACT_ADMIN_PASSWORD",
        "AIMPACT_BOOTSTRAP_API_KEY",
        "AIMPACT_LOG_FORMAT",
    ):
        assert env.get(key), key
    for key in [k for k in os.environ if k.startswith("AIMPACT_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    with pytest.raises(ValidationError, match="example value"):  # .env.example's placeholders never start
        Settings(_env_file=None)  # type: ignore[call-arg]
    strong = read_env_file(ENV_EXAMPLE) | {
        "POSTGRES_PASSWORD": base64.urlsafe_b64encode(os.urandom(24)).decode(),
        "AIMPACT_ADMIN_PASSWORD": base64.b64encode(os.urandom(24)).decode(),
        "AIMPACT_BOOTSTRAP_API_KEY": "aim_" + os.urandom(24).hex(),
        "AIMPACT_JWT_SECRET": base64.b64encode(os.urandom(48)).decode(),
        "AIMPACT_ENCRYPTION_KEYS": "k1:" + base64.b64encode(os.urandom(32)).decode(),
    }
    app_env = interpolate(yaml.safe_load(COMPOSE.read_text()), strong)["services"]["api"]["environment"]
    for key, value in app_env.items():
        monkeypatch.setenv(key, str(value))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.env == "prod"
    assert settings.api_host == "0.0.0.0"
    assert settings.database_target.startswith("postgresql+psycopg://aimpact:")
    assert settings.temporal_target == "temporal:7233"


def test_temporal_ui_decodes_through_the_api_codec(compose: dict[str, Any]) -> None:
    """The UI calls the API's /codec from its own origin, with the codec-session cookie; the API admits it."""
    ui, api = compose["services"]["temporal-ui"], compose["services"]["api"]
    api_port = api["ports"][0].split(":")[1]
    ui_port = ui["ports"][0].split(":")[1]
    assert ui["environment"]["TEMPORAL_CODEC_ENDPOINT"] == f"http://localhost:{api_port}/codec"
    assert ui["environment"]["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"
    assert api["environment"]["AIMPACT_TEMPORAL_UI_URL"] == f"http://localhost:{ui_port}"


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    ran = False
    legacy = shutil.which("docker-compose")
    if legacy:
        ok = subprocess.run(
            [legacy, "-f", str(COMPOSE), "--env-file", str(ENV_EXAMPLE), "config", "-q"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ok.returncode == 0, ok.stderr
        empty = tmp_path / "empty.env"
        empty.write_text("")
        missing = subprocess.run(
            [legacy, "-f", str(COMPOSE), "--env-file", str(empty), "config", "-q"],
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith(("AIMPACT_", "POSTGRES_", "GRAFANA_"))},
        )
        assert missing.returncode != 0
        assert "docker/.env" in missing.stderr
        ran = True
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        plugin = subprocess.run(
            [docker, "compose", "-f", str(COMPOSE), "--env-file", str(ENV_EXAMPLE), "config", "-q"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert plugin.returncode == 0, plugin.stderr
        ran = True
    if not ran:
        pytest.skip("neither docker-compose nor the docker compose plugin is installed (.ci/run installs the first)")


def test_setup_scripts_are_valid_shell() -> None:
    for script in sorted((DOCKER / "temporal").glob("*.sh")):
        result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, (script.name, result.stderr)
        assert os.access(script, os.X_OK), f"{script.name} must be executable"


def test_namespace_setup_registers_the_search_attributes_the_code_uses(ops_stack: OpsStack, compose: dict) -> None:
    listed = compose["services"]["temporal-setup"]["environment"]["SEARCH_ATTRIBUTES"].split()
    assert listed == [key.name for key in SEARCH_ATTRIBUTES]
    scripts = Path(sysconfig.get_path("scripts"))
    env = dict(
        os.environ,
        PATH=f"{scripts}:{os.environ['PATH']}",
        TEMPORAL_ADDRESS=ops_stack.stack.temporal_address,
        TEMPORAL_NAMESPACE=f"ops-setup-{uuid.uuid4().hex[:8]}",
        SEARCH_ATTRIBUTES=" ".join(listed),
    )
    script = DOCKER / "temporal" / "setup-namespace.sh"
    first = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stdout + first.stderr
    again = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("exists") == len(listed)
    attributes = subprocess.run(
        [
            str(scripts / "temporal"),
            "operator",
            "search-attribute",
            "list",
            "--address",
            env["TEMPORAL_ADDRESS"],
            "-n",
            env["TEMPORAL_NAMESPACE"],
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert attributes.returncode == 0, attributes.stderr
    for name in listed:
        assert f'"{name}"' in attributes.stdout
