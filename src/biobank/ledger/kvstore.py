"""A key-value store for py-evm on one SQLite file: writes are buffered in memory and reach the
file only in `commit()`, in ONE SQLite transaction together with the caller's own rows (the
embedded chain's block, transaction and log index). py-evm's `AtomicDB` batches are not
crash-atomic by themselves (a block touches many batches); this buffer makes the whole block the
unit of durability: a crash before the commit leaves the file at the previous block."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from eth.db.backends.base import BaseDB

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""

# a marker for a key deleted in the pending buffer (py-evm rarely deletes; the trie is append-only)
_DELETED = None


class SqliteKV(BaseDB):
    """py-evm `BaseDB` over the `kv` table of an SQLite file, with a per-block write buffer."""

    def __init__(self, path: Path | str, *, durable: bool = True) -> None:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so one block is exactly one transaction
        self.path = Path(path)
        self.conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed block survives a power cut, not only a process crash
        self.conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self.conn.executescript(_SCHEMA)
        self._pending: dict[bytes, bytes | None] = {}

    # --- BaseDB ---------------------------------------------------------------------------
    def __getitem__(self, key: bytes) -> bytes:
        if key in self._pending:
            value = self._pending[key]
            if value is _DELETED:
                raise KeyError(key)
            return value
        row = self.conn.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return bytes(row[0])

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._pending[bytes(key)] = bytes(value)

    def __delitem__(self, key: bytes) -> None:
        if not self._exists(key):
            raise KeyError(key)
        self._pending[bytes(key)] = _DELETED

    def _exists(self, key: bytes) -> bool:
        if key in self._pending:
            return self._pending[key] is not _DELETED
        return self.conn.execute("SELECT 1 FROM kv WHERE k = ?", (key,)).fetchone() is not None

    # --- the write buffer -------------------------------------------------------------------
    @property
    def pending_count(self) -> int:
        """Keys written (or deleted) since the last commit."""
        return len(self._pending)

    def commit(self, extra: Callable[[sqlite3.Connection], None] | None = None) -> None:
        """Write the buffered keys and whatever `extra` writes in one SQLite transaction."""
        puts = [(k, v) for k, v in self._pending.items() if v is not _DELETED]
        deletes = [(k,) for k, v in self._pending.items() if v is _DELETED]
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.executemany("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", puts)
            if deletes:
                self.conn.executemany("DELETE FROM kv WHERE k = ?", deletes)
            if extra is not None:
                extra(self.conn)
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self._pending.clear()

    def discard(self) -> None:
        """Forget the buffered writes (the block that produced them failed)."""
        self._pending.clear()

    # --- metadata -----------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        """A committed metadata value."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        """Close the connection; buffered writes are dropped."""
        self._pending.clear()
        self.conn.close()
