"""`biobank demo`: migrate, generate the demonstration consortium, print the logins, serve."""

from __future__ import annotations

import time
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the `demo` command to the root command."""
    app.command("demo")(demo)


def demo(
    donors: Annotated[int, typer.Option(min=1, help="donors to register")] = 500,
    specimens: Annotated[int, typer.Option(min=0, help="specimens to create (aliquots included)")] = 5_000,
    seed: Annotated[int, typer.Option(help="random seed: the same seed gives the same data")] = 2026,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="generate only; do not start the server")] = False,
    host: Annotated[str, typer.Option(help="address to serve on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to serve on")] = 8000,
    reset: Annotated[bool, typer.Option("--reset", help="delete the existing database first")] = False,
) -> None:
    """Load a synthetic consortium (deterministic with --seed) into this node and serve it; development only."""
    from biobank import cli
    from biobank.config import Environment, get_settings
    from biobank.demo.generator import DEMO_USERS, DemoConfig, generate, has_data
    from biobank.kit.db import get_engine, session_factory

    settings = get_settings()
    if settings.env is Environment.PRODUCTION:
        typer.secho("error: the demo never runs in production (BIOBANK_ENV=production)", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    if reset:
        _reset(settings.effective_database_url)
    cli.upgrade()
    engine = get_engine(settings.effective_database_url)
    make_session = session_factory(engine)
    with make_session() as session:
        occupied = has_data(session)
    if occupied and not no_serve:
        # `make demo` a second time: serve what is there instead of refusing to start.
        typer.echo("this node already holds data (an earlier demo?): serving it as it is; "
                   "`biobank demo --reset` starts a fresh demo")
        typer.echo(f"\nserving on http://{host}:{port}/ (Ctrl+C stops)")
        cli.serve(host=host, port=port, workers=1, no_upgrade=True)
        return
    if occupied:
        typer.secho(
            "error: this database already holds biobanks or users; the demo needs an empty node. "
            "Run `biobank demo --reset` to delete it and start again, or use another --data-dir.",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)
    started = time.perf_counter()

    def say(message: str) -> None:
        typer.echo(f"[{time.perf_counter() - started:6.1f} s] {message}")

    summary = generate(make_session, DemoConfig(donors=donors, specimens=specimens, seed=seed), say)
    typer.echo(
        f"demo loaded in {summary.seconds:.1f} s: {summary.donors:,} donors, {summary.specimens:,} specimens "
        f"({', '.join(f'{k} {v:,}' for k, v in summary.per_biobank.items())}), {summary.boxes:,} boxes, "
        f"{summary.qc_results:,} QC results"
    )
    show_passwords = settings.env is Environment.DEVELOPMENT
    typer.echo("\nDemo logins" + ("" if show_passwords else " (passwords are shown in development only)") + ":")
    for user in DEMO_USERS:
        secret = user.password if show_passwords else "********"
        typer.echo(f"  {user.username:<12} {secret:<20} {user.what}")
    if summary.access_requests:
        typer.echo(f"\nAccess requests ({summary.consents:,} donor consents, {summary.access_seconds:.1f} s; "
                   "the server publishes their chain writes to the embedded chain, see /ledger):")
        for request in summary.access_requests:
            typer.echo(f"  {request.public_id:<24} {request.status:<16} {request.title:<40} next: {request.next_step}")
    if no_serve:
        return
    typer.echo(f"\nserving on http://{host}:{port}/ (Ctrl+C stops)")
    cli.serve(host=host, port=port, workers=1, no_upgrade=True)


def _reset(url: str) -> None:
    """Delete the SQLite file, or drop every table of a PostgreSQL database."""
    from pathlib import Path

    from sqlalchemy import text

    from biobank.kit.db import Base, dispose_engines, null_pool_engine
    from biobank.model_registry import import_all_models

    dispose_engines()
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        typer.echo(f"deleted {path}")
        return
    import_all_models()
    engine = null_pool_engine(url)
    with engine.begin() as connection:
        Base.metadata.drop_all(connection)
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
    typer.echo("dropped every table")
