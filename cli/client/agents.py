"""``aimpact agents``: create, list, edit (a new version each time) and roll back agents."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.client.common import Json, Limit, connect, done, group, page_size, parse_json_option, show_list, show_one, take

app = group("Agents and their versions.")
AGENT_COLUMNS = [
    ("id", lambda a: a["id"]),
    ("name", lambda a: a["name"]),
    ("version", lambda a: a["version"]),
    ("model", lambda a: f"{a['model'].get('provider')}:{a['model'].get('name')}"),
    ("tools", lambda a: ", ".join(t["name"] for t in a["tools"])),
    ("updated", lambda a: a["updated_at"]),
]
VERSION_COLUMNS = [
    ("version", lambda v: f"{v['version']}{' (current)' if v['current'] else ''}"),
    ("created", lambda v: v["created_at"]),
    ("by", lambda v: f"{v['created_by']['kind']}:{v['created_by']['id']}"),
    ("model", lambda v: f"{v['model'].get('provider')}:{v['model'].get('name')}"),
    ("feedback", lambda v: f"{v['feedback']['n']} × {v['feedback']['mean']}" if v["feedback"]["n"] else ""),
    ("instructions", lambda v: v["instructions"][:60]),
]
Instructions = Annotated[str | None, typer.Option(help="The system instructions.")]
Provider = Annotated[str | None, typer.Option(help="Model provider: local, openai or anthropic.")]
ModelName = Annotated[str | None, typer.Option("--model", help="Model name (local: local-echo).")]
Tools = Annotated[list[str] | None, typer.Option("--tool", help="A tool the agent may call (repeat the option).")]
Spec = Annotated[
    str | None, typer.Option("--spec", help="More fields as a JSON object (or @file): model, tools, memory, …")
]


def _fields(
    instructions: str | None, provider: str | None, model: str | None, tools: list[str] | None, spec: str | None
) -> dict[str, Any]:
    """The body fields the options set; options override the same fields of ``--spec``."""
    fields: Any = parse_json_option(spec, "--spec") or {}
    if not isinstance(fields, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="--spec")
    if instructions is not None:
        fields["instructions"] = instructions
    if provider is not None or model is not None:
        fields["model"] = dict(fields.get("model") or {}) | {
            k: v for k, v in (("provider", provider), ("name", model)) if v is not None
        }
    if tools:
        fields["tools"] = tools
    return fields


@app.command("list")
def list_agents(limit: Limit = 50, json_out: Json = False) -> None:
    """Agents, newest first."""
    with connect(json_out) as client:
        show_list("agents", take(client.agents.list(page_size=page_size(limit)), limit), AGENT_COLUMNS, json_out)


@app.command()
def get(agent_id: str, json_out: Json = False) -> None:
    """An agent at its current version."""
    with connect(json_out) as client:
        show_one(f"agent {agent_id}", client.agents.get(agent_id), json_out)


@app.command()
def create(
    name: str,
    instructions: Instructions = None,
    provider: Provider = None,
    model: ModelName = None,
    tools: Tools = None,
    spec: Spec = None,
    json_out: Json = False,
) -> None:
    """Create an agent (version 1)."""
    fields = _fields(instructions, provider, model, tools, spec)
    fields.pop("name", None)
    with connect(json_out) as client:
        show_one("agent created", client.agents.create(name, **fields), json_out)


@app.command()
def edit(
    agent_id: str,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    instructions: Instructions = None,
    provider: Provider = None,
    model: ModelName = None,
    tools: Tools = None,
    spec: Spec = None,
    promote: Annotated[bool, typer.Option(help="Make the new version current.")] = True,
    json_out: Json = False,
) -> None:
    """Make a new version with the fields given (the rest is kept)."""
    fields = _fields(instructions, provider, model, tools, spec)
    if name is not None:
        fields["name"] = name
    if not fields:
        raise typer.BadParameter("nothing to change: give --instructions, --model, --tool, --spec, …")
    with connect(json_out) as client:
        show_one("new version", client.agents.edit(agent_id, promote=promote, **fields), json_out)


@app.command()
def versions(agent_id: str, limit: Limit = 20, json_out: Json = False) -> None:
    """The agent's versions, newest first."""
    with connect(json_out) as client:
        found = take(client.agents.versions(agent_id, page_size=page_size(limit)), limit)
        show_list(f"versions of {agent_id}", found, VERSION_COLUMNS, json_out)


@app.command()
def promote(agent_id: str, version: int, json_out: Json = False) -> None:
    """Make VERSION current (roll back by promoting an older one)."""
    with connect(json_out) as client:
        promoted = client.agents.promote(agent_id, version)
        done(f"{agent_id}: version {promoted['version']} is current", json_out, promoted)


@app.command()
def delete(agent_id: str, json_out: Json = False) -> None:
    """Archive an agent: it starts no new runs; its versions and runs stay readable."""
    with connect(json_out) as client:
        client.agents.delete(agent_id)
        done(f"{agent_id} archived", json_out)
