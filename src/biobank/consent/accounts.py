"""The donor side: invitation codes, portal accounts, notifications, re-consent, access history.

Donors are never self-registered: staff issue an invitation code (only its keyed hash is stored; it
expires and works once) and redeeming it creates a user of kind `donor` linked to that donor.
Nothing shown to donors names staff: notifications are written by the system, access history lists
institutions and actions, never people.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from biobank import audit
from biobank.config import get_settings
from biobank.consent import repository as repo
from biobank.consent.models import DonorAccount, DonorInvitation, InvitationKind, Notification
from biobank.consent.records import action_name
from biobank.consent.schemas import (
    AccessEventRead,
    InvitationRedeem,
    NotificationCreate,
    ReconsentInvited,
    ReconsentRow,
)
from biobank.donors.models import Donor
from biobank.identity.models import User, UserKind
from biobank.identity.principal import Principal, system_principal
from biobank.kit.crypto import keyed_hash
from biobank.kit.db import utcnow
from biobank.kit.errors import Conflict, FieldError, Invalid, NotFound, NotPermitted
from biobank.kit.ids import new_uuid
from biobank.kit.plugins import optional_import

# Crockford's base32 without I, L, O, U: codes are read aloud and typed on phones.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_GROUPS = 3
INVALID_CODE = "the invitation code is unknown, expired or already used"


def new_code() -> str:
    """A 60-bit invitation code like K7QM-2XHD-9PRT."""
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(4 * CODE_GROUPS))
    return "-".join(chars[i : i + 4] for i in range(0, len(chars), 4))


def _normalise(code: str) -> str:
    cleaned = code.upper().replace("-", "").replace(" ", "")
    return cleaned.translate(str.maketrans("OIL", "011"))


def code_hash(code: str) -> str:
    """The keyed hash stored for a code (the code itself is never stored)."""
    return keyed_hash(get_settings().secret("secret_key"), _normalise(code), namespace="consent-invitation")


def _issue(
    session: Session,
    principal: Principal,
    donor: Donor,
    kind: InvitationKind,
    *,
    days: int,
    version_id: int | None = None,
    with_code: bool = True,
) -> tuple[str | None, DonorInvitation]:
    code = new_code() if with_code else None
    invitation = DonorInvitation(
        public_id=new_uuid(),
        donor_id=donor.id,
        biobank_id=donor.biobank_id,
        kind=kind,
        form_version_id=version_id,
        code_hash=code_hash(code) if code else None,
        created_by=principal.public_id,
        expires_at=utcnow() + timedelta(days=days),
    )
    session.add(invitation)
    session.flush()
    return code, invitation


def invite(session: Session, principal: Principal, donor: Donor, *, days: int = 30) -> tuple[str, DonorInvitation]:
    """Issue an invitation code that lets the donor create their portal account (shown once)."""
    if not principal.can_write(donor.biobank_id):
        raise NotPermitted("only the biobank's managers and technicians invite donors")
    if repo.account_of_donor(session, donor.id) is not None:
        raise Conflict("the donor already has a portal account", name="DonorHasAccount")
    code, invitation = _issue(session, principal, donor, InvitationKind.ACCOUNT, days=days)
    assert code is not None
    audit.record(
        session,
        principal,
        "consent.invitation.create",
        "donor",
        [donor.public_id],
        details={"days": days, "invitation": invitation.public_id},
    )
    return code, invitation


def redeem(session: Session, data: InvitationRedeem, *, client: str | None = None) -> tuple[User, Donor]:
    """Create a donor's portal account from an invitation code; the code then stops working."""
    from biobank.donors import service as donors
    from biobank.identity import service as identity

    invitation = repo.invitation_by_hash(session, code_hash(data.code))
    now = utcnow()
    if invitation is None or invitation.redeemed_at is not None or invitation.expires_at <= now:
        audit.record(session, None, "consent.invitation.redeem", "donor", [], outcome="failure", client_hash=client)
        raise Invalid.field("code", INVALID_CODE, name="InvalidInvitation")
    donor = donors.by_id(session, invitation.donor_id)
    if donor is None:  # pragma: no cover - donors are never deleted
        raise Invalid.field("code", INVALID_CODE, name="InvalidInvitation")
    if repo.account_of_donor(session, donor.id) is not None:
        raise Invalid.field("code", "you already have an account: log in instead", name="DonorHasAccount")
    node = system_principal(get_settings().institution_code)
    user = identity.create_user(session, node, data.username, data.password, kind=UserKind.DONOR)
    session.add(DonorAccount(user_id=user.id, donor_id=donor.id))
    invitation.redeemed_at = now
    session.flush()
    actor = identity.principal_for(session, user, via="session", client=client)
    audit.record(
        session,
        actor,
        "consent.invitation.redeem",
        "donor",
        [donor.public_id],
        details={"invitation": invitation.public_id},
    )
    return user, donor


def notify(
    session: Session, donor_id: int, kind: str, text_en: str, text_zh: str = "", *, link: str | None = None
) -> Notification:
    """Queue a message in a donor's portal (callers audit what caused it)."""
    note = Notification(donor_id=donor_id, kind=kind, text_en=text_en, text_zh=text_zh, link=link)
    session.add(note)
    session.flush()
    return note


def send_notification(session: Session, principal: Principal, donor: Donor, data: NotificationCreate) -> Notification:
    """Staff tell a donor something (e.g. "your sample was used in a study on lung cancer")."""
    if not principal.can_write(donor.biobank_id):
        raise NotPermitted("only the biobank's managers and technicians message donors")
    note = notify(session, donor.id, data.kind, data.text_en, data.text_zh)
    audit.record(
        session, principal, "consent.notification.create", "donor", [donor.public_id], details={"kind": data.kind}
    )
    return note


def notifications(session: Session, principal: Principal, donor: Donor, *, mark_read: bool) -> list[Notification]:
    """A donor's notifications, newest first (reading them in the portal marks them read)."""
    rows = repo.notifications_of(session, donor.id)
    if mark_read:
        repo.mark_read(session, donor.id, utcnow())
    audit.record(
        session,
        principal,
        action_name(principal, "notification.read"),
        "donor",
        [donor.public_id],
        details={"returned": len(rows)},
    )
    return rows


def unread(session: Session, donor: Donor) -> int:
    """How many notifications the donor has not read."""
    return repo.unread_count(session, donor.id)


# -- re-consent -------------------------------------------------------------------------------------------


def reconsent_list(
    session: Session, principal: Principal, *, limit: int = 200, offset: int = 0
) -> tuple[list[ReconsentRow], int]:
    """Donors whose current consent is on an older version of its form (principal's biobanks)."""
    from biobank.donors import service as donors

    if principal.kind == UserKind.DONOR:
        raise NotFound("no such page", name="NotFound")
    rows, total = repo.outdated_current(session, principal.visible_biobank_ids(), limit=limit, offset=offset)
    donor_ids = sorted({r.donor_id for r, _, _ in rows})
    public = donors.public_ids_by_id(session, donor_ids)
    accounts = repo.donors_with_accounts(session, donor_ids)
    invited = repo.last_invitations(session, donor_ids, InvitationKind.RECONSENT.value)
    audit.record(
        session, principal, "consent.reconsent.list", "donor", [public[d] for d in donor_ids], details={"total": total}
    )
    return [
        ReconsentRow(
            donor=public[r.donor_id],
            record=r.public_id,
            form_version=signed.public_id,
            form_version_number=signed.number,
            latest_version=newest.public_id,
            has_account=r.donor_id in accounts,
            invited_at=invited.get(r.donor_id),
        )
        for r, signed, newest in rows
    ], total


def send_reconsent(
    session: Session, principal: Principal, donor_refs: list[str], *, days: int = 30
) -> list[ReconsentInvited]:
    """Invite donors on older versions to review the newest one: a portal notice, or a code if no account."""
    from biobank.donors import service as donors

    found = donors.by_public_ids(session, donor_refs)
    errors = [
        FieldError(["donors", i], "unknown donor", value=ref)
        for i, ref in enumerate(donor_refs)
        if ref not in found or not principal.can_read(found[ref].biobank_id)
    ]
    if errors:
        raise Invalid(errors)
    out = []
    for ref in dict.fromkeys(donor_refs):
        donor = found[ref]
        if not principal.can_write(donor.biobank_id):
            raise NotPermitted("only the biobank's managers and technicians invite donors")
        record = repo.current_record(session, donor.id)
        if record is None:
            raise Invalid.field("donors", f"donor {ref} has no consent to renew", value=ref)
        signed = repo.versions_by_ids(session, [record.form_version_id])[record.form_version_id]
        newest = repo.latest_version(session, signed.form_id)
        assert newest is not None
        has_account = repo.account_of_donor(session, donor.id) is not None
        code, invitation = _issue(
            session,
            principal,
            donor,
            InvitationKind.RECONSENT,
            days=days,
            version_id=newest.id,
            with_code=not has_account,
        )
        if has_account:
            notify(
                session,
                donor.id,
                "reconsent",
                f"The consent form has a new version ({newest.number}). Please read it and confirm your choices.",
                f"知情同意书已更新至第{newest.number}版。请阅读并确认您的选择。",
                link="/portal/consent/change",
            )
        audit.record(
            session,
            principal,
            "consent.reconsent.invite",
            "donor",
            [donor.public_id],
            details={"version": newest.public_id, "account": has_account, "invitation": invitation.public_id},
        )
        out.append(ReconsentInvited(donor=ref, notified=has_account, code=code))
    return out


# -- access history ---------------------------------------------------------------------------------------

ACTION_WORDS: dict[str, tuple[str, str]] = {
    "specimen.read": ("Your sample's record was viewed", "您的样本记录被查看"),
    "specimen.history.read": ("Your sample's history was viewed", "您的样本历史被查看"),
    "specimen.create": ("Your sample was registered", "您的样本已登记"),
    "specimen.update": ("Your sample's record was corrected", "您的样本记录被更正"),
    "specimen.status": ("Your sample's status changed", "您的样本状态发生变化"),
    "specimen.move": ("Your sample was moved in storage", "您的样本在储存中被移动"),
    "specimen.qc.create": ("Your sample was quality-checked", "您的样本接受了质量检测"),
    "consent.eligibility": ("Your sample was checked against a research request", "您的样本被核对是否符合研究申请"),
    "consent.withdraw": ("Your withdrawal was recorded", "您的撤回已记录"),
    "consent.record.create": ("Your consent was recorded", "您的知情同意已记录"),
    "donor.read": ("Your donor record was viewed", "您的捐赠者记录被查看"),
    "donor.identity.read": ("Your identifying data was viewed", "您的身份信息被查看"),
}


# The donor's own reads, the history's own bookkeeping and logins are not accesses by others.
HIDDEN_PREFIXES = ("consent.portal.", "donor.access_history.", "consent.access_history.", "auth.")


@dataclass(frozen=True)
class _Access:
    at: datetime
    institution: str
    action: str
    resource_ids: list[str]


def _history_rows(session: Session, donor: Donor) -> list[_Access]:
    """Accesses to the donor and their specimens from the audit log.

    Adapter: uses the audit package's donor-facing function when it has one, else its staff function on
    the node's behalf (the portal has already established who the donor is). Swap here, nowhere else.
    """
    access = optional_import("biobank.audit.access")
    if access is None:
        return []
    from biobank.kit.pagination import PageParams

    node = system_principal(get_settings().institution_code)
    fetch = getattr(access, "donor_access_history", None) or access.access_history
    rows, _total = fetch(session, node, donor.public_id, PageParams(1, 200))
    return [_Access(r.at, r.institution, r.action, list(r.resource_ids)) for r in rows]


def access_history(session: Session, principal: Principal, donor: Donor, *, lang: str = "en") -> list[AccessEventRead]:
    """Who (which institution, never which person) did what with the donor's data and samples, newest first."""
    rows = [r for r in _history_rows(session, donor) if not r.action.startswith(HIDDEN_PREFIXES)]
    audit.record(
        session,
        principal,
        action_name(principal, "access_history.read"),
        "donor",
        [donor.public_id],
        details={"returned": len(rows)},
    )
    index = 1 if lang == "zh" else 0
    out = []
    for r in rows:
        words = ACTION_WORDS.get(r.action)
        description = words[index] if words else r.action
        resource = next((rid for rid in r.resource_ids if rid != donor.public_id), donor.public_id)
        out.append(
            AccessEventRead(
                at=r.at, action=r.action, description=description, institution=r.institution, resource=resource
            )
        )
    return out
