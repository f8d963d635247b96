"""`biobank import specimens FILE`: the bulk importer from the command line, as the node itself."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Bulk imports (see docs/import-template.md).", no_args_is_help=True)

SHOWN_ERRORS = 50
PROGRESS_FROM = 10_000  # rows: smaller files print no progress lines


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _pick_biobank(code: str | None) -> str:
    """The --biobank given, or the node's only biobank."""
    from biobank.institutions import service as institutions
    from biobank.kit.db import unit_of_work

    if code:
        return code
    with unit_of_work() as session:
        biobanks = institutions.list_biobanks(session)
    if len(biobanks) == 1:
        return biobanks[0].code
    choices = ", ".join(b.code for b in biobanks) or "none yet"
    typer.secho(f"error: give --biobank (this node's biobanks: {choices})", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@app.command("specimens")
def import_specimens(
    file: Annotated[Path, typer.Argument(help="CSV (UTF-8; comma, semicolon or tab) or XLSX file", exists=True,
                                         dir_okay=False, readable=True)],
    biobank: Annotated[str | None, typer.Option(help="biobank code (default: the node's only biobank)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="validate and report; write nothing")] = False,
    timezone: Annotated[
        str | None, typer.Option(help="IANA time zone for times written without an offset, e.g. Asia/Shanghai")
    ] = None,
) -> None:
    """Import specimens from a file: every row is checked first; any error writes nothing (exit 2)."""
    from biobank.config import get_settings
    from biobank.identity.principal import system_principal
    from biobank.kit.db import unit_of_work
    from biobank.kit.errors import BiobankError
    from biobank.specimens import importer
    from biobank.specimens.importer_io import read_table

    started = time.perf_counter()
    code = _pick_biobank(biobank)
    try:
        table = read_table(file.read_bytes(), file.name)
    except BiobankError as exc:
        _print_errors(exc)
        raise typer.Exit(2) from None
    big = len(table) >= PROGRESS_FROM
    if big:
        _say(f"read {len(table):,} rows from {file.name}")

    def progress(stage: str, count: int) -> None:
        if big:
            what = "collections" if "facts" in stage else "rows"
            _say(f"{stage} {count:,} {what} ({time.perf_counter() - started:.1f} s)")

    principal = system_principal(get_settings().institution_code)
    try:
        with unit_of_work() as session:
            report = importer.run_import(
                session, principal, code, table, dry_run=dry_run, timezone=timezone, progress=progress
            )
    except importer.ImportInvalid as exc:
        print_report(exc.report)
        typer.secho(
            f"{exc.report.errors:,} error(s) in {exc.report.rows:,} rows: nothing was imported",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2) from None
    except BiobankError as exc:
        _print_errors(exc)
        raise typer.Exit(2) from None
    print_report(report)
    elapsed = time.perf_counter() - started
    if dry_run:
        typer.echo(
            f"dry run: {report.rows:,} rows, {report.to_create:,} to create, {report.unchanged:,} unchanged, "
            f"{report.donors_to_create:,} new donors; nothing written"
        )
    else:
        rate = f" ({report.created / elapsed:,.0f}/s)" if report.created and elapsed > 0 else ""
        typer.echo(
            f"imported {report.created:,} specimens{rate}, {report.unchanged:,} unchanged, "
            f"{report.donors_created:,} new donors, in {elapsed:.1f} s"
        )


def print_report(report: object) -> None:
    """The first errors of a report, row by row, then how many there were in all."""
    from biobank.specimens.importer import ImportReport

    assert isinstance(report, ImportReport)
    if not report.errors:
        return
    out = sys.stderr
    for entry in report.entries[:SHOWN_ERRORS]:
        where = f"row {entry.row}" + (f", {entry.column}" if entry.column else "")
        value = f" [{entry.value}]" if entry.value else ""
        print(f"{where}{value}: {entry.message}", file=out)
    if report.errors > SHOWN_ERRORS:
        print(f"... and {report.errors - SHOWN_ERRORS:,} more", file=out)


def _print_errors(exc: object) -> None:
    from biobank.kit.errors import BiobankError, Invalid

    assert isinstance(exc, BiobankError)
    if isinstance(exc, Invalid):
        for error in exc.errors:
            where = f"row {error['row']}: " if "row" in error else ""
            field = ".".join(map(str, error["loc"]))
            typer.secho(f"error: {where}{field + ': ' if field else ''}{error['msg']}", fg=typer.colors.RED, err=True)
    else:
        typer.secho(f"error: {exc.detail}", fg=typer.colors.RED, err=True)
