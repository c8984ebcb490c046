"""taskflow_core: what both APIs and the migrate command share (infrastructure only).

plugin.py          TaskflowPlugin: wires an API (pool, services, cache, errors, probes, telemetry)
settings/          environment settings by concern: database, cache, server, logging
engine.py          database connections: the request pool (asyncpg) and SQLAlchemy engines
models.py          ORM models of the shared schema (migrated by alembic/versions)
cache.py           generation-keyed cache-aside over Redis (+ cache_breaker, cache_metrics)
problems.py        RFC 9457 problem details and the one exception mapper
probes.py          /health and /ready
metrics.py         Prometheus request metrics and /metrics
request_observer.py  the one middleware feeding request metrics and the access log
access_log.py      one JSON line per request, written directly
tracing.py         OpenTelemetry traces
logs.py            the one logging setup (JSON lines)
server.py          runs an API under granian (one worker process)
schema_version.py  where a database stands against this image's migrations; the lock key
migrate_command.py `taskflow-migrate` (initContainers); demo_seed.py its demo data
"""
