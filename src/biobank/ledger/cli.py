"""`biobank ledger`: status, deploy, join/admit, publish, anchor, verify."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from biobank.config import get_settings

app = typer.Typer(help="The consortium ledger (smart contracts on an EVM chain).", no_args_is_help=True)


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _sessions() -> Any:
    from biobank.kit.db import get_engine, session_factory

    return session_factory(get_engine(get_settings().effective_database_url))


def _open(deploy_if_missing: bool | None = None) -> Any:
    from biobank.kit.errors import BiobankError
    from biobank.ledger.client import ChainLocked, ChainUnavailable
    from biobank.ledger.service import open_ledger

    try:
        return open_ledger(get_settings(), _sessions(), deploy_if_missing=deploy_if_missing)
    except ChainLocked:
        _fail("the embedded chain is open in another process (a running `biobank serve`?): stop it first, "
              "or see the server's /ledger page", 2)
    except ChainUnavailable as exc:
        _fail(f"the chain is not reachable: {exc}", 2)
    except BiobankError as exc:
        _fail(str(exc.detail if hasattr(exc, "detail") else exc), 2)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """The chain, the contracts, this node's accounts and the outbox backlog."""
    from biobank.ledger.anchoring import recent_anchors
    from biobank.ledger.publisher import backlog
    from biobank.ledger.service import describe

    sessions = _sessions()
    with sessions() as session:
        queue = backlog(session)
        anchors = recent_anchors(session, 1)
    out: dict[str, Any] = {
        "backlog": {"pending": queue.pending, "sending": queue.sending, "failed": queue.failed, "sent": queue.sent,
                    "oldest_pending_at": queue.oldest_pending_at.isoformat() if queue.oldest_pending_at else None,
                    "last_error": queue.last_error},
        "last_anchor": {"size": anchors[0].tree_size, "block": anchors[0].block_number} if anchors else None,
    }
    ledger = _open()
    try:
        out["chain"] = describe(ledger)
    finally:
        ledger.close()
    if as_json:
        typer.echo(json.dumps(out, indent=2, default=str))
        return
    chain = out["chain"]
    typer.echo(f"chain {chain['url']} (id {chain['chain_id']}), block {chain['block']:,}")
    for name, address in chain["contracts"].items():
        typer.echo(f"  {name:<20} {address}")
    typer.echo(f"institution {chain['institution']}")
    for name, address in chain["accounts"].items():
        typer.echo(f"  {name:<20} {address}")
    b = out["backlog"]
    typer.echo(f"outbox: {b['pending']} pending, {b['sending']} sending, {b['failed']} failed, {b['sent']} sent")
    if b["last_error"]:
        typer.echo(f"  last error: {b['last_error']}")
    if out["last_anchor"]:
        typer.echo(f"last anchor: size {out['last_anchor']['size']:,} in block {out['last_anchor']['block']}")


@app.command()
def deploy() -> None:
    """Deploy the contracts (this node becomes the consortium admin) and register this institution."""
    from biobank.ledger.service import recorded_addresses

    settings = get_settings()
    if settings.ledger_registry:
        _fail("BIOBANK_LEDGER_REGISTRY is set: this node joins an existing deployment (`biobank ledger join`)")
    ledger = _open(deploy_if_missing=True)
    try:
        with _sessions()() as session:
            addresses = recorded_addresses(session, ledger.client.chain_id)
        typer.echo(f"contracts on chain {ledger.client.chain_id}:")
        for name, address in addresses.items():
            typer.echo(f"  {name:<20} {address}")
        typer.echo(f"other nodes join with BIOBANK_LEDGER_REGISTRY={addresses['InstitutionRegistry']}")
    finally:
        ledger.close()


@app.command()
def accounts() -> None:
    """This node's chain accounts (give the institution admin's to the consortium admin to be admitted)."""
    from biobank.ledger import keys

    settings = get_settings()
    for name in (*keys.ROLE_NAMES.values(), keys.CONSORTIUM_ADMIN):
        typer.echo(f"{name:<20} {keys.account_for(settings, name).address}")


@app.command()
def admit(
    code: Annotated[str, typer.Argument(help="the institution's code, e.g. CN-BJ-H02")],
    admin: Annotated[str, typer.Argument(help="its institution-admin account (from `biobank ledger accounts`)")],
) -> None:
    """As consortium admin: admit an institution with its admin account."""
    from eth_utils.address import is_address

    from biobank.ledger.client import Reverted
    from biobank.ledger.service import admit_institution

    if not is_address(admin):
        _fail(f"admin: {admin!r} is not an account address")
    if not code or len(code.encode()) > 32 or not code.isprintable() or " " in code:
        _fail(f"code: {code!r} is not an institution code (at most 32 characters, no spaces)")
    ledger = _open()
    try:
        receipt = admit_institution(ledger, code, admin)
        typer.echo(f"{code} admitted in block {receipt.block_number}" if receipt else f"{code} is already a member")
    except Reverted as exc:
        _fail(f"the chain refused: {exc.reason}")
    finally:
        ledger.close()


@app.command()
def join() -> None:
    """Join the deployment named by BIOBANK_LEDGER_REGISTRY: record the contracts and grant local roles."""
    if not get_settings().ledger_registry:
        _fail("set BIOBANK_LEDGER_REGISTRY to the registry address the consortium admin gave you")
    ledger = _open(deploy_if_missing=False)
    try:
        typer.echo(f"joined chain {ledger.client.chain_id} as {ledger.settings.institution_code}")
    finally:
        ledger.close()


@app.command()
def publish() -> None:
    """Publish the outbox now (the server does this in the background)."""
    from biobank.ledger.publisher import publish_due

    ledger = _open()
    try:
        total_sent = total_failed = 0
        while True:
            report = publish_due(_sessions(), ledger)
            total_sent += report.sent
            total_failed += report.failed
            if report.unavailable:
                _fail(f"stopped: {report.unavailable} ({total_sent} sent)", 2)
            if report.touched == 0:
                break
        typer.echo(f"{total_sent} sent, {total_failed} rejected")
        if total_failed:
            raise typer.Exit(1)
    finally:
        ledger.close()


@app.command()
def anchor() -> None:
    """Sign a checkpoint now and put it on chain."""
    from biobank.kit.db import get_engine, unit_of_work
    from biobank.ledger.anchoring import anchor_latest
    from biobank.ledger.publisher import publish_due

    settings = get_settings()
    with unit_of_work(get_engine(settings.effective_database_url)) as session:
        queued = anchor_latest(session, settings)
        size = queued.tree_size if queued else None
    ledger = _open()
    try:
        report = publish_due(_sessions(), ledger)
        if report.unavailable:
            _fail(report.unavailable, 2)
    finally:
        ledger.close()
    typer.echo(f"anchored size {size:,}" if size else "nothing new to anchor")


@app.command()
def verify(as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False) -> None:
    """Prove that local agreements, shipments, grants and anchors match the chain; name any difference."""
    from biobank.ledger.verify import verify_ledger

    ledger = _open()
    try:
        with _sessions()() as session:
            report = verify_ledger(session, ledger)
    finally:
        ledger.close()
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    elif report.ok:
        typer.secho(f"ok: {report.checked} facts match the chain ({report.pending} not yet published)",
                    fg=typer.colors.GREEN)
    else:
        for difference in report.differences:
            typer.secho(f"DIFFERS: {difference}", fg=typer.colors.RED, err=True)
    raise typer.Exit(0 if report.ok else 1)


def _registry_call(function: str, *args: Any, signer: str = "consortium_admin") -> Any:
    """Send one InstitutionRegistry call from one of this node's accounts; a refusal ends the command."""
    from biobank.ledger.client import Reverted

    ledger = _open()
    try:
        account = ledger.account(signer)
        return ledger.handle("InstitutionRegistry").transact(account.account, function, *args)
    except Reverted as exc:
        _fail(f"the chain refused: {exc.reason}")
    finally:
        ledger.close()


def _institution(code: str) -> bytes:
    from biobank.ledger.refs import institution_ref

    if not code or len(code.encode()) > 32 or " " in code:
        _fail(f"code: {code!r} is not an institution code (at most 32 characters, no spaces)")
    return bytes.fromhex(institution_ref(code)[2:])


@app.command()
def suspend(code: Annotated[str, typer.Argument(help="the institution's code")]) -> None:
    """As consortium admin: suspend an institution (its accounts lose their roles until reinstated)."""
    receipt = _registry_call("suspend", _institution(code))
    typer.echo(f"{code} suspended in block {receipt.block_number}")


@app.command()
def reinstate(code: Annotated[str, typer.Argument(help="the institution's code")]) -> None:
    """As consortium admin: reinstate a suspended institution."""
    receipt = _registry_call("reinstate", _institution(code))
    typer.echo(f"{code} reinstated in block {receipt.block_number}")


@app.command("propose-admin")
def propose_admin(
    address: Annotated[str, typer.Argument(help="the next consortium admin's account (its node's `ledger accounts`)")],
) -> None:
    """As consortium admin: propose a successor; the handover completes when it accepts."""
    from eth_utils.address import is_address, to_checksum_address

    if not is_address(address):
        _fail(f"address: {address!r} is not an account address")
    receipt = _registry_call("propose_admin", to_checksum_address(address))
    typer.echo(f"proposed in block {receipt.block_number}; the successor runs `biobank ledger accept-admin`")


@app.command("accept-admin")
def accept_admin() -> None:
    """Accept the consortium admin role proposed to this node's consortium-admin account."""
    receipt = _registry_call("accept_admin")
    typer.echo(f"this node is the consortium admin from block {receipt.block_number}")
