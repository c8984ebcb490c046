"""idempotency_keys: the Idempotency-Key of each POST /tasks and the response it got

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Expand only: one new table and its index. An API image one revision behind never reads or
writes them and keeps serving on this schema (its /ready reports the schema `ahead`).
The key is the primary key, so of two concurrent requests with one key exactly one inserts;
the other waits for its commit and replays its response. Keys older than 24 h are ignored,
taken over by a new request with the same key, and deleted by tasks-api's hourly purge
(created_at index).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=True),
        sa.Column("etag", sa.String(64), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")  # drops its index too
