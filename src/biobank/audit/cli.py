"""`biobank audit`: verify a log (local or remote), sign a checkpoint now, show keys and witness status."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from biobank.config import get_settings

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


def _bar(done: int, total: int) -> None:
    width = 40
    filled = width * done // total if total else width
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} entries")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


@app.command()
def verify(
    url: Annotated[
        str | None, typer.Option(help="verify a remote node (base URL) instead of the local database")
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="API token of a node admin or auditor (remote)", envvar="BIOBANK_AUDIT_TOKEN")
    ] = None,
    state: Annotated[
        Path | None, typer.Option(help="state file (default ~/.biobank/audit-verify-<origin>.json)")
    ] = None,
    witness_key: Annotated[
        list[str] | None, typer.Option("--witness-key", help="require a valid cosignature by this witness key")
    ] = None,
    accept_new_key: Annotated[
        bool, typer.Option("--accept-new-key", help="accept a changed log key (after confirming the rotation)")
    ] = False,
    deep: Annotated[bool, typer.Option("--deep", help="also decode every entry (canonical form, all fields)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False,
    ledger: Annotated[
        bool, typer.Option("--ledger/--no-ledger", help="also check the roots anchored on the consortium chain")
    ] = True,
) -> None:
    """Recompute the root from every entry, check the signature and consistency with the last run.

    Exit code 0 only when everything holds; otherwise the first bad entry is named.
    """
    from biobank.audit.verify import LocalSource, LogSource, RemoteSource, describe, verify_log

    source: LogSource
    if url:
        source = RemoteSource(url, token)
    else:
        from biobank.kit.db import get_engine, session_factory

        settings = get_settings()
        source = LocalSource(session_factory(get_engine(settings.effective_database_url)), settings)
    report = verify_log(
        source,
        state_path=state,
        progress=None if quiet or as_json else _bar,
        accept_new_key=accept_new_key,
        witness_keys=witness_key or (),
        deep=deep,
    )
    if not url and ledger and report.ok:
        _check_ledger_anchors(source, report)
    for warning in report.warnings:
        typer.secho(f"WARNING: {warning}", fg=typer.colors.RED, bold=True, err=True)
    if as_json:
        typer.echo(json.dumps(describe(report), indent=2))
    elif report.ok:
        typer.secho(
            f"ok: {report.origin}: {report.size:,} entries match the signed checkpoint"
            f" and extend the last verified one (state: {report.state_path})",
            fg=typer.colors.GREEN,
        )
    else:
        for problem in report.problems:
            typer.secho(f"FAIL: {problem}", fg=typer.colors.RED, err=True)
        if report.unlisted:
            typer.secho(f"FAIL: ... and {report.unlisted:,} more", fg=typer.colors.RED, err=True)
        if report.first_bad is not None:
            typer.secho(f"first bad entry: {report.first_bad}", fg=typer.colors.RED, bold=True, err=True)
    raise typer.Exit(0 if report.ok else 1)


def _check_ledger_anchors(source: Any, report: Any) -> None:
    """Each root this node anchored on chain must be consistent with the verified log (local logs)."""
    from biobank.kit.plugins import optional_import

    settings = get_settings()
    anchoring = optional_import("biobank.ledger.anchoring")
    if anchoring is None or not settings.ledger_enabled:
        return
    from biobank.kit.db import get_engine, session_factory

    try:
        checked, problems = anchoring.verify_log_anchors(
            settings, session_factory(get_engine(settings.effective_database_url)), source, report.size, report.root
        )
    except Exception as exc:  # the log itself verified; an unreachable chain is a warning, not a failure
        report.warnings.append(f"anchors on the chain were not checked: {type(exc).__name__}: {exc}")
        return
    report.problems.extend(problems)
    if not problems and checked:
        typer.echo(f"{checked} anchored root(s) on the chain are consistent with the log")


@app.command()
def checkpoint() -> None:
    """Sign a checkpoint of the current tree now and submit it to the witness peers."""
    from biobank.audit import repository as repo
    from biobank.audit.checkpoints import with_cosignatures
    from biobank.audit.jobs import run_once
    from biobank.kit.db import get_engine, unit_of_work

    settings = get_settings()
    engine = get_engine(settings.effective_database_url)
    run_once(settings, engine=engine, force=True)
    with unit_of_work(engine) as session:
        latest = repo.latest_checkpoint(session)
        if latest is None:
            typer.secho("error: no checkpoint could be signed (see `biobank audit witnesses`)", err=True)
            raise typer.Exit(1)
        typer.echo(with_cosignatures(session, latest).note, nl=False)


@app.command("public-key")
def public_key() -> None:
    """Print the checkpoint verifier key (give it to verifiers and witnesses)."""
    from biobank.audit.keys import log_signer

    typer.echo(log_signer(get_settings()).vkey())


@app.command("witness-key")
def witness_key() -> None:
    """Print this node's cosigner verifier key (give it to the logs it witnesses)."""
    from biobank.audit.keys import witness_signer

    typer.echo(witness_signer(get_settings()).cosigner_vkey())


@app.command()
def witnesses() -> None:
    """Show witness peers, what they cosigned, and recent refusals."""
    from biobank.audit import repository as repo
    from biobank.kit.db import get_engine, unit_of_work

    settings = get_settings()
    with unit_of_work(get_engine(settings.effective_database_url)) as session:
        for peer in repo.peers(session):
            typer.echo(f"peer {peer.url}: cosigned size {peer.cosigned_size:,} ({peer.vkey or 'key not pinned'})")
        for event in repo.recent_events(session, 20):
            typer.echo(
                f"{event.at:%Y-%m-%d %H:%M:%S} {event.role:8} {event.peer} size {event.size:,}: "
                f"{event.outcome} {event.status or ''} {event.message}"
            )
