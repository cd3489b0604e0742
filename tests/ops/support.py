"""Helpers of the operations tests: metric names, PromQL, compose interpolation, kustomize.

Nothing here starts services; fixtures in ``conftest.py`` do.
"""

from __future__ import annotations

import copy
import re
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
K8S = ROOT / "deploy" / "k8s"

PROMETHEUS_GENERATED = frozenset({"up"})
"""Series Prometheus itself writes for every target (not exported by any process)."""

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "unknown": ("",),
}


def family_sample_names(families: Iterable[Metric]) -> set[str]:
    """Every sample name the families can expose, whether or not a labelled child exists yet."""
    names: set[str] = set()
    for family in families:
        names.update(f"{family.name}{suffix}" for suffix in _SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def registry_sample_names(registry: CollectorRegistry) -> set[str]:
    """Sample names a ``prometheus_client`` registry exports."""
    return family_sample_names(registry.collect())


def exposition_sample_names(text: str) -> set[str]:
    """Sample names present in a Prometheus text exposition."""
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def exposition_series(text: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """Every series (name + sorted labels) in a Prometheus text exposition."""
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample_value(text: str, name: str, labels: Mapping[str, str]) -> float | None:
    """The value of the sample ``name`` whose labels include ``labels``, or ``None``."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


# --- PromQL -------------------------------------------------------------------------------

_GRAFANA_INTERVALS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
_NOT_METRICS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf"}
)


def substitute_grafana_variables(expr: str) -> str:
    """Replace ``$var``/``${var}``: interval variables by durations, others by ``.*`` in quotes and ``1`` outside."""

    def outside(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return _GRAFANA_INTERVALS.get(name, "1")

    parts = re.split(r'("(?:[^"\\]|\\.)*")', expr)
    for i, part in enumerate(parts):
        if i % 2:
            parts[i] = re.sub(r"\$\{?\w+\}?", ".*", part)
        else:
            parts[i] = re.sub(r"\$\{(\w+)\}|\$(\w+)", outside, part)
    return "".join(parts)


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, keywords and labels excluded)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names: set[str] = set()
    for match in re.finditer(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(\s*\()?", text):
        ident, call = match.group(1), match.group(2)
        if not call and ident.lower() not in _NOT_METRICS:
            names.add(ident)
    return names


def promtool_check_expressions(promtool: str, expressions: Mapping[str, str], workdir: Path) -> None:
    """Parse every expression with promtool (as recording rules); ``AssertionError`` naming the bad ones."""
    rules = [{"record": f"check:expr_{i}", "expr": expr} for i, expr in enumerate(expressions.values())]
    path = workdir / "expressions.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "expressions", "rules": rules}]}, sort_keys=False))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, f"promtool rejects an expression: {result.stdout}{result.stderr}\n{expressions}"


# --- Compose --------------------------------------------------------------------------------

_INTERPOLATION = re.compile(r"\$(?:\$|\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<bare>\w+))")


class MissingVariableError(KeyError):
    """A ``${VAR:?message}`` variable that is not set."""


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose-style interpolation of every string in ``value`` (``$$``, ``${X}``, ``${X:-d}``, ``${X:?e}``)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        current = env.get(name)
        empty = current is None or (op is not None and op.startswith(":") and current == "")
        if op in (":-", "-") and empty:
            return arg
        if op in (":?", "?") and empty:
            raise MissingVariableError(f"{name}: {arg}")
        return current or ""

    return _INTERPOLATION.sub(replace, value)


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of a compose ``.env`` file (comments and blanks skipped)."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


# --- Kustomize ------------------------------------------------------------------------------

_CLUSTER_SCOPED = frozenset({"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"})
_SUPPORTED_FIELDS = frozenset({"apiVersion", "kind", "resources", "namespace", "images", "patches", "replacements"})


def _key(doc: Mapping[str, Any]) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def strategic_merge(base: Any, patch: Any) -> Any:
    """The subset of Kubernetes strategic merge the overlays use: maps merge, named lists merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = strategic_merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    named = isinstance(base, list) and isinstance(patch, list)
    if named and all(isinstance(i, dict) and "name" in i for i in [*base, *patch]):
        by_name = {item["name"]: item for item in base}
        out = [strategic_merge(item, next((p for p in patch if p["name"] == item["name"]), {})) for item in base]
        return out + [copy.deepcopy(p) for p in patch if p["name"] not in by_name]
    return copy.deepcopy(patch)


def _set_images(doc: dict[str, Any], images: list[dict[str, str]]) -> None:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    for container in [*spec.get("containers", []), *spec.get("initContainers", [])]:
        name = container["image"].split(":")[0]
        for image in images:
            if image["name"] == name:
                new = image.get("newName", name)
                container["image"] = f"{new}:{image['newTag']}" if "newTag" in image else new


def _field(doc: Any, path: str) -> tuple[Any, str | int]:
    """The parent container and key of ``path`` (``a.b.[name=x].c``) in ``doc``."""
    parts = path.split(".")
    node = doc
    for part in parts[:-1]:
        if part.startswith("[") and "=" in part:
            key, _, value = part.strip("[]").partition("=")
            node = next(item for item in node if item.get(key) == value)
        else:
            node = node[part]
    return node, parts[-1]


def _delimited(value: str, options: Mapping[str, Any], replacement: str | None = None) -> str:
    """The ``index``-th part of ``value`` split by ``delimiter`` or, with ``replacement``, ``value`` with
    that part replaced (appended when the index is past the end, as kustomize does)."""
    if "delimiter" not in options:
        return value if replacement is None else replacement
    parts = value.split(options["delimiter"])
    index = options.get("index", 0)
    if replacement is None:
        if not 0 <= index < len(parts):
            raise ValueError(f"options.index {index} is out of bounds for value {value}")
        return parts[index]
    if index >= len(parts):
        parts.append(replacement)
    else:
        parts[index] = replacement
    return str(options["delimiter"]).join(parts)


def _replace(docs: list[dict[str, Any]], replacements: list[dict[str, Any]]) -> None:
    """Kustomize ``replacements`` with a source field and targets selected by kind and name."""
    for entry in replacements:
        source = entry["source"]
        doc = next(d for d in docs if _key(d) == (source["kind"], source["name"]))
        parent, key = _field(doc, source["fieldPath"])
        value = _delimited(parent[key], source.get("options", {}))
        for target in entry["targets"]:
            selected = (target["select"]["kind"], target["select"]["name"])
            for doc in [d for d in docs if _key(d) == selected]:
                for path in target["fieldPaths"]:
                    parent, key = _field(doc, path)
                    parent[key] = _delimited(parent[key], target.get("options", {}), value)


def render_kustomization(folder: Path) -> list[dict[str, Any]]:
    """Render a kustomization without kubectl (only the fields this repo uses; others raise)."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unsupported = set(spec) - _SUPPORTED_FIELDS
    if unsupported:
        raise ValueError(f"{folder}: the fallback renderer does not support {sorted(unsupported)}")
    docs: list[dict[str, Any]] = []
    for resource in spec.get("resources", []):
        target = (folder / resource).resolve()
        if target.is_dir():
            docs += render_kustomization(target)
        else:
            docs += [d for d in yaml.safe_load_all(target.read_text()) if d]
    for entry in spec.get("patches", []):
        if set(entry) != {"path"}:
            raise ValueError(f"{folder}: only path patches are supported, got {entry}")
        for patch in yaml.safe_load_all((folder / entry["path"]).read_text()):
            patch = dict(patch)
            delete = patch.pop("$patch", None) == "delete"
            matches = [i for i, doc in enumerate(docs) if _key(doc) == _key(patch)]
            if len(matches) != 1:
                raise ValueError(f"patch {entry['path']} matches {len(matches)} resources")
            if delete:
                docs.pop(matches[0])
            else:
                docs[matches[0]] = strategic_merge(docs[matches[0]], patch)
    namespace = spec.get("namespace")
    for doc in docs:
        if namespace and doc["kind"] not in _CLUSTER_SCOPED:
            doc["metadata"]["namespace"] = namespace
        _set_images(doc, spec.get("images", []))
    _replace(docs, spec.get("replacements", []))
    return docs


def by_key(docs: Iterable[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Resources keyed by (kind, name)."""
    return {_key(doc): doc for doc in docs}
