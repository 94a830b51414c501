"""The ``floopy`` command: ``serve``, ``store``, ``logs``, ``dashboard``, ``cache stats`` /
``cache clear``, ``keys create`` and ``settings check``.

``serve`` validates the settings before starting anything, so a bad setting stops the start
with exit status 2 and a message naming it. With the request log on, it starts the log store
process first and stops it last (``floopy.logstore.supervisor``). Its options are exported
as ``FLOOPY_*`` variables because granian's workers load the settings again on their own, and
must load the same ones (command line > environment > settings module > defaults).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pprint
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from floopy import __version__
from floopy.keys import DevKey, api_key_entry, ensure_dev_key, mint_key
from floopy.observability.journal import JOURNAL_DIR
from floopy.observability.store import EMBEDDED_DIR
from floopy.settings import Settings, SettingsError, load_settings, unknown_env_variables
from floopy.settings.display import mask_url, masked_settings

APP_TARGET = "floopy.app:app"
DEV_ADMIN = "admin"
EXIT_INVALID = 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        status: int = args.handler(args)
    except SettingsError as exc:
        print(f"floopy: invalid setting: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:  # output piped into `head`: nothing left to say
        return 1
    except OSError as exc:  # DATA_DIR not writable, port in use, ...
        print(f"floopy: {exc}", file=sys.stderr)
        return 1
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="floopy", description="Floopy AI gateway.")
    parser.add_argument("--version", action="version", version=f"floopy {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    _add_serve(commands)
    _add_store(commands)
    _add_keys(commands)
    _add_settings(commands)
    _add_logs(commands)
    _add_cache(commands)
    _add_dashboard(commands)
    return parser


def _add_settings_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--settings",
        metavar="MODULE_OR_FILE",
        help="settings module (dotted name or path to a .py file); env FLOOPY_SETTINGS",
    )


def _add_serve(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the gateway")
    _add_settings_option(serve)
    serve.add_argument("--host", help="address to listen on; env FLOOPY_HOST")
    serve.add_argument("--port", type=int, help="port to listen on; env FLOOPY_PORT")
    serve.add_argument("--workers", type=int, help="worker processes; env FLOOPY_WORKERS")
    serve.set_defaults(handler=_serve)


def _add_keys(commands: Any) -> None:
    keys = commands.add_parser("keys", help="gateway API keys")
    actions = keys.add_subparsers(title="actions", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="mint a key and print its API_KEYS entry")
    create.add_argument("--organization", default="default", help="default: %(default)s")
    create.add_argument("--project", help="the key's default project")
    create.add_argument("--locked", action="store_true", help="lock the key to --project")
    create.add_argument("--routing-rule", help="name of a ROUTING_RULES entry")
    create.add_argument("--name", help="a label for people")
    create.set_defaults(handler=_keys_create)


def _add_settings(commands: Any) -> None:
    settings = commands.add_parser("settings", help="inspect the settings")
    actions = settings.add_subparsers(title="actions", required=True, metavar="ACTION")
    check = actions.add_parser("check", help="validate and print the effective settings")
    _add_settings_option(check)
    check.set_defaults(handler=_settings_check)


# --- serve ---------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    os.environ.update(_option_env(args))
    settings = load_settings()
    dev_key = None if settings.api_keys else ensure_dev_key(settings.data_dir)
    for line in startup_lines(settings, dev_key):
        print(line)
    for warning in unknown_env_variables(settings):
        print(f"warning: {warning}", file=sys.stderr)
    sys.stdout.flush()  # before granian forks, so no worker inherits unwritten output
    supervisor = None
    if settings.logging_enabled:
        from floopy.logstore.supervisor import StoreSupervisor

        supervisor = StoreSupervisor(dict(os.environ), _say)
        supervisor.start()
    try:
        _run_granian(settings)  # returns once every worker has stopped
    finally:
        if supervisor is not None:
            supervisor.stop()  # last: the workers' final rows are in their journals
    return 0


def _say(line: str) -> None:
    print(line, flush=True)


def _option_env(args: argparse.Namespace) -> dict[str, str]:
    """Command-line options as the FLOOPY_* variables the settings loader reads."""
    env: dict[str, str] = {}
    if args.settings:
        env["FLOOPY_SETTINGS"] = _absolute_if_path(args.settings)
    for option in ("host", "port", "workers"):
        value = getattr(args, option, None)
        if value is not None:
            env[f"FLOOPY_{option.upper()}"] = str(value)
    return env


def _absolute_if_path(spec: str) -> str:
    # Workers must find a settings file even if one changes directory; module names stay.
    if spec.endswith(".py") or "/" in spec or os.sep in spec:
        return str(Path(spec).resolve())
    return spec


def startup_lines(settings: Settings, dev_key: DevKey | None) -> list[str]:
    """What ``floopy serve`` prints before the server starts."""
    return [
        f"floopy {__version__}",
        f"listening on http://{_host_for_url(settings.host)}:{settings.port}",
        f"workers: {settings.workers}",
        f"settings: {settings.source}",
        *_store_lines(settings),
        *_provider_lines(settings),
        *_key_lines(settings, dev_key),
        *_dashboard_lines(settings, dev_key is not None),
    ]


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _store_lines(settings: Settings) -> list[str]:
    data_dir = Path(settings.data_dir).resolve()
    logs = f"embedded ClickHouse (chdb) at {data_dir / EMBEDDED_DIR}"
    if not settings.logging_enabled:
        logs = "off (LOGGING_ENABLED=False)"
    elif settings.clickhouse_url:
        logs = mask_url(settings.clickhouse_url)
    shared = "Redis at " + mask_url(settings.redis_url) if settings.redis_url else "in process"
    return [
        f"logs: {logs}; journals at {data_dir / JOURNAL_DIR}",
        f"rate limits and circuit breakers: {shared}",
    ]


def _provider_lines(settings: Settings) -> list[str]:
    lines = [f"providers: {', '.join(settings.providers)}"]
    for name in settings.unavailable_providers():
        variable = settings.providers[name].api_key_env
        lines.append(
            f"  {name}: unavailable, {variable} is not set; its models are answered by echo"
        )
    return lines


def _key_lines(settings: Settings, dev_key: DevKey | None) -> list[str]:
    if dev_key is None:
        return [f"api keys: {len(settings.api_keys)} in API_KEYS"]
    if dev_key.key is not None:
        return [
            f"development key: {dev_key.key}",
            f"  shown only now; its hash is in {dev_key.path}. Set API_KEYS for production.",
        ]
    return [
        f"development key: its hash is in {dev_key.path}; "
        "delete that file and restart to mint a new key"
    ]


def _dashboard_lines(settings: Settings, development: bool) -> list[str]:
    """Where the dashboard is and how to log in. On a development start (no API_KEYS) with
    no dashboard user yet, an admin is made and its password shown once, like the key."""
    if not (settings.logging_enabled and settings.dashboard_enabled):
        return ["dashboard: off"]
    from floopy.dashboard.users import UserStore

    url = f"http://{_host_for_url(settings.host)}:{settings.dashboard_port}"
    if settings.dashboard_tls_cert:
        url = "https" + url.removeprefix("http")
    users = UserStore(settings.data_dir)
    if users.users():
        return [f"dashboard: {url} (log in as a user of {users.path})"]
    if not development:
        return [
            f"dashboard: {url}; no user yet: floopy dashboard users create NAME --admin "
            "(or --organization ORG)"
        ]
    password = secrets.token_urlsafe(12)
    users.create(DEV_ADMIN, password, (), admin=True)
    return [
        f"dashboard: {url}, log in as {DEV_ADMIN} with password {password}",
        "  shown only now; floopy dashboard users create makes more users (or a new password)",
    ]


def _run_granian(settings: Settings) -> None:
    # Imported here: `floopy keys create` and `--help` need none of the server.
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    server = Granian(
        APP_TARGET,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.RSGI,
        workers=settings.workers,
        loop=Loops.auto if sys.platform == "win32" else Loops.uvloop,
        http=HTTPModes.auto,
        log_level=LogLevels(settings.log_level),
        log_access=settings.access_log,
        http1_settings=HTTP1Settings(header_read_timeout=int(settings.header_read_timeout * 1000)),
        # A worker that dies (a crash, a kill) is started again; the others serve meanwhile.
        respawn_failed_workers=True,
        respawn_interval=1.0,
        # A stop lets requests in flight finish, for this long at most.
        workers_kill_timeout=settings.shutdown_grace_period,
    )
    server.serve()  # handles SIGINT/SIGTERM: stops the workers gracefully, then returns


# --- store and logs ------------------------------------------------------------------------


def _add_store(commands: Any) -> None:
    store = commands.add_parser(
        "store",
        help="run the log store process alone (floopy serve starts one itself)",
    )
    _add_settings_option(store)
    store.add_argument("--supervisor", type=int, help=argparse.SUPPRESS)
    store.add_argument("--restarts", type=int, default=0, help=argparse.SUPPRESS)
    store.set_defaults(handler=_store)


def _store(args: argparse.Namespace) -> int:
    from floopy.logstore.process import run_store  # clickhouse-connect loads slowly

    settings = load_settings({**os.environ, **_option_env(args)})
    if not settings.logging_enabled:
        print("floopy: the request log is off (LOGGING_ENABLED=False)", file=sys.stderr)
        return EXIT_INVALID
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(message)s")
    return run_store(settings, supervisor=args.supervisor, restarts=args.restarts)


def _add_logs(commands: Any) -> None:
    logs = commands.add_parser("logs", help="the request log")
    actions = logs.add_subparsers(title="actions", required=True, metavar="ACTION")
    tail = actions.add_parser("tail", help="follow new requests live, one line each")
    _add_settings_option(tail)
    tail.add_argument("--user", help="only this user id")
    tail.add_argument("--session", help="only this session id")
    tail.add_argument("--model", help="only this model (requested or served)")
    tail.add_argument("--status", type=int, help="only this HTTP status")
    tail.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    tail.set_defaults(handler=_logs_tail)
    query = actions.add_parser("query", help="run one read-only SELECT on the log")
    _add_settings_option(query)
    query.add_argument(
        "sql", help='for example "SELECT model, count() FROM floopy.requests GROUP BY model"'
    )
    query.add_argument("--format", choices=("table", "jsonl"), default="table")
    query.set_defaults(handler=_logs_query)
    replay = actions.add_parser(
        "replay", help="carry the journals into ClickHouse now, with progress (store stopped)"
    )
    _add_settings_option(replay)
    replay.set_defaults(handler=_logs_replay)


def _logs_tail(args: argparse.Namespace) -> int:
    from floopy.logstore.commands import Tail, TailFilters, tail_command
    from floopy.logstore.reads import ChannelClient, ChannelError

    settings = load_settings({**os.environ, **_option_env(args)})
    filters = TailFilters(args.user, args.session, args.model, args.status)
    try:
        tail = Tail(ChannelClient(settings.data_dir), _database(settings), filters)
        return tail_command(tail, sys.stdout, interval=args.interval)
    except ChannelError as exc:
        print(f"floopy: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def _logs_query(args: argparse.Namespace) -> int:
    from floopy.logstore.commands import query_command
    from floopy.logstore.reads import ChannelClient, ChannelError

    settings = load_settings({**os.environ, **_option_env(args)})
    try:
        return query_command(ChannelClient(settings.data_dir), args.sql, args.format, sys.stdout)
    except ChannelError as exc:
        print(f"floopy: {exc}", file=sys.stderr)
        return 1


def _database(settings: Settings) -> str:
    from floopy.observability.store import LogStore

    return LogStore(settings.clickhouse_url, settings.data_dir).database


def _logs_replay(args: argparse.Namespace) -> int:
    from floopy.observability.tool import replay_command  # clickhouse-connect loads slowly

    settings = load_settings({**os.environ, **_option_env(args)})
    return replay_command(settings, sys.stdout, sys.stderr)


def _add_cache(commands: Any) -> None:
    cache = commands.add_parser("cache", help="the response cache")
    actions = cache.add_subparsers(title="actions", required=True, metavar="ACTION")
    stats = actions.add_parser("stats", help="entries and bytes the cache holds")
    _add_settings_option(stats)
    stats.set_defaults(handler=_cache_stats)
    clear = actions.add_parser("clear", help="drop cached answers: all, or one tenant's")
    _add_settings_option(clear)
    clear.add_argument("--organization", help="only this organization's answers")
    clear.add_argument("--project", help="only this project's (needs --organization)")
    clear.set_defaults(handler=_cache_clear)


def _cache_stats(args: argparse.Namespace) -> int:
    from floopy.pipeline.cache.tool import stats_command

    settings = load_settings({**os.environ, **_option_env(args)})
    return stats_command(settings, sys.stdout, sys.stderr)


def _cache_clear(args: argparse.Namespace) -> int:
    from floopy.pipeline.cache.tool import clear_command

    if args.project and not args.organization:
        print("floopy: --project needs --organization", file=sys.stderr)
        return EXIT_INVALID
    settings = load_settings({**os.environ, **_option_env(args)})
    return clear_command(settings, args.organization, args.project, sys.stdout, sys.stderr)


# --- dashboard ----------------------------------------------------------------------------


def _add_dashboard(commands: Any) -> None:
    dashboard = commands.add_parser(
        "dashboard",
        help="serve the dashboard beside a ClickHouse server; manage its users",
        description="Without an action: serve the dashboard on HOST:DASHBOARD_PORT, reading "
        "the ClickHouse server of CLICKHOUSE_URL (with the embedded store, the log store "
        "process serves it).",
    )
    _add_settings_option(dashboard)
    dashboard.set_defaults(handler=_dashboard_serve)
    actions = dashboard.add_subparsers(title="actions", metavar="ACTION")
    users = actions.add_parser("users", help="dashboard users")
    user_actions = users.add_subparsers(title="actions", required=True, metavar="ACTION")
    create = user_actions.add_parser("create", help="add a user, or set a user's password")
    _add_settings_option(create)
    create.add_argument("name")
    create.add_argument(
        "--organization",
        action="append",
        default=[],
        help="an organization whose requests the user sees (repeat for more)",
    )
    create.add_argument("--admin", action="store_true", help="sees every organization")
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    create.set_defaults(handler=_dashboard_users_create)
    listing = user_actions.add_parser("list", help="list the users")
    _add_settings_option(listing)
    listing.set_defaults(handler=_dashboard_users_list)
    delete = user_actions.add_parser("delete", help="remove a user")
    _add_settings_option(delete)
    delete.add_argument("name")
    delete.set_defaults(handler=_dashboard_users_delete)


def _dashboard_serve(args: argparse.Namespace) -> int:
    from floopy.dashboard import build
    from floopy.logstore.reads import Limits, Reader
    from floopy.observability.store import LogStore

    settings = load_settings({**os.environ, **_option_env(args)})
    if settings.clickhouse_url is None:
        print(
            "floopy: with the embedded store the log store process serves the dashboard "
            "(floopy serve, or floopy store); floopy dashboard needs CLICKHOUSE_URL",
            file=sys.stderr,
        )
        return EXIT_INVALID
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(message)s")
    store = LogStore(settings.clickhouse_url, settings.data_dir)
    reader = Reader(store, Limits(settings.log_query_timeout, settings.log_query_max_rows))
    server = build(reader, settings)
    print(f"dashboard on {server.url}, reading {store.describe()}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        reader.close()
        store.close()
    return 0


def _dashboard_users_create(args: argparse.Namespace) -> int:
    from floopy.dashboard.users import UserError, UserStore

    settings = load_settings({**os.environ, **_option_env(args)})
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        import getpass

        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("floopy: the passwords differ", file=sys.stderr)
            return EXIT_INVALID
    try:
        user = UserStore(settings.data_dir).create(
            args.name, password, tuple(args.organization), args.admin
        )
    except UserError as exc:
        print(f"floopy: {exc}", file=sys.stderr)
        return EXIT_INVALID
    sees = "every organization" if user.admin else ", ".join(user.organizations)
    print(f"dashboard user {user.name} saved; sees {sees}")
    return 0


def _dashboard_users_list(args: argparse.Namespace) -> int:
    from floopy.dashboard.users import UserStore

    settings = load_settings({**os.environ, **_option_env(args)})
    for user in UserStore(settings.data_dir).users().values():
        sees = "admin" if user.admin else ", ".join(user.organizations)
        print(f"{user.name}\t{sees}")
    return 0


def _dashboard_users_delete(args: argparse.Namespace) -> int:
    from floopy.dashboard.users import UserStore

    settings = load_settings({**os.environ, **_option_env(args)})
    if not UserStore(settings.data_dir).delete(args.name):
        print(f"floopy: no dashboard user {args.name}", file=sys.stderr)
        return 1
    print(f"dashboard user {args.name} deleted")
    return 0


# --- keys create ---------------------------------------------------------------------------


def _keys_create(args: argparse.Namespace) -> int:
    if args.locked and not args.project:
        print("floopy: --locked needs --project", file=sys.stderr)
        return EXIT_INVALID
    key = mint_key()
    entry = api_key_entry(
        key, args.organization, args.project, args.locked, args.routing_rule, args.name
    )
    print(key)
    print("# Add this entry to API_KEYS in your settings module; the key is not stored anywhere.")
    print(_python_literal(entry) + ",")
    return 0


def _python_literal(entry: dict[str, Any]) -> str:
    def literal(value: Any) -> str:
        return repr(value) if isinstance(value, bool) else json.dumps(value)

    return "{" + ", ".join(f"{json.dumps(k)}: {literal(v)}" for k, v in entry.items()) + "}"


# --- settings check ------------------------------------------------------------------------


def _settings_check(args: argparse.Namespace) -> int:
    settings = load_settings({**os.environ, **_option_env(args)})
    print(f"# settings OK, from {settings.source}; secrets are masked")
    for name, value in masked_settings(settings).items():
        print(_assignment(name, value))
    unavailable = settings.unavailable_providers()
    if unavailable:
        print(f"# unavailable (key not set), answered by echo: {', '.join(unavailable)}")
    for warning in unknown_env_variables(settings):
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _assignment(name: str, value: Any) -> str:
    prefix = f"{name} = "
    text = pprint.pformat(value, sort_dicts=False, width=100 - len(prefix))
    return prefix + text.replace("\n", "\n" + " " * len(prefix))
