"""The log, after the pipeline: request records, trace spans and circuit-breaker events to
ClickHouse.

record      the rows, built from a finished request (redaction applied)
journal     each worker's JSONL files (native writer), where every row is written first
service     RequestLog: what a worker process holds and calls (rows onto its journal)
carrier     the journals into ClickHouse, in batches, each row once (the log store's round)
store       clickhouse-connect: embedded chDB under DATA_DIR, or a server (CLICKHOUSE_URL)
migrations  the schema as numbered, idempotent SQL files, applied by the log store
metrics     counters for GET /metrics
status      the log store process's status file, read by the workers
tool        ``floopy logs replay``

The log store process that runs the carrier is ``floopy.logstore``. This package imports no
pipeline stage and no provider: it reads the finished request context only.
"""

from floopy.observability.service import RequestLog

__all__ = ["RequestLog"]
