"""What is running: `taskflow_build_info{service, version, revision}` and the schema revision
the API found in its database (`taskflow_schema_revision_info{service, revision}`), both 1.

The version is the service's package version; the revision is TASKFLOW_REVISION, set at image
build (a build argument, the commit; Skaffold passes its image tag) and "unknown" without it.
The migrate initContainer cannot be scraped, so the API reports the revision it finds: read once
at start and again by every readiness check.
"""

from __future__ import annotations

from importlib import metadata

from prometheus_client import Gauge

BUILD_INFO = "taskflow_build_info"
SCHEMA_REVISION = "taskflow_schema_revision_info"
UNKNOWN = "unknown"

_build = Gauge(BUILD_INFO, "1, labelled with the service's version and revision",
               ["service", "version", "revision"])  # fmt: skip
_schema = Gauge(SCHEMA_REVISION, "1, labelled with the Alembic revision the service found",
                ["service", "revision"])  # fmt: skip
_schema_found: dict[str, str] = {}


def package_version(service: str) -> str:
    try:
        return metadata.version(service)
    except metadata.PackageNotFoundError:
        return UNKNOWN


def record_build(service: str, revision: str) -> None:
    _build.labels(service, package_version(service), revision).set(1)


def record_schema_revision(service: str, revision: str) -> None:
    """The one revision series of `service` names `revision` (a migration moves it)."""
    previous = _schema_found.get(service)
    if previous == revision:
        return
    if previous is not None:
        _schema.remove(service, previous)
    _schema.labels(service, revision).set(1)
    _schema_found[service] = revision
