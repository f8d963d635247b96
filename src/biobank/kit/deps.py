"""FastAPI dependencies shared by every router: the request's unit of work."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from biobank.kit.db import finish_failed


def _session(request: Request) -> Iterator[Session]:
    """One session per request, committed once when the route returns (before the response is sent)."""
    session: Session = request.app.state.session_factory()
    try:
        yield session
        session.commit()
    except BaseException as exc:
        finish_failed(session, exc)
        raise
    finally:
        session.close()


# scope="function": the commit runs right after the route returns, so a failed commit becomes the
# response (an error), never a 200 for work that was not kept.
DbSession = Annotated[Session, Depends(_session, scope="function")]
