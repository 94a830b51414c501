"""The log, after the pipeline: request records, trace spans and circuit-breaker events to
ClickHouse.

record      the rows, built from a finished request (redaction applied)
batch       one batch worker per sink: bounded queue, a thread inserting in batches
store       clickhouse-connect: embedded chDB under DATA_DIR, or a server (CLICKHOUSE_URL)
migrations  the schema as numbered, idempotent SQL files, applied at start-up
fallback    the per-process JSONL spool (native writer) for rows ClickHouse did not take
replay      the spool back into ClickHouse, one replayer per sink across processes
metrics     counters for GET /metrics
service     RequestLog: what a worker process holds and calls

It imports no pipeline stage and no provider: it reads the finished request context only.
"""

from floopy.observability.service import RequestLog

__all__ = ["RequestLog"]
