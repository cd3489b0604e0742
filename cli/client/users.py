"""``aimpact users``: the people of your tenant and their roles."""

from __future__ import annotations

from typing import Annotated, cast

import typer

from aimpact_client.types import Role
from cli.client.common import Json, Limit, connect, done, group, page_size, show_list, show_one, take

app = group("Users of your tenant.")
USER_COLUMNS = [
    ("id", lambda u: u["id"]),
    ("email", lambda u: u["email"]),
    ("role", lambda u: u["role"]),
    ("created", lambda u: u["created_at"]),
]
RoleOption = Annotated[str, typer.Option("--role", help="owner, admin, developer, operator or viewer.")]
"""``--role`` of the commands that create users and keys."""


def role(value: str) -> Role:
    """The role as the client types it (the API refuses an unknown one with 422)."""
    return cast(Role, value)


@app.command("list")
def list_users(limit: Limit = 50, json_out: Json = False) -> None:
    """Users, by id."""
    with connect(json_out) as client:
        show_list("users", take(client.users.list(page_size=page_size(limit)), limit), USER_COLUMNS, json_out)


@app.command()
def create(
    email: str,
    role_name: RoleOption,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, help="At least 12 characters.")],
    json_out: Json = False,
) -> None:
    """Add a user."""
    with connect(json_out) as client:
        show_one("user created", client.users.create(email, password=password, role=role(role_name)), json_out)


@app.command("set-role")
def set_role(user_id: str, role_name: Annotated[str, typer.Argument(metavar="ROLE")], json_out: Json = False) -> None:
    """Change a user's role."""
    with connect(json_out) as client:
        show_one(f"user {user_id}", client.users.update(user_id, role=role(role_name)), json_out)


@app.command()
def delete(user_id: str, json_out: Json = False) -> None:
    """Remove a user."""
    with connect(json_out) as client:
        client.users.delete(user_id)
        done(f"{user_id} removed", json_out)
