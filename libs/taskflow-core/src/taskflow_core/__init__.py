"""taskflow_core: what both APIs and the migrate command share (infrastructure only).

plugin.py          TaskflowPlugin: wires an API (engine, cache, errors, probes, metrics, traces)
settings/          environment settings by concern: database, cache, server, logging
engine.py          the one SQLAlchemy engine builder (APIs, migrate command, alembic)
models.py          ORM models of the shared schema (migrated by alembic/versions)
cache.py           generation-keyed cache-aside over Redis (+ cache_breaker, cache_metrics)
problems.py        RFC 9457 problem details and the one exception mapper
probes.py          /health and /ready
metrics.py         Prometheus request metrics and /metrics
tracing.py         OpenTelemetry traces
logs.py            the one logging setup (JSON lines)
server.py          runs an API under uvicorn
schema_version.py  where a database stands against this image's migrations; the lock key
migrate_command.py `taskflow-migrate` (initContainers); demo_seed.py its demo data
"""
