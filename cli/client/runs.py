"""``aimpact runs``: start, follow, list, read and steer agent runs."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, Literal, cast

import typer
from rich.markup import escape

from aimpact_client import Client, Event
from aimpact_client.types import Run, RunStatus, RunTurn
from cli.client.common import (
    Json,
    Limit,
    connect,
    done,
    err,
    group,
    out,
    page_size,
    parse_json_option,
    print_json,
    short,
    show_list,
    show_one,
    take,
)

app = group("Agent runs: start, follow, list, read, steer.")
Follow = Annotated[bool, typer.Option("--follow", "-f", help="Stream events to the end of the turn; print the answer.")]
RUN_COLUMNS = [
    ("id", lambda r: r["id"]),
    ("agent", lambda r: f"{r['agent_id']} v{r['agent_version']}"),
    ("status", lambda r: r["status"]),
    ("input", lambda r: short(r["input"])),
    ("output", lambda r: short(r["output"] or "")),
    ("created", lambda r: r["created_at"]),
]
STEP_COLUMNS = [
    ("step", lambda s: s["id"]),
    ("kind", lambda s: s["kind"]),
    ("name", lambda s: s["name"]),
    ("status", lambda s: s["status"]),
    ("attempts", lambda s: s["attempts"]),
    ("output", lambda s: short(s["output"] if s["error"] is None else s["error"])),
]


def _show_run(run: Run, json_out: bool) -> None:
    if json_out:
        print_json(run)
        return
    show_one(f"run {run['id']}", run, False, skip=("steps", "temporal", "metadata"))
    if run["steps"]:
        show_list("steps", run["steps"], STEP_COLUMNS, False)
    out.print(f"[dim]Temporal: {escape(run['temporal']['ui_url'])}[/]")


def _step_result(kind: str, output: Any) -> Any:
    """What a person wants from a step's output: the tools a model asks for, its text, a tool's value."""
    if not isinstance(output, dict):
        return output
    if kind == "llm":
        calls = output.get("tool_calls") or []
        if calls:
            return "calls " + ", ".join(f"{c.get('name')}({short(c.get('arguments'), 40)})" for c in calls)
        return output.get("content")
    return output.get("value", output)


def _print_event(run_id: str, event: Event) -> None:
    """One event as a line a person reads."""
    data: dict[str, Any] = event.data if isinstance(event.data, dict) else {"data": event.data}
    kind = event.event
    name = f"{data.get('kind')} {data.get('name')}"
    if kind == "token.delta":
        return
    if kind == "step.started":
        out.print(f"  [dim]…[/] {escape(name)}")
    elif kind.startswith("step."):
        mark = "[green]✓[/]" if kind == "step.completed" else "[red]✗[/]"
        shown = _step_result(str(data.get("kind")), data.get("output")) if kind == "step.completed" else data["error"]
        out.print(f"  {mark} {escape(name)} → {escape(short(shown))}")
    elif kind == "approval.requested":
        step, tool = data.get("step_id"), data.get("tool")
        out.print(f"  [yellow]? approval needed[/]: {escape(str(tool))} {escape(short(data.get('arguments')))}")
        out.print(f"    aimpact runs approve {run_id} {step}   |   aimpact runs reject {run_id} {step}")
    else:
        turn = f" (turn {event.turn})" if event.turn is not None else ""
        out.print(f"[bold]{escape(kind)}[/]{turn}")


def follow_turn(client: Client, run_id: str, *, after: str | None, json_out: bool) -> None:
    """Stream the run's events to the end of its turn, then print the run (answer or error); exit 1 unless completed."""
    last: Event | None = None
    for event in client.runs.follow(run_id, after=after):
        last = event
        if not json_out:
            _print_event(run_id, event)
    run = client.runs.get(run_id)
    ended = last.data.get("status") if last is not None and isinstance(last.data, dict) else run["status"]
    if json_out:
        print_json(run)
    elif ended == "completed":
        out.print(escape(run["output"] or ""))
    else:
        err.print(f"[bold red]run {escape(str(ended))}[/]: {escape(short(run['error'], 500))}")
    if ended != "completed":
        raise typer.Exit(1)


@app.command()
def start(
    agent_id: Annotated[str, typer.Argument(help="The agent to run.")],
    input: Annotated[str, typer.Argument(help="The user's message.")],
    follow: Follow = False,
    thread_id: Annotated[str | None, typer.Option(help="Continue this thread.")] = None,
    subject: Annotated[str | None, typer.Option(help="The end user (scopes long-term memory).")] = None,
    metadata: Annotated[str | None, typer.Option(help="JSON object (or @file).")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="The same key starts the same run once.")] = None,
    json_out: Json = False,
) -> None:
    """Start a run of AGENT_ID; with --follow, stream its events and print the answer."""
    meta = parse_json_option(metadata, "--metadata")
    with connect(json_out) as client:
        run = client.runs.start(
            agent_id, input, thread_id=thread_id, subject=subject, metadata=meta, idempotency_key=idempotency_key
        )
        if follow:
            if not json_out:
                out.print(f"[dim]run {run['id']} (thread {run['thread_id']})[/]")
            follow_turn(client, run["id"], after=None, json_out=json_out)
        else:
            _show_run(run, json_out)


@app.command("list")
def list_runs(
    agent_id: Annotated[str | None, typer.Option("--agent", help="Only this agent's runs.")] = None,
    status: Annotated[str | None, typer.Option(help="Only runs in this status.")] = None,
    limit: Limit = 20,
    json_out: Json = False,
) -> None:
    """Runs, newest first."""
    chosen = cast("RunStatus | None", status)  # the API answers an unknown status with 422
    with connect(json_out) as client:
        runs = take(client.runs.list(agent_id=agent_id, status=chosen, page_size=page_size(limit)), limit)
        show_list("runs", runs, RUN_COLUMNS, json_out)


@app.command()
def get(
    run_id: str,
    wait: Annotated[float, typer.Option(help="Wait up to this many seconds (≤ 60) for the turn in flight.")] = 0,
    json_out: Json = False,
) -> None:
    """A run with its steps."""
    with connect(json_out) as client:
        _show_run(client.runs.get(run_id, wait_s=wait), json_out)


@app.command()
def events(
    run_id: str,
    after: Annotated[str | None, typer.Option(help="Resume after this event id.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per line (JSON Lines).")] = False,
) -> None:
    """Stream a run's events until the run closes (Ctrl-C to stop)."""
    with connect(json_out) as client:
        for event in client.runs.events(run_id, after=after):
            if json_out:
                line = {"id": event.id, "event": event.event, "data": event.data}
                sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
                sys.stdout.flush()
            else:
                _print_event(run_id, event)


@app.command()
def cancel(run_id: str, json_out: Json = False) -> None:
    """Cancel a run."""
    with connect(json_out) as client:
        _show_run(client.runs.cancel(run_id), json_out)


Comment = Annotated[str | None, typer.Option(help="Why (kept with the decision).")]


@app.command()
def approve(run_id: str, step_id: str, comment: Comment = None, json_out: Json = False) -> None:
    """Approve the tool call that waits at STEP_ID."""
    _decide(run_id, step_id, "approve", comment, json_out)


@app.command()
def reject(run_id: str, step_id: str, comment: Comment = None, json_out: Json = False) -> None:
    """Reject the tool call that waits at STEP_ID."""
    _decide(run_id, step_id, "reject", comment, json_out)


def _decide(
    run_id: str, step_id: str, decision: Literal["approve", "reject"], comment: str | None, json_out: bool
) -> None:
    with connect(json_out) as client:
        _show_run(client.runs.decide(run_id, step_id, decision, comment=comment), json_out)


def _show_turn(client: Client, run: RunTurn, *, follow: bool, json_out: bool) -> None:
    """Follow the turn a message or retry set going, or show the run as it answered."""
    if follow:
        follow_turn(client, run["id"], after=run["turn"]["after_event_id"], json_out=json_out)
    else:
        _show_run(run, json_out)


@app.command()
def retry(run_id: str, follow: Follow = False, json_out: Json = False) -> None:
    """Continue a failed run from the step that failed."""
    with connect(json_out) as client:
        _show_turn(client, client.runs.retry(run_id), follow=follow, json_out=json_out)


@app.command()
def message(
    run_id: str,
    input: Annotated[str, typer.Argument(help="The next message.")],
    follow: Follow = False,
    json_out: Json = False,
) -> None:
    """Send the next message of the conversation."""
    with connect(json_out) as client:
        _show_turn(client, client.runs.send_message(run_id, input), follow=follow, json_out=json_out)


@app.command()
def feedback(
    run_id: str,
    score: Annotated[float, typer.Argument(min=0, max=1, help="0 (bad) to 1 (good).")],
    label: Annotated[str | None, typer.Option()] = None,
    comment: Annotated[str | None, typer.Option()] = None,
    json_out: Json = False,
) -> None:
    """Give feedback on a run."""
    with connect(json_out) as client:
        given = client.runs.feedback(run_id, score, label=label, comment=comment)
        done(f"feedback {given['id']} recorded on version {given['agent_version']}", json_out, given)
