"""``aimpact tenants``: create tenants and set their quotas (platform administrators); read your own."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.client.common import Json, Limit, connect, group, page_size, parse_json_option, show_list, show_one, take

app = group("Tenants (creating and changing them takes a platform administrator).")
TENANT_COLUMNS = [
    ("id", lambda t: t["id"]),
    ("name", lambda t: t["name"]),
    ("quotas", lambda t: t["quotas"]),
    ("created", lambda t: t["created_at"]),
]
Password = Annotated[str, typer.Option(prompt=True, hide_input=True, help="At least 12 characters.")]


@app.command("list")
def list_tenants(limit: Limit = 50, json_out: Json = False) -> None:
    """Every tenant (platform administrators)."""
    with connect(json_out) as client:
        show_list("tenants", take(client.tenants.list(page_size=page_size(limit)), limit), TENANT_COLUMNS, json_out)


@app.command()
def get(tenant_id: str, json_out: Json = False) -> None:
    """A tenant (members see their own)."""
    with connect(json_out) as client:
        show_one(f"tenant {tenant_id}", client.tenants.get(tenant_id), json_out)


@app.command()
def create(
    name: str,
    owner_email: Annotated[str, typer.Option(help="The first owner's email.")],
    owner_password: Password,
    json_out: Json = False,
) -> None:
    """Create a tenant and its owner."""
    with connect(json_out) as client:
        tenant = client.tenants.create(name, owner_email=owner_email, owner_password=owner_password)
        show_one("tenant created", tenant, json_out)


@app.command()
def update(
    tenant_id: str,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    quotas: Annotated[str | None, typer.Option(help='JSON object, e.g. {"concurrent_runs": 20} (or @file).')] = None,
    egress: Annotated[list[str] | None, typer.Option("--egress", help="An allowed host or CIDR (repeat).")] = None,
    json_out: Json = False,
) -> None:
    """Change a tenant's name, quotas or egress allowlist."""
    with connect(json_out) as client:
        tenant = client.tenants.update(
            tenant_id, name=name, quotas=parse_json_option(quotas, "--quotas"), egress_allowlist=egress
        )
        show_one(f"tenant {tenant_id}", tenant, json_out)
