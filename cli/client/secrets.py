"""``aimpact secrets``: your tenant's secrets (provider keys, tool credentials); values go in, never out."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.client.common import Json, Limit, connect, done, group, page_size, show_list, take

app = group("Your tenant's secrets.")
SECRET_COLUMNS = [
    ("name", lambda s: s["name"]),
    ("created", lambda s: s["created_at"]),
    ("updated", lambda s: s["updated_at"]),
]


@app.command("list")
def list_secrets(limit: Limit = 50, json_out: Json = False) -> None:
    """Secret names and dates, by name."""
    with connect(json_out) as client:
        show_list("secrets", take(client.secrets.list(page_size=page_size(limit)), limit), SECRET_COLUMNS, json_out)


@app.command("set")
def set_secret(
    name: str,
    value: Annotated[str, typer.Option(prompt=True, hide_input=True, help="The value (asked for when omitted).")],
    json_out: Json = False,
) -> None:
    """Store or replace a secret."""
    with connect(json_out) as client:
        stored = client.secrets.set(name, value)
        done(f"secret {stored['name']} stored", json_out, stored)


@app.command()
def delete(name: str, json_out: Json = False) -> None:
    """Delete a secret."""
    with connect(json_out) as client:
        client.secrets.delete(name)
        done(f"secret {name} deleted", json_out)
