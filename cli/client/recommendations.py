"""``aimpact recommendations``: changes mined from the tenant's history, with their evidence; apply or dismiss."""

from __future__ import annotations

from typing import Annotated, cast

import typer

from aimpact_client.types import RecommendationKind, RecommendationStatus
from cli.client.common import Json, Limit, connect, group, page_size, short, show_list, show_one, take

app = group("Recommendations: evidence-backed changes mined from the tenant's history.")
RECOMMENDATION_COLUMNS = [
    ("id", lambda r: r["id"]),
    ("kind", lambda r: r["kind"]),
    ("status", lambda r: r["status"]),
    ("title", lambda r: r["title"]),
    ("expected gain", lambda r: f"{r['expected_gain']['quantity']:g} {r['expected_gain']['unit']}"),
    ("action", lambda r: short(r["action"].get("summary") or r["action"]["type"])),
    ("seen", lambda r: r["seen_at"]),
]


@app.command("list")
def list_recommendations(
    status: Annotated[str | None, typer.Option(help="Only these: open | applied | dismissed | stale.")] = None,
    kind: Annotated[
        str | None, typer.Option(help="Only this kind: prompt | model | retry_policy | timeout | tool | pipeline.")
    ] = None,
    limit: Limit = 50,
    json_out: Json = False,
) -> None:
    """Recommendations, newest first."""
    chosen_status = cast("RecommendationStatus | None", status)  # the API answers an unknown value with 422
    chosen_kind = cast("RecommendationKind | None", kind)
    with connect(json_out) as client:
        found = client.recommendations.list(status=chosen_status, kind=chosen_kind, page_size=page_size(limit))
        show_list("recommendations", take(found, limit), RECOMMENDATION_COLUMNS, json_out)


@app.command()
def refresh(json_out: Json = False) -> None:
    """Start a mining pass of the tenant's history now (while one runs, that one is shown)."""
    with connect(json_out) as client:
        show_one("mining pass", client.recommendations.refresh(), json_out)


@app.command()
def apply(recommendation_id: str, json_out: Json = False) -> None:
    """Make the change RECOMMENDATION_ID suggests (it needs the permission the change needs)."""
    with connect(json_out) as client:
        show_one(
            f"recommendation {recommendation_id} applied", client.recommendations.apply(recommendation_id), json_out
        )


@app.command()
def dismiss(
    recommendation_id: str,
    reason: Annotated[str | None, typer.Option(help="Why (kept with it and in the audit log).")] = None,
    json_out: Json = False,
) -> None:
    """Dismiss RECOMMENDATION_ID: not suggested again unless its evidence changes materially."""
    with connect(json_out) as client:
        dismissed = client.recommendations.dismiss(recommendation_id, reason=reason)
        show_one(f"recommendation {recommendation_id} dismissed", dismissed, json_out)
