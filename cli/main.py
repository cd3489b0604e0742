"""``aimpact``: up | api | worker | migrate | seed, and the client commands of cli/client/."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.client import (
    account,
    agents,
    keys,
    memories,
    pipelines,
    recommendations,
    runs,
    secrets,
    tenants,
    tools,
    users,
    webhooks,
)
from core.home_keys import HomeKeyError
from core.seed import SeedResult, credentials_file, stored_credentials
from core.settings import MAX_PROCESSES, Settings
from core.telemetry.logging import configure_logging
from workers import registry

app = typer.Typer(help="AImPact: durable, multi-tenant AI agents on Temporal.", no_args_is_help=True)
console = Console()


def load_settings() -> Settings:
    """Settings from the environment, or a clear error and exit code 2."""
    try:
        settings = Settings()
    except ValidationError as exc:
        console.print("[bold red]Invalid configuration:[/]")
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"])
            if field:
                console.print(f"  AIMPACT_{field.upper()}: {error['msg']}")
            else:  # a check across settings: its message names the variables
                for problem in error["msg"].removeprefix("Value error, ").splitlines():
                    console.print(f"  {escape(problem)}", soft_wrap=True)
        raise typer.Exit(2) from None
    try:
        settings.load_keys()
    except HomeKeyError as exc:
        console.print(f"[bold red]Invalid configuration:[/] {exc}")
        raise typer.Exit(2) from None
    fmt = settings.log_format if not sys.stderr.isatty() else "console"
    configure_logging(fmt=fmt, level=settings.log_level)
    return settings


@app.command()
def up(
    api_processes: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_PROCESSES,
            help="API processes sharing the API port (default: AIMPACT_API_PROCESSES, else 1).",
        ),
    ] = None,
    workers_per_queue: Annotated[
        int | None,
        typer.Option(
            min=1, max=MAX_PROCESSES, help="Workers per task queue (default: AIMPACT_WORKERS_PER_QUEUE, else 1)."
        ),
    ] = None,
) -> None:
    """Start PostgreSQL, Redis, Temporal, the workers and the API; Ctrl-C stops all."""
    from cli.progress import StartProgress
    from workers.embedded.home_lock import HomeInUseError
    from workers.embedded.supervisor import Supervisor

    settings = load_settings()
    overrides = {"api_processes": api_processes, "workers_per_queue": workers_per_queue}
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    try:
        registry.queues_to_run(settings)
    except registry.UnknownQueueError as exc:
        console.print(f"[bold red]Invalid configuration:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    try:
        code = Supervisor(settings, on_ready=print_ready_table, phases=StartProgress(console)).run()
    except HomeInUseError as exc:
        console.print(f"[bold red]Not started:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def print_ready_table(settings: Settings, seeded: SeedResult | None) -> None:
    """Print where everything is and how to start a first run."""
    creds = seeded or stored_credentials(settings)
    table = Table(title="AImPact is up", show_header=False, title_style="bold green")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("API", settings.api_url)
    table.add_row("Processes", process_counts(settings))
    table.add_row("Dashboard", dashboard_state(settings))
    table.add_row("API docs", f"{settings.api_url}/docs")
    table.add_row("Temporal UI", settings.temporal_ui_base)
    table.add_row("State", str(settings.home))
    table.add_row("Logs", str(settings.home / "logs"))
    if creds:
        table.add_row("Platform admin", creds.admin_email)
        table.add_row(
            "Password",
            creds.admin_password if seeded and creds.admin_password else f"see {credentials_file(settings)}",
        )
        table.add_row("Demo owner", f"{creds.demo_owner_email} (same password)")
        table.add_row("Demo tenant", creds.tenant_id)
        table.add_row("Demo agent", creds.agent_id)
        table.add_row("API key", creds.api_key or f"see {credentials_file(settings)}")
    console.print(table)
    if creds and creds.api_key:
        console.print("Start a demo run:")
        console.print(
            f"  curl -s -X POST {settings.api_url}/v1/agents/{creds.agent_id}/runs "
            f"-H 'Authorization: Bearer {creds.api_key}' -H 'Content-Type: application/json' "
            '-d \'{"input": "What is 12 * (3 + 4)?"}\'',
            soft_wrap=True,
        )
        console.print(
            f"Then: curl -s {settings.api_url}/v1/runs/<id> -H 'Authorization: Bearer {creds.api_key}'", soft_wrap=True
        )
    console.print("Press Ctrl-C to stop.")


def dashboard_state(settings: Settings) -> str:
    """The dashboard's URL, or why there is none."""
    from api.dashboard import built

    if built(settings.dashboard_dir):
        return f"{settings.api_url}/"
    return "not built: `make dashboard` (needs node 20 and npm), then reload"


def process_counts(settings: Settings) -> str:
    """How many API processes and workers ``up`` runs: ``2 API processes, 2 workers per queue (agents, webhooks)``."""
    queues = ", ".join(q.name for q in registry.queues_to_run(settings))
    api = "1 API process" if settings.api_processes == 1 else f"{settings.api_processes} API processes"
    workers = "1 worker" if settings.workers_per_queue == 1 else f"{settings.workers_per_queue} workers"
    return f"{api}, {workers} per queue ({queues})"


@app.command()
def api(
    reuse_port: Annotated[
        bool,
        typer.Option(
            "--reuse-port", help="Share the API port with other `aimpact api` processes (SO_REUSEPORT; `up` sets it)."
        ),
    ] = False,
) -> None:
    """Serve the HTTP API (uvicorn)."""
    import uvicorn

    from api.app import create_app
    from api.server import http_protocol, listening_socket

    settings = load_settings()
    try:
        sock = listening_socket(settings.api_host, settings.api_port, reuse_port=reuse_port)
    except OSError as exc:
        console.print(f"[bold red]Cannot listen on {settings.api_host}:{settings.api_port}:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    config = uvicorn.Config(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        http=http_protocol(settings),  # request-line and header limits, answered as problem+json
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=5,  # open event streams must not hold up a stop
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        raise typer.Exit(3)  # uvicorn's own code for a failed start


@app.command()
def worker(
    queue: Annotated[str, typer.Option(help=f"Task queue to serve: {' | '.join(registry.QUEUES)}.")] = "agents",
) -> None:
    """Run the worker of one task queue."""
    from core.temporal import MissingSearchAttributesError, TemporalTlsFileError
    from workers.runner import run_worker

    settings = load_settings()
    try:
        registry.queue(queue)
    except registry.UnknownQueueError as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2) from None
    try:
        asyncio.run(run_worker(settings, queue))
    except (MissingSearchAttributesError, TemporalTlsFileError) as exc:
        console.print(f"[bold red]Invalid configuration:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    # The SDK's metrics runtime can crash the interpreter during finalisation
    # (temporalio/sdk-python#300); everything is flushed and stopped by now.
    logging.shutdown()
    os._exit(0)


@app.command()
def migrate(
    check: Annotated[
        bool, typer.Option("--check", help="Change nothing; exit 0 only if the schema is this release's.")
    ] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Change nothing; wait until the schema is this release's or a newer one's (app pods).",
        ),
    ] = False,
    timeout: Annotated[float, typer.Option(min=0, help="Seconds --wait waits at most.")] = 300.0,
) -> None:
    """Apply database migrations, or (--check, --wait) verify the schema is the one this release needs."""
    from sqlalchemy.exc import SQLAlchemyError

    from core.db.migrate import schema_state, upgrade, wait_for_schema

    settings = load_settings()
    if not (check or wait):
        upgrade(settings.database_target)
        console.print("migrations applied")
        return
    if wait:
        state = wait_for_schema(settings.database_target, timeout_s=timeout, report=console.print)
    else:
        try:
            state = schema_state(settings.database_target)
        except SQLAlchemyError as exc:
            console.print(f"[red]database not reachable:[/] {escape(type(exc).__name__)}")
            raise typer.Exit(1) from None
    if wait and state is not None and not state.known:
        # A newer release migrated it: its migrations keep the previous release working (README, upgrades).
        console.print(f"{escape(state.describe())}; starting, as migrations keep the previous release working")
        return
    if state is None or not state.ready:
        console.print(
            f"[red]{escape(state.describe()) if state else f'database not reachable within {timeout:g} s'}[/]"
        )
        raise typer.Exit(1)
    console.print(state.describe())


@app.command()
def seed() -> None:
    """Seed the platform admin, demo tenant and demo agent on an empty database."""
    from core.db.engine import make_engine
    from core.seed import seed_if_empty

    settings = load_settings()

    async def _run() -> SeedResult | None:
        engine = make_engine(settings.database_target, pool_size=2)
        try:
            return await seed_if_empty(engine, settings)
        finally:
            await engine.dispose()

    result = asyncio.run(_run())
    console.print("seeded" if result else "already seeded; nothing to do")


@app.command()
def openapi(
    output: Annotated[str | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Print the API's OpenAPI document, built from the routes (no server, no database)."""
    import json
    from pathlib import Path

    from api.app import create_app

    configure_logging(fmt="console", level="warning")  # logs on stderr: stdout is the document
    document = json.dumps(create_app(Settings()).openapi(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(document)
    else:
        Path(output).write_text(document, encoding="utf-8")


app.add_typer(runs.app, name="runs")
app.add_typer(agents.app, name="agents")
app.add_typer(tenants.app, name="tenants")
app.add_typer(users.app, name="users")
app.add_typer(keys.app, name="keys")
app.add_typer(tools.app, name="tools")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(memories.app, name="memories")
app.add_typer(secrets.app, name="secrets")
app.add_typer(pipelines.app, name="pipelines")
app.add_typer(pipelines.runs_app, name="pipeline-runs")
app.add_typer(recommendations.app, name="recommendations")
app.add_typer(account.app)  # login, logout, me, usage
