"""What every client command shares: connection options, errors as exit codes, JSON or table output.

Exit codes: 0 success, 1 the API answered with a problem (or a followed run failed), 2 the
URL or credentials cannot be used, 3 the API cannot be reached, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from aimpact_client import ApiError, Client, ConfigError
from aimpact_client.config import ENV_API_KEY, ENV_URL

T = TypeVar("T")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

Url = Annotated[
    str | None, typer.Option("--url", help="API base URL (else AIMPACT_URL, the config file, http://127.0.0.1:8000).")
]
ApiKey = Annotated[
    str | None,
    typer.Option("--api-key", help="API key or token (else AIMPACT_API_KEY, AIMPACT_TOKEN, the config file)."),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON only (for scripts).")]
Limit = Annotated[int, typer.Option("--limit", min=0, help="How many items to show; 0 for all.")]
Column = tuple[str, Callable[[Any], Any]]


def use_connection(url: Url = None, api_key: ApiKey = None) -> None:
    """Connection options of a command group: they apply to every command under it."""
    if url:
        os.environ[ENV_URL] = url
    if api_key:
        os.environ[ENV_API_KEY] = api_key


def group(help_text: str) -> typer.Typer:
    """A command group that takes ``--url`` and ``--api-key`` before its command."""
    return typer.Typer(help=help_text, no_args_is_help=True, callback=use_connection)


@contextmanager
def connect(json_out: bool = False) -> Iterator[Client]:
    """A client of the API; an error becomes a message (the problem document with ``--json``) and an exit code."""
    client: Client | None = None
    try:
        with Client() as client:
            yield client
    except ApiError as exc:
        if json_out:
            print_json(exc.problem)
        else:
            err.print(f"[bold red]{exc.status} {escape(exc.title)}[/]: {escape(exc.detail)}")
            for item in exc.errors:
                err.print(f"  {escape(str(item.get('field')))}: {escape(str(item.get('message')))}")
            if exc.type and exc.type != "about:blank":
                err.print(f"  [dim]{escape(exc.type)}[/]")
            if exc.status == 401:
                err.print("  Set AIMPACT_API_KEY (or --api-key), or sign in with: aimpact login")
        raise typer.Exit(1) from None
    except ConfigError as exc:
        err.print(f"[bold red]Cannot connect:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print("stopped")
        raise typer.Exit(130) from None
    except httpx.TransportError as exc:
        where = client.url if client is not None else "the API"
        err.print(f"[bold red]Cannot reach {escape(where)}:[/] {escape(str(exc) or type(exc).__name__)}")
        raise typer.Exit(3) from None


def print_json(data: Any) -> None:
    """``data`` as JSON on stdout, nothing else."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def take(items: Iterable[T], limit: int) -> list[T]:
    """The first ``limit`` items (all of them for 0)."""
    return list(items) if limit == 0 else list(islice(items, limit))


def page_size(limit: int) -> int:
    """The page size that fetches ``limit`` items in as few requests as the API allows."""
    return 200 if limit == 0 else min(max(limit, 1), 200)


def cell(value: Any) -> str:
    """A value as table text (structures as compact JSON)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def short(value: Any, width: int = 60) -> str:
    """A value as text of at most ``width`` characters (structures as JSON)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def show_list(title: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], json_out: bool) -> None:
    """A list: JSON array, or a table with ``columns`` (header, getter)."""
    if json_out:
        print_json(list(rows))
        return
    table = Table(title=title if rows else f"{title}: none")
    for header, _ in columns:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(escape(cell(get(row))) for _, get in columns))
    out.print(table)


def show_one(title: str, item: Mapping[str, Any], json_out: bool, *, skip: Sequence[str] = ()) -> None:
    """One object: JSON, or a two-column table of its fields."""
    if json_out:
        print_json(item)
        return
    table = Table(title=title, show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in item.items():
        if key not in skip:
            table.add_row(escape(key), escape(cell(value)))
    out.print(table)


def done(message: str, json_out: bool, data: Any = None) -> None:
    """Report an action that answers nothing (a delete): a line, or ``data`` (default ``{"ok": true}``) as JSON."""
    if json_out:
        print_json(data if data is not None else {"ok": True})
    else:
        out.print(message)


def parse_json_option(value: str | None, option: str) -> Any:
    """The JSON of an option (``@file`` reads a file), or a clear usage error."""
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        try:
            with open(value[1:]) as handle:
                text = handle.read()
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {value[1:]}: {exc.strerror}", param_hint=option) from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint=option) from None
