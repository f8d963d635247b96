"""`biobank clinical ...`: import clinical data from the node's shell, compute quality reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Clinical data: imports and quality reports.", no_args_is_help=True)


def _print_report(report: object) -> None:
    typer.echo(json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False))  # type: ignore[attr-defined]


@app.command("import")
def import_table(
    file: Annotated[Path, typer.Argument(help="CSV or XLSX file", exists=True, dir_okay=False)],
    mapping: Annotated[Path, typer.Option(help="mapping file (JSON)", exists=True, dir_okay=False)],
    biobank: Annotated[str, typer.Option(help="biobank code")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report without writing")] = False,
) -> None:
    """Import a table with a mapping (all or nothing; re-importing the same file changes nothing)."""
    from biobank.clinical import service
    from biobank.config import get_settings
    from biobank.identity.principal import system_principal
    from biobank.kit.db import unit_of_work
    from biobank.kit.errors import BiobankError

    actor = system_principal(get_settings().institution_code)
    try:
        with unit_of_work() as session:
            report = service.import_table(
                session,
                actor,
                biobank=biobank,
                filename=file.name,
                data=file.read_bytes(),
                mapping=mapping.read_bytes(),
                dry_run=dry_run,
            )
    except BiobankError as exc:
        typer.echo(json.dumps({"error": exc.name, "detail": exc.detail}, indent=2, ensure_ascii=False), err=True)
        raise typer.Exit(2) from None
    _print_report(report)


@app.command("import-fhir")
def import_fhir(
    file: Annotated[Path, typer.Argument(help="FHIR R4 Bundle (JSON)", exists=True, dir_okay=False)],
    biobank: Annotated[str, typer.Option(help="biobank code")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report without writing")] = False,
) -> None:
    """Import a FHIR Bundle of Patient, Condition, Observation and Specimen resources."""
    from biobank.clinical import service
    from biobank.config import get_settings
    from biobank.identity.principal import system_principal
    from biobank.kit.db import unit_of_work
    from biobank.kit.errors import BiobankError

    actor = system_principal(get_settings().institution_code)
    try:
        with unit_of_work() as session:
            report = service.import_fhir(
                session, actor, biobank=biobank, data=file.read_bytes(), filename=file.name, dry_run=dry_run
            )
    except BiobankError as exc:
        typer.echo(json.dumps({"error": exc.name, "detail": exc.detail}, indent=2, ensure_ascii=False), err=True)
        raise typer.Exit(2) from None
    _print_report(report)


@app.command("quality")
def quality(
    collection: Annotated[str, typer.Argument(help="collection public id")],
) -> None:
    """Compute and store a collection's data quality report."""
    from biobank.clinical import service
    from biobank.config import get_settings
    from biobank.identity.principal import system_principal
    from biobank.kit.db import unit_of_work
    from biobank.kit.errors import BiobankError

    actor = system_principal(get_settings().institution_code)
    try:
        with unit_of_work() as session:
            report = service.compute_quality(session, actor, collection)
    except BiobankError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    _print_report(report)
