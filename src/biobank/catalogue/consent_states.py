"""Each donor's consent state beside the count index, kept in step with consent in the same transaction.

A donor's verdict for any purpose depends only on their current consent record's status, profile, form
version and validity (`biobank.consent.eligibility.ConsentState`). The count index carries the id of that
state on every row, so a count groups matching rows by (collection, state) and asks consent to decide each
state once: no join to the consent records at query time.

It stays exact because consent tells this module of every change (a new record, a withdrawal) through
`biobank.consent.listeners`, in the transaction that makes it; the rows of the donor are updated before
that transaction commits, so the very next count sees it. A facts refresh re-reads the states of the
donors it indexes, which also covers consent rows written by other means (bulk loads).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from biobank.catalogue import consent_adapter
from biobank.catalogue import repository as repo
from biobank.catalogue.consent_adapter import ConsentState


def _key(state: ConsentState) -> str:
    def moment(value: object) -> str:
        return "" if value is None else value.isoformat()  # type: ignore[attr-defined]

    return "|".join(
        [
            state.status,
            state.profile_key,
            str(state.form_version_id),
            moment(state.valid_from),
            moment(state.valid_until),
        ]
    )


def state_ids(session: Session, states: set[ConsentState]) -> dict[ConsentState, int]:
    """The id of each state, adding the states not seen before."""
    keys = {_key(s): s for s in states}
    known = repo.consent_state_ids(session, sorted(keys))
    missing = [s for k, s in keys.items() if k not in known]
    if missing:
        repo.add_consent_states(
            session,
            [
                {
                    "key": _key(s),
                    "status": s.status,
                    "profile_key": s.profile_key,
                    "form_version_id": s.form_version_id,
                    "valid_from": s.valid_from,
                    "valid_until": s.valid_until,
                }
                for s in missing
            ],
        )
        known = repo.consent_state_ids(session, sorted(keys))
    return {s: known[k] for k, s in keys.items()}


def sync_donors(session: Session, donor_ids: list[int] | None) -> None:
    """Re-read the consent states of these donors (all when None) into the donor state table."""
    current = consent_adapter.states(session, donor_ids)
    ids = state_ids(session, {s for _, s in current})
    repo.replace_donor_states(session, donor_ids, [(donor_id, ids[state]) for donor_id, state in current])


def on_consent_changed(session: Session, donor_ids: list[int]) -> None:
    """Consent listener: these donors' current consent changed; update their state and their index rows now."""
    repo.lock_refresh(session)  # a refresh running now would otherwise copy the old state back
    sync_donors(session, donor_ids)
    repo.restate_index_rows(session, donor_ids)


consent_adapter.listen(on_consent_changed)
