"""`biobank access ...`: the access workflow's jobs from the node's shell (or a timer)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

app = typer.Typer(help="Access requests: reminders and escalations.", no_args_is_help=True)


@app.callback()
def access() -> None:
    """Access requests: reminders and escalations."""


@app.command("remind")
def remind(
    now: Annotated[
        str | None, typer.Option(help="pretend it is this moment (ISO 8601, default: now); for tests and catch-up")
    ] = None,
) -> None:
    """Record the reminders, escalations and expiries that are due (safe to run any number of times)."""
    from biobank.access.reminders import run_reminders
    from biobank.kit.db import unit_of_work

    moment = datetime.now(UTC)
    if now:
        try:
            moment = datetime.fromisoformat(now)
        except ValueError:
            typer.secho(f"error: --now {now!r} is not an ISO 8601 date-time", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    with unit_of_work() as session:
        run = run_reminders(session, moment)
    typer.echo(
        json.dumps(
            {"reminders": len(run.reminders), "escalations": len(run.escalations), "expired": sorted(run.expired)}
        )
    )
