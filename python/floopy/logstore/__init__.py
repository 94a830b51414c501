"""The log store process: the one process that owns the log database.

process     the process itself (``floopy store``, or started by ``floopy serve``): carries
            every worker's journal into ClickHouse, applies the migrations, serves reads
supervisor  ``floopy serve``'s side: starts it beside the granian workers, restarts it with
            backoff if it dies, stops it last
reads       the read channel: read-only, bounded SQL over loopback with a credential, used by
            ``floopy logs query``, ``floopy logs tail`` and the dashboard
XX
            /metrics

Workers never open the database (``floopy.observability`` writes their journals; its
``status`` module is the status file this process keeps fresh for their /readyz and /metrics).
"""
