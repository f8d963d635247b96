"""The `biobank` command: one Typer root; packages register their own sub-commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from biobank.config import Settings, configure, get_settings
from biobank.kit.plugins import optional_import

app = typer.Typer(help="Biobank Commons node.", no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="Users and roles.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")

# Sub-apps of packages: module path -> command name. A module that does not exist yet is skipped.
SUBCOMMAND_MODULES = {
    "biobank.specimens.cli": "import",
    "biobank.specimens.export_cli": "export",
    "biobank.audit.cli": "audit",
    "biobank.catalogue.cli": "catalogue",
    "biobank.clinical.cli": "clinical",
    "biobank.ledger.cli": "ledger",
    "biobank.access.cli": "access",
}
# Modules with `register(app)` that add top-level commands (e.g. `biobank demo`).
REGISTER_MODULES = ("biobank.demo.cli",)


def fail(message: str, code: int = 1) -> None:
    """Print an error to stderr and exit with `code`."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.callback()
def main_options(
    data_dir: Annotated[Path | None, typer.Option(help="node data directory (default BIOBANK_DATA_DIR)")] = None,
) -> None:
    """Biobank Commons node."""
    if data_dir is not None:
        configure(Settings(data_dir=data_dir))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes (PostgreSQL only)")] = 1,
    no_upgrade: Annotated[bool, typer.Option("--no-upgrade", help="do not migrate the database first")] = False,
) -> None:
    """Serve the API and web UI (migrates the database first)."""
    import uvicorn

    if not no_upgrade:
        upgrade()
    uvicorn.run(
        "biobank.app:asgi_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
    )


@db_app.command("upgrade")
def upgrade() -> None:
    """Migrate the database to the newest schema and set up this node's institution and keys."""
    from biobank.kit.db import get_engine, unit_of_work
    from biobank.kit.migrate import upgrade as run_upgrade
    from biobank.node import initialise_node

    settings = get_settings()
    engine = get_engine(settings.effective_database_url)
    run_upgrade(engine)
    with unit_of_work(engine) as session:
        initialise_node(session, settings)
    typer.echo("database is at the newest revision")


@db_app.command("current")
def current() -> None:
    """Show the database's revision."""
    from biobank.kit.db import get_engine
    from biobank.kit.migrate import current_revision

    typer.echo(current_revision(get_engine()) or "empty")


def _read_password(prompt_text: str) -> str:
    if sys.stdin.isatty():
        password: str = typer.prompt(prompt_text, hide_input=True, confirmation_prompt=True)
        return password
    return sys.stdin.readline().rstrip("\n")


@users_app.command("create")
def users_create(
    name: Annotated[str, typer.Argument(help="username")],
    role: Annotated[
        str, typer.Option(help="admin, auditor, researcher, or a biobank role: manager, technician, viewer")
    ],
    biobank: Annotated[str | None, typer.Option(help="biobank code (for biobank roles)")] = None,
    display_name: Annotated[str, typer.Option(help="name shown in the UI")] = "",
    ethics_reviewer: Annotated[
        bool, typer.Option("--ethics-reviewer", help="member of the ethics committee (decides access requests)")
    ] = False,
) -> None:
    """Create a user; the password is read from standard input."""
    from biobank.identity import service
    from biobank.identity.models import Role, UserKind
    from biobank.identity.principal import system_principal
    from biobank.institutions import service as institutions
    from biobank.kit.db import unit_of_work
    from biobank.kit.errors import BiobankError

    node_roles = {"admin", "auditor", "researcher"}
    if role not in node_roles and role not in {r.value for r in Role}:
        fail(f"unknown role {role!r}: use admin, auditor, researcher, manager, technician or viewer", 2)
    if role in {r.value for r in Role} and not biobank:
        fail(f"--biobank is required for the {role} role", 2)
    password = _read_password("Password")
    actor = system_principal(get_settings().institution_code)
    try:
        with unit_of_work() as session:
            user = service.create_user(
                session,
                actor,
                name,
                password,
                display_name=display_name,
                kind=UserKind.RESEARCHER if role == "researcher" else UserKind.STAFF,
                is_admin=role == "admin",
                is_auditor=role == "auditor",
                is_ethics_reviewer=ethics_reviewer,
            )
            if biobank:
                bb = institutions.get_biobank(session, biobank)
                service.grant_role(session, actor, user, bb.id, Role(role))
    except BiobankError as exc:
        fail(str(exc), 2)
    typer.echo(f"created user {name}")


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="username the token acts as")],
    label: Annotated[str, typer.Option(help="what the token is for")] = "cli",
    scopes: Annotated[str, typer.Option(help="comma-separated: read,write")] = "read,write",
    days: Annotated[int, typer.Option(help="days until it expires")] = 90,
) -> None:
    """Create an API token for a user and print it (it is shown only once)."""
    from biobank.identity import service
    from biobank.identity.principal import system_principal
    from biobank.kit.db import unit_of_work
    from biobank.kit.errors import BiobankError

    actor = system_principal(get_settings().institution_code)
    try:
        with unit_of_work() as session:
            user = service.get_user(session, name)
            secret, _ = service.create_token(
                session, actor, user, label, scopes=[s.strip() for s in scopes.split(",") if s.strip()], days=days
            )
    except BiobankError as exc:
        fail(str(exc), 2)
    typer.echo(secret)


def _register_subcommands() -> None:
    for module_name, command in SUBCOMMAND_MODULES.items():
        module = optional_import(module_name)
        if module is not None:
            app.add_typer(module.app, name=command)
    for module_name in REGISTER_MODULES:
        module = optional_import(module_name)
        if module is not None:
            module.register(app)


def main() -> None:
    """Entry point of the `biobank` script."""
    _register_subcommands()
    app()
