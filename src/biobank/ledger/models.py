"""Local state of the ledger: the outbox of chain writes, deployed contracts, anchors sent."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from biobank.kit.db import Base, UTCDateTime, utcnow


class OutboxStatus(StrEnum):
    PENDING = "pending"  # waiting for the publisher (or for its next attempt)
    SENDING = "sending"  # claimed by a publisher; signed tx hash stored before broadcast
    SENT = "sent"  # included in a block with status 1
    FAILED = "failed"  # the chain rejected it for good (revert); needs an operator


class LedgerOutbox(Base):
    """One chain write, enqueued in the transaction of the change it reports; published after commit.

    `dedupe_key` makes enqueueing idempotent; `tx_hash` is stored before broadcast so a publisher that
    dies mid-send finds the receipt on retry instead of sending twice.
    """

    __tablename__ = "ledger_outbox"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_ledger_outbox_dedupe"),
        Index("ix_ledger_outbox_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    dedupe_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[OutboxStatus] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    signer: Mapped[str] = mapped_column(String(42), default="")
    nonce: Mapped[int | None] = mapped_column(BigInteger)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    raw_tx: Mapped[str | None] = mapped_column(Text)  # the signed transaction, re-sent as is on retry
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LedgerContract(Base):
    """A contract this node uses, per chain: found by deployment or read from the registry."""

    __tablename__ = "ledger_contracts"
    __table_args__ = (UniqueConstraint("chain_id", "name", name="uq_ledger_contract_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(42))
    code_hash: Mapped[str] = mapped_column(String(66))
    deployed_block: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LedgerAnchor(Base):
    """An audit checkpoint this node put on chain (size, root), with the block that holds it."""

    __tablename__ = "ledger_anchors"
    __table_args__ = (UniqueConstraint("tree_size", name="uq_ledger_anchor_size"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tree_size: Mapped[int] = mapped_column(BigInteger)
    root_hash: Mapped[str] = mapped_column(String(64))  # hex
    outbox_id: Mapped[int | None] = mapped_column(Integer)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    checkpoint_at: Mapped[datetime] = mapped_column(UTCDateTime())
    anchored_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LedgerChainEvent(Base):
    """A consortium contract event, mirrored from the chain so pages never wait on it (any institution's)."""

    __tablename__ = "ledger_chain_events"
    __table_args__ = (
        UniqueConstraint("chain_id", "tx_hash", "log_index", name="uq_ledger_chain_event"),
        Index("ix_ledger_chain_events_event", "chain_id", "event", "block_number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger)
    log_index: Mapped[int] = mapped_column(Integer)
    tx_hash: Mapped[str] = mapped_column(String(66))
    contract: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(64))
    args: Mapped[dict[str, Any]] = mapped_column(JSON)
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LedgerSyncState(Base):
    """How far this node has mirrored a chain's events."""

    __tablename__ = "ledger_sync_state"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    last_block: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
