"""`Idempotency-Key` on POST /tasks (draft-ietf-httpapi-idempotency-key-header): its syntax, the
request fingerprint it is bound to, and the SQL that claims, records, replays and purges keys.

A key is claimed by inserting it (primary key): of concurrent requests with one key exactly one
inserts and creates the task in the same transaction; the others wait for that commit and replay
its 201. A key older than KEY_LIFETIME is taken over as if new, and purged in the background
(at most once per PURGE_INTERVAL per process, in batches).
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import msgspec
from taskflow_core.models import IDEMPOTENCY_KEY_HOURS, IDEMPOTENCY_KEY_MAX
from taskflow_core.problems import ValidationFailed

from tasks_api.schemas import TaskCreate

HEADER = "Idempotency-Key"
LIFETIME_HOURS = IDEMPOTENCY_KEY_HOURS
KEY_LIFETIME = timedelta(hours=LIFETIME_HOURS)
PURGE_INTERVAL = 3600.0  # seconds between two purges of one process
PURGE_BATCH = 5000
_LIFETIME_SQL = f"interval '{IDEMPOTENCY_KEY_HOURS} hours'"

# An RFC 8941 sf-string ("..." of printable ASCII, \" and \\ escaped), as the draft defines the
# field; a bare run of visible ASCII without quotes, commas or semicolons names the same key.
# Either holds 1-255 characters (an escape pair counts as the one it stands for).
_QUOTED = rf'"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\]){{1,{IDEMPOTENCY_KEY_MAX}}})"'
_UNQUOTED = rf"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]{{1,{IDEMPOTENCY_KEY_MAX}}}"
KEY_PATTERN = rf"^(?:{_QUOTED}|{_UNQUOTED})$"  # what the OpenAPI document says
_SF_STRING = re.compile(_QUOTED)
_BARE = re.compile(_UNQUOTED)
_ENCODER = msgspec.json.Encoder(order="sorted")

CLAIM = (
    "INSERT INTO idempotency_keys (key, fingerprint) VALUES ($1, $2) "
    "ON CONFLICT (key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, created_at = now(), "
    "task_id = NULL, etag = NULL, body = NULL "
    f"WHERE idempotency_keys.created_at <= now() - {_LIFETIME_SQL} RETURNING key"
)
RECORD = "UPDATE idempotency_keys SET task_id = $2, etag = $3, body = $4 WHERE key = $1"
PRIOR = "SELECT fingerprint, task_id, etag, body FROM idempotency_keys WHERE key = $1"
PURGE = (
    "DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys "
    f"WHERE created_at <= now() - {_LIFETIME_SQL} LIMIT {PURGE_BATCH})"
)


def parse_key(values: list[str]) -> str | None:
    """The key of the header's values (None: no header); 400 naming the header otherwise."""
    if not values:
        return None
    if len(values) > 1:
        raise ValidationFailed(HEADER, "must be given once")
    value = values[0].strip()
    if quoted := _SF_STRING.fullmatch(value):
        return re.sub(r"\\(.)", r"\1", quoted.group(1))
    if _BARE.fullmatch(value):
        return value
    raise ValidationFailed(
        HEADER,
        f"must be a structured-field string of 1-{IDEMPOTENCY_KEY_MAX} printable ASCII "
        'characters, e.g. "8e03978e-40d5-43e8-bc93-6894a57f9324"',
    )


def fingerprint(data: TaskCreate) -> str:
    """sha256 of the decoded body, fields sorted: the same task asked for the same way."""
    return hashlib.sha256(_ENCODER.encode(data)).hexdigest()
