"""Typed errors: every service failure is a BiobankError that knows its HTTP status."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class BiobankError(Exception):
    """Base of every error a service raises on purpose."""

    status_code = 400
    default_name = "BadRequest"

    def __init__(self, detail: Any = None, *, name: str | None = None, keep_changes: bool = False) -> None:
        super().__init__(detail if isinstance(detail, str) else repr(detail))
        self.detail = detail
        self.name = name or self.default_name
        # True when what the transaction wrote must be kept although the request fails
        # (a failed login is counted for throttling and audited).
        self.keep_changes = keep_changes

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of this error."""
        return {"error": self.name, "detail": self.detail}


class NotFound(BiobankError):
    """The object does not exist or the principal may not see it (never a 403 for invisible things)."""

    status_code = 404
    default_name = "NotFound"


class Conflict(BiobankError):
    """The request conflicts with the current state (duplicate, occupied slot, wrong state)."""

    status_code = 409
    default_name = "Conflict"


class NotPermitted(BiobankError):
    """The principal sees the object but may not do this to it."""

    status_code = 403
    default_name = "NotPermitted"


class NotAuthenticated(BiobankError):
    """No valid credentials were given."""

    status_code = 401
    default_name = "NotAuthenticated"


class TooManyRequests(BiobankError):
    """Throttled (for example repeated failed logins)."""

    status_code = 429
    default_name = "TooManyRequests"


class FieldError(dict[str, Any]):
    """One invalid field: its location (path), a message and optionally the row of a file."""

    def __init__(self, loc: Sequence[str | int], msg: str, *, row: int | None = None, value: Any = None):
        super().__init__(loc=list(loc), msg=msg)
        if row is not None:
            self["row"] = row
        if value is not None:
            self["value"] = value if isinstance(value, str | int | float | bool) else str(value)


class Invalid(BiobankError):
    """Input that fails a domain rule; detail is a list of FieldErrors naming each field."""

    status_code = 422
    default_name = "Invalid"

    def __init__(self, errors: Sequence[FieldError] | str, *, name: str | None = None) -> None:
        if isinstance(errors, str):
            errors = [FieldError([], errors)]
        super().__init__(list(errors), name=name)
        self.errors = list(errors)

    @classmethod
    def field(cls, loc: str | Sequence[str | int], msg: str, *, name: str | None = None, value: Any = None) -> Invalid:
        """An error for a single field, e.g. Invalid.field("quantity", "must be positive")."""
        path = [loc] if isinstance(loc, str) else list(loc)
        return cls([FieldError(path, msg, value=value)], name=name)

    def __str__(self) -> str:
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in self.errors)
