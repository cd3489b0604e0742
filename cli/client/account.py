"""``aimpact login | logout | me | usage``: your sign-in, who you are and what your tenant used."""

from __future__ import annotations

from typing import Annotated

import typer

from aimpact_client.config import config_path
from cli.client.common import ApiKey, Json, Url, connect, out, print_json, show_list, show_one, use_connection

app = typer.Typer()
USAGE_COLUMNS = [
    ("agent", lambda a: f"{a['agent_name']} ({a['agent_id']})"),
    ("runs", lambda a: a["runs"]),
    ("input tokens", lambda a: a["input_tokens"]),
    ("output tokens", lambda a: a["output_tokens"]),
    ("cost (USD)", lambda a: f"{a['cost_usd']:.6f}"),
]


@app.command()
def login(
    email: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    url: Url = None,
) -> None:
    """Sign in with email and password; the tokens are kept in the config file and refreshed as they expire."""
    use_connection(url)
    with connect() as client:
        client.login(email, password, remember=True)
        me = client.me()
    out.print(f"Signed in to {client.url} as {me['email']} ({me['role']}); tokens in {config_path()}")


@app.command()
def logout(url: Url = None) -> None:
    """End the sign-in stored in the config file."""
    use_connection(url)
    with connect() as client:
        client.logout()
    out.print("Signed out.")


@app.command()
def me(url: Url = None, api_key: ApiKey = None, json_out: Json = False) -> None:
    """Who the credentials belong to and what they may do."""
    use_connection(url, api_key)
    with connect(json_out) as client:
        show_one("me", client.me(), json_out)


@app.command()
def usage(
    start: Annotated[str | None, typer.Option("--from", help="RFC 3339 time: runs created from then.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="RFC 3339 time: runs created before then.")] = None,
    url: Url = None,
    api_key: ApiKey = None,
    json_out: Json = False,
) -> None:
    """Tokens, cost and runs per agent of your tenant."""
    use_connection(url, api_key)
    with connect(json_out) as client:
        report = client.usage(start=start, end=end)
        if json_out:
            print_json(report)
            return
        show_list("usage per agent", report["agents"], USAGE_COLUMNS, json_out)
        out.print(
            f"{report['runs']} runs, {report['input_tokens']} + {report['output_tokens']} tokens, "
            f"{report['cost_usd']:.6f} USD"
        )
