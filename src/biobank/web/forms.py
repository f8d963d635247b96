"""Form handling for pages: parse posted fields into API schemas, map every error to its field.

A form fails in three ways: a value of the wrong type or a missing field (Pydantic), a domain rule
(a service's ``Invalid``) or a clash with the current state (``Conflict``). The first two become one
``{field: message}`` dict, shown under the fields; conflicts become an error flash on the same page.
A refused form writes nothing: the service call runs in a savepoint that is rolled back on failure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from biobank.config import get_settings
from biobank.kit.errors import BiobankError, Conflict, FieldError, Invalid, NotFound, NotPermitted
from biobank.kit.pagination import PageParams

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

DEFAULT_PAGE_SIZE = 25
FormValues = dict[str, Any]

# Pydantic's wording, made to read well under a form field.
_MESSAGE_PREFIXES = ("Value error, ", "Assertion failed, ")
_MESSAGES = {
    "Field required": "required",
    "Extra inputs are not permitted": "not a field of this form",
}


def _dotted(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc)


def field_errors(exc: Invalid) -> dict[str, str]:
    """Field → message for an Invalid, keyed by the dotted path, each parent path and the last name.

    ``placement.box`` can then be shown under a field called ``box`` and ``diagnoses.0.icd10``
    under ``diagnoses``; an error without a field is keyed ``""``. Messages for one key are joined.
    """
    out: dict[str, list[str]] = {}

    def add(key: str, message: str) -> None:
        messages = out.setdefault(key, [])
        if message not in messages:
            messages.append(message)

    for error in exc.errors:
        loc = [p for p in error.get("loc", []) if p not in ("body", "form", "query")]
        message = str(error.get("msg", "invalid"))
        if not loc:
            add("", message)
            continue
        add(_dotted(loc), message)
        for end in range(len(loc) - 1, 0, -1):
            add(_dotted(loc[:end]), message)
        names = [p for p in loc if isinstance(p, str)]
        if names and names[-1] != _dotted(loc):
            add(names[-1], message)
    return {key: "; ".join(messages) for key, messages in out.items()}


def field_label(loc: Sequence[Any]) -> str:
    """How an error summary names a field: "diagnoses (item 2)" for diagnoses.1.icd10, "box" for placement.box."""
    parts = [p for p in loc if p not in ("body", "form", "query")]
    for i, part in enumerate(parts):
        if isinstance(part, int) and i > 0:
            return f"{str(parts[i - 1]).replace('_', ' ')} (item {part + 1})"
    names = [str(p) for p in parts if isinstance(p, str)]
    return names[-1].replace("_", " ") if names else ""


def _clean_message(message: str) -> str:
    for prefix in _MESSAGE_PREFIXES:
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return _MESSAGES.get(message, message)


def invalid_from_validation(exc: ValidationError) -> Invalid:
    """The same Invalid a service would raise, from Pydantic's errors (type, missing, validators)."""
    errors = []
    for error in exc.errors(include_url=False):
        value = error.get("input")
        errors.append(
            FieldError(
                [p for p in error.get("loc", ()) if not isinstance(p, str) or p != "__root__"],
                _clean_message(str(error.get("msg", "invalid"))),
                value=value if isinstance(value, str | int | float | bool) else None,
            )
        )
    return Invalid(errors)


def parse_form(schema: type[M], values: Mapping[str, Any]) -> M:
    """Validate form values into a schema; type errors and missing fields raise Invalid like the services."""
    try:
        return schema.model_validate(dict(values))
    except ValidationError as exc:
        raise invalid_from_validation(exc) from None


# -- reading posted values --------------------------------------------------------------------------------


async def form_data(request: Request) -> FormValues:
    """The posted form as a dict: one string per field, a list where a field repeats (checkboxes)."""
    form = await request.form()
    out: FormValues = {}
    for key in form:
        values = [v for v in form.getlist(key) if isinstance(v, str)]
        out[key] = values if len(values) > 1 else (values[0] if values else "")
    return out


def text(values: Mapping[str, Any], key: str) -> str:
    """A single posted value, stripped ("" when absent)."""
    value = values.get(key, "")
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value).strip()


def many(values: Mapping[str, Any], key: str) -> list[str]:
    """Every value of a repeated field (checkboxes, multi-selects), blanks dropped."""
    value = values.get(key, [])
    items = value if isinstance(value, list) else [value]
    return [str(v).strip() for v in items if str(v).strip()]


def codes(values: Mapping[str, Any], key: str) -> list[str]:
    """A comma- or whitespace-separated list of codes ("C34.1, I10")."""
    return [c for c in text(values, key).replace(";", ",").replace("\n", ",").split(",") if c.strip()]


def present(values: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """The named fields that were filled in; blanks are left out so the schema's default applies."""
    return {k: text(values, k) for k in keys if text(values, k) != ""}


# -- time ------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def node_timezone() -> tzinfo:
    """The time zone in which people at this node type times (datetime-local inputs have none).

    A `timezone` setting wins when the node has one; otherwise the host's zone (TZ, /etc/timezone,
    /etc/localtime), falling back to the host's current UTC offset.
    """
    candidates = [getattr(get_settings(), "timezone", None), os.environ.get("TZ")]
    timezone_file = Path("/etc/timezone")
    if timezone_file.exists():
        candidates.append(timezone_file.read_text().strip())
    localtime = Path("/etc/localtime")
    if localtime.is_symlink():
        candidates.append(str(localtime.resolve()).partition("zoneinfo/")[2])
    for name in candidates:
        if name:
            try:
                return ZoneInfo(str(name).lstrip(":"))
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return datetime.now().astimezone().tzinfo or ZoneInfo("UTC")


def timezone_label() -> str:
    """How forms name the zone times are read in, e.g. "Asia/Shanghai, UTC+08:00" or "UTC"."""
    zone = node_timezone()
    name = str(zone).removeprefix("Etc/")
    offset = datetime.now(zone).strftime("%z")
    if not offset or name in ("UTC", "GMT", "Universal", "Zulu"):
        return "UTC" if not offset or offset == "+0000" else name
    return f"{name}, UTC{offset[:3]}:{offset[3:]}"


def local_datetime(value: str) -> datetime | str:
    """A datetime-local value ("2026-01-31T09:30") as an aware datetime in the node's zone.

    Text that is not a date is returned unchanged so the schema names the field that is wrong.
    """
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=node_timezone())


def datetime_local(value: datetime | None) -> str:
    """An aware datetime as the value of a datetime-local input, in the node's zone."""
    if value is None:
        return ""
    return value.astimezone(node_timezone()).strftime("%Y-%m-%dT%H:%M")


def times(values: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """The filled-in datetime-local fields, as aware datetimes in the node's zone."""
    return {k: local_datetime(text(values, k)) for k in keys if text(values, k)}


# -- paging ----------------------------------------------------------------------------------------------


def _int(value: str | None, default: int) -> int:
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        return default


def page_params(request: Request, *, default_size: int = DEFAULT_PAGE_SIZE) -> PageParams:
    """Page, size and sort from the query string; a page or size that is not a number falls back."""
    query = request.query_params
    size = min(max(_int(query.get("size"), default_size), 1), get_settings().page_size_max)
    return PageParams(page=max(_int(query.get("page"), 1), 1), size=size, sort=query.get("sort") or None)


# -- running a form --------------------------------------------------------------------------------------


@dataclass
class FormState:
    """What a form re-renders with: which form, the entered values and the errors per field."""

    name: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    summary: list[tuple[str, str]] = field(default_factory=list)

    @property
    def submitted(self) -> bool:
        """Whether this form was posted and refused (its fields then show what was typed)."""
        return bool(self.values)

    def value(self, key: str, default: Any = "") -> Any:
        """The entered value of a field (what the user typed, not what was stored)."""
        return self.values.get(key, default)

    def error(self, *keys: str) -> str | None:
        """The message for the first of these field names that has one."""
        for key in keys:
            if key in self.errors:
                return self.errors[key]
        return None


def form_state(form: FormState | None, name: str) -> FormState:
    """The state of form `name` on a page: the refused form's, or a fresh one (for templates)."""
    return form if form is not None and form.name == name else FormState(name=name)


@dataclass
class Outcome:
    """The result of submitting a form: the service's return value, or why it was refused."""

    value: Any = None
    status_code: int = 200
    errors: dict[str, str] = field(default_factory=dict)
    summary: list[tuple[str, str]] = field(default_factory=list)
    message: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the service accepted the form."""
        return self.status_code < 400

    def state(self, name: str, values: Mapping[str, Any]) -> FormState:
        """The form state to re-render `name` with the entered values and these errors."""
        return FormState(name=name, values=values, errors=self.errors, summary=self.summary)


@contextmanager
def savepoint(session: Session) -> Iterator[None]:
    """Run a write in a savepoint; on any error it is rolled back (audit drops the entries it queued)."""
    nested = session.begin_nested()
    try:
        yield
    except BaseException:
        if nested.is_active:
            nested.rollback()
        raise
    nested.commit()


def submit(session: Session, call: Callable[[], T]) -> Outcome:
    """Call one service function for a form; Invalid/Conflict/NotPermitted become an Outcome, not a page."""
    try:
        with savepoint(session):
            value = call()
    except Invalid as exc:
        errors = field_errors(exc)
        summary = [(field_label(e.get("loc", [])), str(e.get("msg", ""))) for e in exc.errors]
        return Outcome(status_code=422, errors=errors, summary=summary, message=errors.get(""))
    except (Conflict, NotPermitted) as exc:
        return Outcome(status_code=exc.status_code, message=str(exc.detail))
    except NotFound as exc:
        # The page's own object was found before the form ran: this is something the form names.
        return Outcome(status_code=422, message=str(exc.detail))
    except BiobankError as exc:
        return Outcome(status_code=exc.status_code, message=str(exc.detail))
    return Outcome(value=value)
