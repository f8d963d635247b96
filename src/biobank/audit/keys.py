"""The node's audit keys, kept as files outside the database: the log key and the witness key.

``<data_dir>/keys/audit-log.key`` signs this node's checkpoints under the key name (= log origin)
``<institution code>.biobank-commons/audit``; ``<data_dir>/keys/witness.key`` cosigns other logs'
checkpoints as ``<institution code>.biobank-commons/witness``. Both are signed-note private keys
(mode 0600), generated once at ``biobank db upgrade`` or first start and never overwritten.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from biobank.audit.checkpoint import NoteSigner, generate_key_file, load_signer
from biobank.audit.merkle import EMPTY_ROOT
from biobank.audit.models import AuditHead
from biobank.config import Settings

LOG_KEY_FILE = "audit-log.key"
WITNESS_KEY_FILE = "witness.key"

_cache: dict[Path, tuple[int, NoteSigner]] = {}
_cache_lock = threading.Lock()


class AuditKeyError(RuntimeError):
    """A key file is missing or belongs to another name (another node, or a changed institution code)."""


def log_origin(settings: Settings) -> str:
    """This node's log origin, which is also the name of its checkpoint key."""
    return f"{settings.institution_code}.biobank-commons/audit"


def witness_name(settings: Settings) -> str:
    """The key name under which this node cosigns other logs' checkpoints."""
    return f"{settings.institution_code}.biobank-commons/witness"


def key_dir(settings: Settings) -> Path:
    """Where the key files live (outside the database, inside the data directory)."""
    return settings.data_dir / "keys"


def _create(path: Path, name: str) -> None:
    """Write a new key under a temporary name and link it into place: readers never see half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    generate_key_file(temporary, name)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass  # another process created it first; keep theirs
    finally:
        temporary.unlink(missing_ok=True)


def ensure_key_files(settings: Settings) -> None:
    """Create the log and witness keys if they do not exist yet, and check their names."""
    directory = key_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    for filename, name in ((LOG_KEY_FILE, log_origin(settings)), (WITNESS_KEY_FILE, witness_name(settings))):
        path = directory / filename
        if not path.exists():
            _create(path, name)
        if _load(path).name != name:
            raise AuditKeyError(f"{path} holds the key of {_load(path).name!r}, but this node is {name!r}")


def initialise(session: Session, settings: Settings) -> None:
    """Create the key files and the log's head row (empty tree) once; safe to run again."""
    ensure_key_files(settings)
    if session.execute(select(AuditHead.id).where(AuditHead.id == 1)).scalar_one_or_none() is None:
        session.add(AuditHead(id=1, size=0, root=EMPTY_ROOT))
        session.flush()


def _load(path: Path) -> NoteSigner:
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise AuditKeyError(f"audit key {path} not found: run `biobank db upgrade` to create it") from None
    with _cache_lock:
        cached = _cache.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
    signer = load_signer(path)
    with _cache_lock:
        _cache[path] = (mtime, signer)
    return signer


def log_signer(settings: Settings) -> NoteSigner:
    """The key that signs this node's checkpoints."""
    return _load(key_dir(settings) / LOG_KEY_FILE)


def witness_signer(settings: Settings) -> NoteSigner:
    """The key with which this node cosigns the checkpoints of logs it witnesses."""
    return _load(key_dir(settings) / WITNESS_KEY_FILE)
