"""The ORM models of the one shared schema; alembic/versions migrates the database to them.

Tables: tasks, task_counts (exact per-bucket counts), cache_generation (part of every cache
key), seed_marker (demo data seeded once), idempotency_keys (POST /tasks retries). Rules
behind them: docs/architecture.md.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    Identity,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TITLE_MAX = 255
DESCRIPTION_MAX = 10_000
IDEMPOTENCY_KEY_MAX = 255
IDEMPOTENCY_KEY_HOURS = 24


class Priority(enum.StrEnum):
    # Declaration order is the sort order: PostgreSQL enums compare by it (low < medium < high).
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


priority_type = Enum(
    Priority,
    name="task_priority",
    values_callable=lambda members: [member.value for member in members],
    validate_strings=True,
)


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    description: Mapped[str | None] = mapped_column(Text)
    completed: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    priority: Mapped[Priority] = mapped_column(priority_type, server_default=Priority.MEDIUM.value)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Bumped by a trigger on every update; the ETag is built from it.
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))

    __table_args__ = (
        CheckConstraint("char_length(title) >= 1", name="title_not_empty"),
        CheckConstraint(
            f"description IS NULL OR char_length(description) <= {DESCRIPTION_MAX}",
            name="description_length",
        ),
        # Keyset indexes: each filter shape of the default sort reads only one page of rows.
        Index("ix_tasks_created_at_id", "created_at", "id"),
        Index("ix_tasks_priority_created_at_id", "priority", "created_at", "id"),
        Index("ix_tasks_completed_created_at_id", "completed", "created_at", "id"),
        Index(
            "ix_tasks_priority_completed_created_at_id",
            "priority",
            "completed",
            "created_at",
            "id",
        ),
        Index("ix_tasks_priority_id", "priority", "id"),
    )


class TaskCount(Base):
    """Per-(priority, completed) counts kept exact by a trigger in the writing transaction."""

    __tablename__ = "task_counts"

    priority: Mapped[Priority] = mapped_column(priority_type, primary_key=True)
    completed: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    total: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class CacheGeneration(Base):
    """One row whose value every write bumps in its own transaction; part of every cache key."""

    __tablename__ = "cache_generation"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


class SeedMarker(Base):
    """Written in the seeding transaction, so emptying `tasks` later never re-seeds."""

    __tablename__ = "seed_marker"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    rows: Mapped[int] = mapped_column(Integer)
    seeded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class IdempotencyKey(Base):
    """The Idempotency-Key of a POST /tasks, its request's fingerprint and the 201 it got.

    The primary key makes concurrent requests with one key create one task; rows older than
    IDEMPOTENCY_KEY_HOURS are ignored, then purged (tasks_api.idempotency).
    """

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(IDEMPOTENCY_KEY_MAX), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha256 hex of the decoded body
    # Set in the transaction that inserts the key: the task created and its 201 response.
    task_id: Mapped[int | None] = mapped_column(BigInteger)
    etag: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)
