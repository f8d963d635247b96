"""`biobank catalogue ...`: refresh collection facts (once, only stale ones, or on a schedule)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

app = typer.Typer(help="Catalogue: collection facts.", no_args_is_help=True)


@app.command("refresh")
def refresh(
    collection: Annotated[str | None, typer.Option(help="public id of one collection (default: all)")] = None,
    stale: Annotated[bool, typer.Option("--stale", help="only collections whose specimens changed since")] = False,
    every: Annotated[int, typer.Option(help="repeat every N seconds (0: run once)")] = 0,
) -> None:
    """Recompute collection facts and summaries; safe to run twice, one transaction per run."""
    from biobank.audit import record
    from biobank.catalogue import facts
    from biobank.config import get_settings
    from biobank.identity.principal import system_principal
    from biobank.institutions import service as institutions
    from biobank.kit.db import unit_of_work
    from biobank.kit.errors import BiobankError

    actor = system_principal(get_settings().institution_code)
    while True:
        try:
            with unit_of_work() as session:
                if collection:
                    target = institutions.get_collection(session, collection)
                    report = facts.refresh_facts(session, target.id)
                elif stale:
                    report = facts.refresh_stale(session)
                else:
                    report = facts.refresh_facts(session, None)
                record(
                    session,
                    actor,
                    "catalogue.facts.refresh",
                    "collection",
                    [collection] if collection else [],
                    details={"collections": report.collections, "cells": report.cells, "stale_only": stale},
                )
        except BiobankError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        typer.echo(f"refreshed {report.collections} collections, {report.cells} cells in {report.seconds:.2f} s")
        if every <= 0:
            return
        time.sleep(every)


@app.command("commit")
def commit() -> None:
    """Queue a salted commitment of each listed collection's record for the chain (only changed ones)."""
    from biobank.catalogue.commitments import commit_listed
    from biobank.config import get_settings
    from biobank.identity.principal import system_principal
    from biobank.kit.db import unit_of_work

    settings = get_settings()
    with unit_of_work() as session:
        queued = commit_listed(session, system_principal(settings.institution_code), settings)
    typer.echo(f"{queued} collection record(s) queued for the chain" if queued else "no collection record changed")
