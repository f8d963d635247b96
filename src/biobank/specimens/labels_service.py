"""Label sheets for specimens: resolve what the principal may see, render, audit the download."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, tzinfo
from typing import Literal

from sqlalchemy.orm import Session

from biobank import audit
from biobank.identity.principal import Principal
from biobank.kit.errors import FieldError, Invalid
from biobank.specimens import repository as repo
from biobank.specimens.labels import Label, render_label_sheet
from biobank.specimens.models import Specimen

MAX_LABELS = 960  # forty sheets of 24


def label_for(specimen: Specimen, tz: tzinfo = UTC) -> Label:
    """One label: the barcode, the public id, the material and the collection date (in zone `tz`)."""
    collected = specimen.collected_at.astimezone(tz).strftime("%Y-%m-%d") if specimen.collected_at else ""
    lines = tuple(line for line in (str(specimen.sample_type), f"collected {collected}" if collected else "") if line)
    return Label(barcode=specimen.barcode, public_id=specimen.public_id, lines=lines)


def label_sheet(
    session: Session,
    principal: Principal,
    refs: Sequence[str],
    fmt: Literal["pdf", "svg"] = "pdf",
    *,
    tz: tzinfo = UTC,
) -> bytes:
    """A sheet of labels for these specimens (public ids or barcodes), in the order given; audited.

    Dates are printed in `tz`: the zone the people who read the labels live in.
    """
    wanted = list(dict.fromkeys(r.strip() for r in refs if r.strip()))
    if not wanted:
        raise Invalid.field("ids", "choose at least one specimen")
    if len(wanted) > MAX_LABELS:
        raise Invalid.field("ids", f"at most {MAX_LABELS} labels at a time")
    found = repo.by_refs(session, principal, wanted)
    missing = [r for r in wanted if r not in found]
    if missing:
        raise Invalid([FieldError(["ids"], "unknown specimen", value=r) for r in missing])
    specimens = list({found[r].id: found[r] for r in wanted}.values())
    try:
        sheet = render_label_sheet([label_for(s, tz) for s in specimens], fmt=fmt)
    except ValueError as exc:
        raise Invalid.field("ids", str(exc)) from None
    audit.record(
        session,
        principal,
        "specimen.labels",
        "specimen",
        [s.public_id for s in specimens],
        details={"format": fmt, "count": len(specimens)},
    )
    return sheet
