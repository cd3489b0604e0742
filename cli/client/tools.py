"""``aimpact tools``: built-in tools and your tenant's HTTP tools."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.client.common import Json, Limit, connect, done, group, page_size, parse_json_option, show_list, show_one, take

app = group("Built-in tools and your tenant's HTTP tools.")
TOOL_COLUMNS = [
    ("name", lambda t: t["name"]),
    ("builtin", lambda t: "yes" if t.get("builtin") else ""),
    ("call", lambda t: f"{t.get('method')} {t.get('url')}" if t.get("url") else ""),
    ("description", lambda t: (t.get("description") or "")[:70]),
]


@app.command("list")
def list_tools(limit: Limit = 0, json_out: Json = False) -> None:
    """Tools, by name."""
    with connect(json_out) as client:
        show_list("tools", take(client.tools.list(page_size=page_size(limit)), limit), TOOL_COLUMNS, json_out)


@app.command()
def get(name: str, json_out: Json = False) -> None:
    """One tool."""
    with connect(json_out) as client:
        show_one(f"tool {name}", client.tools.get(name), json_out)


@app.command()
def create(
    name: str,
    url: Annotated[str, typer.Option(help="http(s) URL; {param} placeholders in its path or query.")],
    method: Annotated[str, typer.Option(help="GET, POST, PUT, PATCH or DELETE.")] = "GET",
    description: Annotated[str | None, typer.Option()] = None,
    parameters: Annotated[str | None, typer.Option(help="JSON Schema of the arguments (or @file).")] = None,
    header: Annotated[
        list[str] | None, typer.Option("--header", help="NAME: VALUE (repeat); {{secret:NAME}} inserts a secret.")
    ] = None,
    json_out: Json = False,
) -> None:
    """Define an HTTP tool."""
    headers: dict[str, str] = {}
    for item in header or []:
        key, sep, value = item.partition(":")
        if not sep:
            raise typer.BadParameter(f"{item!r} is not NAME: VALUE", param_hint="--header")
        headers[key.strip()] = value.strip()
    schema: Any = parse_json_option(parameters, "--parameters")
    with connect(json_out) as client:
        tool = client.tools.create(
            name, url=url, method=method, description=description, parameters=schema, headers=headers or None
        )
        show_one("tool created", tool, json_out)


@app.command()
def delete(name: str, json_out: Json = False) -> None:
    """Delete one of your tenant's tools."""
    with connect(json_out) as client:
        client.tools.delete(name)
        done(f"tool {name} deleted", json_out)
