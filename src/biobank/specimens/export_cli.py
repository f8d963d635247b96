"""`biobank export specimens`: the import template's columns, as CSV or XLSX, to a file or stdout."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Exports (audited).", no_args_is_help=True)


@app.command("specimens")
def export_specimens(
    biobank: Annotated[str | None, typer.Option(help="biobank code")] = None,
    collection: Annotated[str | None, typer.Option(help="collection public id")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or xlsx")] = "csv",
    output: Annotated[Path | None, typer.Option(help="file to write (default: standard output, CSV only)")] = None,
) -> None:
    """Export specimens as the node (every biobank, or the one/collection given); patient ids are never exported."""
    from biobank.config import get_settings
    from biobank.identity.principal import system_principal
    from biobank.kit.db import unit_of_work
    from biobank.kit.errors import BiobankError
    from biobank.specimens import export

    try:
        chosen = export.ExportFormat(fmt.lower())
    except ValueError:
        typer.secho("error: --format is csv or xlsx", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    if output is None and chosen is export.ExportFormat.XLSX:
        typer.secho("error: give --output for an XLSX export", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    principal = system_principal(get_settings().institution_code)
    try:
        with unit_of_work() as session:
            if output is not None:
                n = export.write_file(session, principal, output, chosen, biobank=biobank, collection=collection)
            else:
                n = export.count(session, principal, biobank=biobank, collection=collection)
                lines = export.rows(session, principal, biobank=biobank, collection=collection)
                for block in export.csv_chunks(lines):
                    sys.stdout.buffer.write(block)
                sys.stdout.buffer.flush()
                export.record_export(session, principal, n, biobank=biobank, collection=collection, fmt="csv")
    except BiobankError as exc:
        typer.secho(f"error: {exc.detail}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    typer.echo(f"exported {n:,} specimens" + (f" to {output}" if output else ""), err=output is None)
