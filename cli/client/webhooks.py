"""``aimpact webhooks``: where run events are sent, and what was sent."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.client.common import Json, Limit, connect, done, group, out, page_size, show_list, show_one, take

app = group("Webhooks and their deliveries.")
WEBHOOK_COLUMNS = [
    ("id", lambda w: w["id"]),
    ("url", lambda w: w["url"]),
    ("events", lambda w: ", ".join(w["events"])),
    ("created", lambda w: w["created_at"]),
]
DELIVERY_COLUMNS = [
    ("id", lambda d: d["id"]),
    ("event", lambda d: d["event_type"]),
    ("status", lambda d: d["status"]),
    ("attempts", lambda d: d["attempts"]),
    ("last answer", lambda d: d["last_status_code"] or d["last_error"] or ""),
    ("created", lambda d: d["created_at"]),
]


@app.command("list")
def list_webhooks(limit: Limit = 50, json_out: Json = False) -> None:
    """Webhooks, newest first."""
    with connect(json_out) as client:
        found = take(client.webhooks.list(page_size=page_size(limit)), limit)
        show_list("webhooks", found, WEBHOOK_COLUMNS, json_out)


@app.command()
def get(webhook_id: str, json_out: Json = False) -> None:
    """One webhook."""
    with connect(json_out) as client:
        show_one(f"webhook {webhook_id}", client.webhooks.get(webhook_id), json_out)


@app.command()
def create(
    url: str,
    event: Annotated[list[str], typer.Option("--event", help="run.completed, run.failed, … (repeat).")],
    json_out: Json = False,
) -> None:
    """Subscribe URL to events; the signing secret is shown this once."""
    with connect(json_out) as client:
        show_one("webhook created", client.webhooks.create(url, events=event), json_out)
        if not json_out:
            out.print("[bold yellow]Store the secret now: it is not shown again.[/]")


@app.command()
def delete(webhook_id: str, json_out: Json = False) -> None:
    """Delete a webhook."""
    with connect(json_out) as client:
        client.webhooks.delete(webhook_id)
        done(f"{webhook_id} deleted", json_out)


@app.command()
def deliveries(webhook_id: str, limit: Limit = 20, json_out: Json = False) -> None:
    """What was sent to a webhook, newest first."""
    with connect(json_out) as client:
        found = take(client.webhooks.deliveries(webhook_id, page_size=page_size(limit)), limit)
        show_list(f"deliveries of {webhook_id}", found, DELIVERY_COLUMNS, json_out)
