"""``aimpact pipelines`` and ``aimpact pipeline-runs``: define, version, validate, schedule and run pipelines."""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

import typer
from rich.markup import escape

from aimpact_client import Client
from aimpact_client.types import PipelineRun, PipelineRunStatus
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

app = group("Pipelines: versioned DAGs of agent, tool, approval, wait, map and pipeline steps.")
runs_app = group("Pipeline runs: read, wait for, approve, cancel, re-run from a step.")

PIPELINE_COLUMNS = [
    ("id", lambda p: p["id"]),
    ("name", lambda p: p["name"]),
    ("version", lambda p: p["version"]),
    ("steps", lambda p: len(p["definition"].get("steps", []))),
    ("updated", lambda p: p["updated_at"]),
]
VERSION_COLUMNS = [
    ("version", lambda v: f"{v['version']}{' (current)' if v['current'] else ''}"),
    ("created", lambda v: v["created_at"]),
    ("steps", lambda v: ", ".join(s.get("id", "?") for s in v["definition"].get("steps", []))),
]
RUN_COLUMNS = [
    ("id", lambda r: r["id"]),
    ("pipeline", lambda r: f"{r['pipeline_id']} v{r['version']}"),
    ("status", lambda r: r["status"]),
    ("output", lambda r: short(r["output"] if r["error"] is None else r["error"])),
    ("created", lambda r: r["created_at"]),
]
STEP_COLUMNS = [
    ("step", lambda s: s["id"]),
    ("type", lambda s: s["type"]),
    ("status", lambda s: s["status"]),
    ("attempts", lambda s: s["attempts"]),
    ("output", lambda s: short(s["output"] if s["error"] is None else s["error"])),
]
Definition = Annotated[str, typer.Option("--definition", "-d", help="The definition as JSON (or @file).")]
Input = Annotated[str | None, typer.Option("--input", "-i", help="The run's input as JSON (or @file).")]
Version = Annotated[int | None, typer.Option("--version", help="Run this version (default: the current one).")]
Wait = Annotated[bool, typer.Option("--wait", "-w", help="Wait for the run to end; exit 1 unless it completed.")]
Comment = Annotated[str | None, typer.Option(help="Why (kept with the decision).")]


def _definition(value: str) -> dict[str, Any]:
    definition = parse_json_option(value, "--definition")
    if not isinstance(definition, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="--definition")
    return definition


def show_run(run: PipelineRun, json_out: bool) -> None:
    """A pipeline run: its fields, then its steps."""
    if json_out:
        print_json(run)
        return
    show_one(f"pipeline run {run['id']}", run, False, skip=("steps", "temporal"))
    if run["steps"]:
        show_list("steps", run["steps"], STEP_COLUMNS, False)
    out.print(f"[dim]Temporal: {escape(run['temporal']['ui_url'])}[/]")


def show_or_wait(client: Client, run: PipelineRun, wait: bool, json_out: bool) -> None:
    """Show the run; with ``wait``, once it is final (exit 1 unless it completed)."""
    if wait:
        if not json_out:
            out.print(f"[dim]pipeline run {run['id']}: waiting…[/]")
        run = client.pipeline_runs.wait(run["id"], timeout_s=24 * 3600)
    show_run(run, json_out)
    if wait and run["status"] != "completed":
        if not json_out:
            err.print(f"[bold red]pipeline run {escape(run['status'])}[/]: {escape(short(run['error'], 500))}")
        raise typer.Exit(1)


@app.command("list")
def list_pipelines(limit: Limit = 50, json_out: Json = False) -> None:
    """Live pipelines, newest first."""
    with connect(json_out) as client:
        found = take(client.pipelines.list(page_size=page_size(limit)), limit)
        show_list("pipelines", found, PIPELINE_COLUMNS, json_out)


@app.command()
def get(pipeline_id: str, json_out: Json = False) -> None:
    """A pipeline at its current version."""
    with connect(json_out) as client:
        show_one(f"pipeline {pipeline_id}", client.pipelines.get(pipeline_id), json_out)


@app.command()
def create(name: str, definition: Definition, json_out: Json = False) -> None:
    """Create a pipeline (version 1)."""
    parsed = _definition(definition)
    with connect(json_out) as client:
        show_one("pipeline created", client.pipelines.create(name, parsed), json_out)


@app.command()
def update(
    pipeline_id: str,
    definition: Definition,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    json_out: Json = False,
) -> None:
    """Save a new immutable version (made current; runs in flight keep theirs)."""
    parsed = _definition(definition)
    with connect(json_out) as client:
        show_one("new version", client.pipelines.update(pipeline_id, parsed, name=name), json_out)


@app.command()
def versions(pipeline_id: str, limit: Limit = 20, json_out: Json = False) -> None:
    """The pipeline's versions, newest first."""
    with connect(json_out) as client:
        found = take(client.pipelines.versions(pipeline_id, page_size=page_size(limit)), limit)
        show_list(f"versions of {pipeline_id}", found, VERSION_COLUMNS, json_out)


@app.command()
def validate(definition: Definition, json_out: Json = False) -> None:
    """Check a definition without saving it: its problems at their JSON pointers, or its plan; exit 1 if invalid."""
    parsed = _definition(definition)
    with connect(json_out) as client:
        answer = client.pipelines.validate(parsed)
    if json_out:
        print_json(answer)
    elif answer["valid"]:
        waves = (answer["plan"] or {}).get("waves", [])
        out.print("[green]valid[/]; the steps start in waves:")
        for number, wave in enumerate(waves, 1):
            out.print(f"  {number}. {escape(', '.join(wave))}")
    else:
        for problem in answer["errors"]:
            err.print(f"  {escape(problem['field'] or '/')}: {escape(problem['message'])}")
    if not answer["valid"]:
        raise typer.Exit(1)


@app.command()
def delete(pipeline_id: str, json_out: Json = False) -> None:
    """Archive a pipeline: it starts no new runs; its versions and runs stay readable."""
    with connect(json_out) as client:
        client.pipelines.delete(pipeline_id)
    done(f"{pipeline_id} archived", json_out)


@app.command()
def run(
    pipeline_id: str,
    input: Input = None,
    version: Version = None,
    idempotency_key: Annotated[str | None, typer.Option(help="The same key starts the same run once.")] = None,
    wait: Wait = False,
    json_out: Json = False,
) -> None:
    """Start a run of PIPELINE_ID (its current version, or --version)."""
    parsed = parse_json_option(input, "--input")
    with connect(json_out) as client:
        started = client.pipelines.run(pipeline_id, parsed, version=version, idempotency_key=idempotency_key)
        show_or_wait(client, started, wait, json_out)


@app.command()
def schedule(pipeline_id: str, json_out: Json = False) -> None:
    """The pipeline's schedule: its cron, input, overlap policy, next and recent firings."""
    with connect(json_out) as client:
        show_one(f"schedule of {pipeline_id}", client.pipelines.schedule(pipeline_id), json_out)


@app.command("schedule-set")
def schedule_set(
    pipeline_id: str,
    cron: Annotated[str, typer.Option(help="Five cron fields, UTC (e.g. '0 3 * * *').")],
    input: Input = None,
    overlap: Annotated[
        str | None, typer.Option(help="skip | buffer_one | buffer_all | cancel_other | allow_all.")
    ] = None,
    paused: Annotated[bool | None, typer.Option("--paused/--active", help="Pause or resume the schedule.")] = None,
    json_out: Json = False,
) -> None:
    """Create or replace the pipeline's schedule."""
    parsed = parse_json_option(input, "--input")
    with connect(json_out) as client:
        answer = client.pipelines.set_schedule(pipeline_id, cron, input=parsed, overlap=overlap, paused=paused)
        show_one(f"schedule of {pipeline_id}", answer, json_out)


@app.command("schedule-delete")
def schedule_delete(pipeline_id: str, json_out: Json = False) -> None:
    """Delete the pipeline's schedule (the runs it started stay)."""
    with connect(json_out) as client:
        client.pipelines.delete_schedule(pipeline_id)
    done(f"{pipeline_id}: schedule deleted", json_out)


@app.command()
def backfill(
    pipeline_id: str,
    start: Annotated[str, typer.Argument(help="From (ISO 8601).")],
    end: Annotated[str, typer.Argument(help="To (ISO 8601).")],
    json_out: Json = False,
) -> None:
    """Start the runs the schedule would have started between START and END."""
    with connect(json_out) as client:
        client.pipelines.backfill(pipeline_id, start, end)
    done(f"{pipeline_id}: backfill from {start} to {end} requested", json_out)


@runs_app.command("list")
def list_runs(
    pipeline_id: Annotated[str | None, typer.Option("--pipeline", help="Only this pipeline's runs.")] = None,
    status: Annotated[str | None, typer.Option(help="Only runs in this status.")] = None,
    limit: Limit = 20,
    json_out: Json = False,
) -> None:
    """Pipeline runs, newest first."""
    chosen = cast("PipelineRunStatus | None", status)  # the API answers an unknown status with 422
    with connect(json_out) as client:
        found = client.pipeline_runs.list(pipeline_id=pipeline_id, status=chosen, page_size=page_size(limit))
        show_list("pipeline runs", take(found, limit), RUN_COLUMNS, json_out)


@runs_app.command("get")
def get_run(run_id: str, wait: Wait = False, json_out: Json = False) -> None:
    """A pipeline run with its steps."""
    with connect(json_out) as client:
        show_or_wait(client, client.pipeline_runs.get(run_id), wait, json_out)


@runs_app.command()
def approve(run_id: str, step_id: str, comment: Comment = None, json_out: Json = False) -> None:
    """Approve the approval step STEP_ID."""
    _decide(run_id, step_id, "approve", comment, json_out)


@runs_app.command()
def reject(run_id: str, step_id: str, comment: Comment = None, json_out: Json = False) -> None:
    """Reject the approval step STEP_ID (it fails)."""
    _decide(run_id, step_id, "reject", comment, json_out)


def _decide(
    run_id: str, step_id: str, decision: Literal["approve", "reject"], comment: str | None, json_out: bool
) -> None:
    with connect(json_out) as client:
        client.pipeline_runs.decide(run_id, step_id, decision, comment=comment)
    done(f"{run_id}: {step_id} {decision}d", json_out)


@runs_app.command()
def cancel(run_id: str, json_out: Json = False) -> None:
    """Cancel a pipeline run: its running steps are cancelled."""
    with connect(json_out) as client:
        client.pipeline_runs.cancel(run_id)
    done(f"{run_id}: cancel requested", json_out)


@runs_app.command()
def rerun(
    run_id: str,
    from_step: Annotated[str, typer.Option("--from", help="Run again from this step; the steps before it are reused.")],
    version: Version = None,
    wait: Wait = False,
    json_out: Json = False,
) -> None:
    """A new run that reuses the outputs of every step that does not depend on --from."""
    with connect(json_out) as client:
        show_or_wait(client, client.pipeline_runs.rerun(run_id, from_step, version=version), wait, json_out)
