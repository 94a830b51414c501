"""The dashboard: Overview, Requests (with a request's detail), Sessions, Users and
Properties pages, their JSON API, login and logout (docs/dashboard.md).

Served on ``DASHBOARD_PORT``, never the gateway's port, by the process that reads the log:
the log store process (``floopy serve``/``floopy store``), or ``floopy dashboard`` beside a
ClickHouse server. Queries go through the read channel's ``Reader``: read-only clients with
limits, every filter value a query parameter.

``filters``  the query string to SQL conditions and bound parameters
``queries``  one query function per page (rollups where they answer, raw rows otherwise)
``conversation``  a logged request and response read as messages
``users``, ``access``  dashboard users (scrypt hashes), sessions, login throttling
``server``  HTTP: pages, API, export, static files, the security headers
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from floopy.dashboard.server import DashboardServer
    from floopy.logstore.reads import Reader
    from floopy.settings import Settings


def build(reader: Reader, settings: Settings) -> DashboardServer:
    """The dashboard over ``reader``, bound to ``HOST:DASHBOARD_PORT`` (not yet serving).
    Raises OSError when the port cannot be had."""
    from floopy.dashboard.queries import Pages
    from floopy.dashboard.server import Config, DashboardServer
    from floopy.dashboard.users import UserStore

    config = Config(
        host=settings.host,
        port=settings.dashboard_port,
        session_ttl=settings.dashboard_session_ttl,
        export_max_rows=settings.dashboard_export_max_rows,
        tls_cert=settings.dashboard_tls_cert,
        tls_key=settings.dashboard_tls_key,
    )
    pages = Pages(partial(reader.query, check=False), reader.store.database)
    return DashboardServer(pages, UserStore(settings.data_dir), config)
