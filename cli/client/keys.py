"""``aimpact keys``: API keys of your tenant."""

from __future__ import annotations

from cli.client.common import Json, Limit, connect, done, group, out, page_size, show_list, show_one, take
from cli.client.users import RoleOption, role

app = group("API keys of your tenant.")
KEY_COLUMNS = [
    ("id", lambda k: k["id"]),
    ("name", lambda k: k["name"]),
    ("role", lambda k: k["role"]),
    ("prefix", lambda k: k["prefix"]),
    ("last used", lambda k: k["last_used_at"]),
]


@app.command("list")
def list_keys(limit: Limit = 50, json_out: Json = False) -> None:
    """Keys (their prefixes, never the keys)."""
    with connect(json_out) as client:
        show_list("API keys", take(client.api_keys.list(page_size=page_size(limit)), limit), KEY_COLUMNS, json_out)


@app.command()
def create(
    name: str,
    role_name: RoleOption,
    json_out: Json = False,
) -> None:
    """Issue a key; it is shown this once."""
    with connect(json_out) as client:
        created = client.api_keys.create(name, role=role(role_name))
        show_one("API key created", created, json_out)
        if not json_out:
            out.print("[bold yellow]Store the key now: it is not shown again.[/]")


@app.command()
def revoke(key_id: str, json_out: Json = False) -> None:
    """Revoke a key."""
    with connect(json_out) as client:
        client.api_keys.delete(key_id)
        done(f"{key_id} revoked", json_out)
