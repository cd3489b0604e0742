"""``aimpact memories``: long-term memory per subject (the end user an agent talks to)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.client.common import (
    Json,
    Limit,
    cell,
    connect,
    done,
    group,
    page_size,
    parse_json_option,
    print_json,
    show_list,
    show_one,
    take,
)

app = group("Long-term memory per subject.")
MEMORY_COLUMNS = [
    ("id", lambda m: m["id"]),
    ("text", lambda m: m["text"][:80]),
    ("status", lambda m: m["status"]),
    ("importance", lambda m: m["importance"]),
    ("created", lambda m: m["created_at"]),
]
HIT_COLUMNS = [
    ("id", lambda h: h["id"]),
    ("score", lambda h: f"{h['score']:.3f}"),
    ("subject", lambda h: h["subject"]),
    ("text", lambda h: h["text"][:80]),
]


@app.command("list")
def list_memories(subject: str, limit: Limit = 50, json_out: Json = False) -> None:
    """SUBJECT's memories, newest first."""
    with connect(json_out) as client:
        found = take(client.memories.list(subject, page_size=page_size(limit)), limit)
        show_list(f"memories of {subject}", found, MEMORY_COLUMNS, json_out)


@app.command()
def search(
    query: str,
    subject: Annotated[str | None, typer.Option(help="Only this subject's memories.")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="How many.")] = 5,
    json_out: Json = False,
) -> None:
    """The memories closest in meaning to QUERY."""
    with connect(json_out) as client:
        hits = client.memories.search(query, subject=subject, k=k)
        if json_out:
            print_json(hits)
        else:
            show_list(f"closest to {query!r}", hits["items"], HIT_COLUMNS, json_out)


@app.command()
def add(
    subject: str,
    text: str,
    metadata: Annotated[str | None, typer.Option(help="JSON object (or @file).")] = None,
    importance: Annotated[float | None, typer.Option(min=0, max=1)] = None,
    json_out: Json = False,
) -> None:
    """Remember TEXT about SUBJECT."""
    meta = parse_json_option(metadata, "--metadata")
    with connect(json_out) as client:
        show_one("memory", client.memories.create(subject, text, metadata=meta, importance=importance), json_out)


@app.command()
def get(memory_id: str, json_out: Json = False) -> None:
    """One memory."""
    with connect(json_out) as client:
        show_one(f"memory {memory_id}", client.memories.get(memory_id), json_out)


@app.command()
def delete(memory_id: str, json_out: Json = False) -> None:
    """Delete one memory."""
    with connect(json_out) as client:
        client.memories.delete(memory_id)
        done(f"{memory_id} deleted", json_out)


@app.command()
def erase(
    subject: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    json_out: Json = False,
) -> None:
    """Erase everything stored about SUBJECT: memories, threads, run contents (right to be forgotten)."""
    if not yes:
        typer.confirm(f"Erase everything stored about {subject!r}?", abort=True)
    with connect(json_out) as client:
        erased = client.memories.erase(subject)
        done(f"erased: {cell(erased['deleted'])}", json_out, erased)
