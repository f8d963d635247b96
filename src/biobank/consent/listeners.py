"""Who is told, in the same transaction, that donors' current consent changed (new record, withdrawal).

Packages that keep something derived from a donor's consent (the catalogue keeps each donor's consent
state beside its count index) register a listener here; consent calls them after the change is flushed,
so what they derive is in step when the transaction commits. Listeners are plain callables registered by
name, from modules imported on first use (consent imports none of them directly).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from biobank.kit.plugins import optional_import

ConsentListener = Callable[[Session, list[int]], None]

_listeners: dict[str, ConsentListener] = {}
# Modules that register a listener when imported.
LISTENER_MODULES = ("biobank.catalogue.consent_states",)
_loaded = False


def register_consent_listener(name: str, listener: ConsentListener) -> None:
    """Be told (session, donor ids) whenever these donors' current consent changes."""
    _listeners[name] = listener


def unregister_consent_listener(name: str) -> None:
    """Remove a listener (tests)."""
    _listeners.pop(name, None)


def notify_consent_changed(session: Session, donor_ids: list[int]) -> None:
    """Tell every listener that these donors' current consent changed (after the change is flushed)."""
    global _loaded
    if not _loaded:
        for name in LISTENER_MODULES:
            optional_import(name)
        _loaded = True
    session.flush()
    for listener in list(_listeners.values()):
        listener(session, donor_ids)
