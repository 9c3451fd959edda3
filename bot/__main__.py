"""Command line: `python -m bot run | serve | socket | worker | migrate | ingest retry`.

`run` is what `make run` calls: migrate, then Socket Mode when an app token is set, otherwise
the HTTP server (which also answers when Slack is not configured yet, to say what to set).
"""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading
from datetime import datetime
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from bot.config import ConfigError, Settings
from bot.logs import RedactingGunicornLogger, configure_logging

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger("bot")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="migrate, then serve (HTTP) or connect (Socket Mode)")
    sub.add_parser("serve", help="HTTP server under gunicorn on $PORT")
    sub.add_parser("socket", help="Socket Mode (needs SLACK_APP_TOKEN)")
    worker = sub.add_parser("worker", help="the scheduler: retries, reminders, sweeps")
    worker.add_argument("--once", action="store_true", help="run every job once and exit")
    sub.add_parser("migrate", help="upgrade the database schema to the latest version")
    link = sub.add_parser("login-link", help="print a one-time sign-in link for the web library")
    link.add_argument("--user", default="owner", help='a Slack user id, or "owner" (no Slack)')
    link.add_argument("--team", help="the person's workspace (installed in several: T0...)")
    token = sub.add_parser("token", help="API tokens: `token create` prints a new one, once")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="a personal access token for the JSON API")
    create.add_argument("--user", required=True, help='a Slack user id, or "owner" (no Slack)')
    create.add_argument("--name", required=True, help="what the token is for (shown in lists)")
    create.add_argument("--days", type=int, default=None, help="expire after this many days")
    create.add_argument("--team", help="the person's workspace (installed in several: T0...)")
    ingest = sub.add_parser("ingest", help="the ingest queue: `ingest retry` queues failed jobs")
    ingest_sub = ingest.add_subparsers(dest="ingest_command", required=True)
    retry = ingest_sub.add_parser("retry", help="queue failed ingest jobs again, due now")
    retry.add_argument("--team", default=None, help="only this workspace's (a team id)")
    retry.add_argument(
        "--failed-since",
        type=_moment,
        default=None,
        help="only jobs that failed at or after this time (ISO 8601, UTC when no offset)",
    )
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(
        settings.log_level,
        secrets=settings.secret_values,
        json_lines=settings.log_format == "json",
    )

    if args.command == "migrate":
        return migrate(settings)
    if args.command == "login-link":
        return login_link(settings, args.user, args.team)
    if args.command == "token":
        return create_token(settings, args.user, args.name, args.days, args.team)
    if args.command == "ingest":
        return retry_ingests(settings, team_id=args.team, failed_since=args.failed_since)
    if args.command == "run":
        if migrate(settings):
            return 1
        return socket_mode(settings) if settings.slack_mode == "socket" else serve(settings)
    if args.command == "serve":
        return serve(settings)
    if args.command == "socket":
        return socket_mode(settings)
    return run_worker(settings, once=args.once)


def migrate(settings: Settings) -> int:
    from storage import migrate as migrations
    from storage.db import make_engine

    engine = make_engine(settings.database_url)
    try:
        migrations.upgrade(engine)
    finally:
        engine.dispose()
    log.info("database schema is up to date")
    return 0


def _person_named(
    settings: Settings, services: Services, user: str, team: str | None
) -> tuple[str, str] | None:
    """(team, user) for `user` ("owner", or a Slack user id Slack knows in `team`, by
    default the bot token's workspace or the only one the app is installed in), or None,
    said."""
    from bot.local import LOCAL_OWNER, LOCAL_TEAM

    if user == "owner":
        if settings.slack_mode != "unconfigured":
            print("With Slack connected, name a person: --user U012ABCDEF", file=sys.stderr)
            return None
        return LOCAL_TEAM, LOCAL_OWNER
    from bot.wiring import gateway_of
    from bot.workspaces import only_workspace

    gateway = gateway_of(services)
    team_id = team or gateway.team_id() or only_workspace(services.factory)
    if not team_id or not gateway.token_for(team_id):
        print(
            "Name the person's workspace: --team T012ABCDEF (one it is installed in).",
            file=sys.stderr,
        )
        return None
    if services.directory.person(team_id, user).deleted:
        print(f"Slack does not know {user} in {team_id}.", file=sys.stderr)
        return None
    return team_id, user


def create_token(
    settings: Settings, user: str, name: str, days: int | None, team: str | None
) -> int:
    """Print a new personal access token for `user`, once (scripts, CI, the local owner)."""
    from datetime import timedelta

    from bot import tokens
    from bot.wiring import build_services

    if days is not None and days < 1:
        print("--days must be 1 or more.", file=sys.stderr)
        return 2
    services = build_services(settings)
    try:
        who = _person_named(settings, services, user, team)
        if who is None:
            return 2
        now = services.clock()
        try:
            _, token = tokens.create(
                services.factory,
                team_id=who[0],
                user_id=who[1],
                name=name,
                now=now,
                expires_at=now + timedelta(days=days) if days else None,
            )
        except tokens.TokenError as exc:
            print(str(exc), file=sys.stderr)
            return 2
    finally:
        services.shutdown()
    print(token, flush=True)
    print(
        "This is the only time the token is shown. Send it as `Authorization: Bearer <token>`.",
        file=sys.stderr,
    )
    return 0


def _moment(raw: str) -> datetime:
    from datetime import UTC

    moment = datetime.fromisoformat(raw)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def retry_ingests(settings: Settings, *, team_id: str | None, failed_since: datetime | None) -> int:
    """Queue failed ingest jobs again; a worker (or the web process) takes them within a
    second or two. Prints how many, so a script can tell."""
    from bot.ingest_queue import retry_failed
    from bot.wiring import build_services

    services = build_services(settings)
    try:
        count = retry_failed(
            services.factory, now=services.clock(), team_id=team_id, failed_since=failed_since
        )
    finally:
        services.shutdown()
    print(f"queued {count} failed ingest job(s) again", flush=True)
    return 0


def login_link(settings: Settings, user: str, team: str | None = None) -> int:
    """Print a one-time link that signs `user` in to the web library (15 minutes, once)."""
    from bot.signin import create_link_token
    from bot.wiring import build_services

    services = build_services(settings)
    try:
        who = _person_named(settings, services, user, team)
        if who is None:
            return 2
        token = create_link_token(
            services.factory, team_id=who[0], user_id=who[1], now=services.clock()
        )
    finally:
        services.shutdown()
    base = settings.public_base_url or f"http://localhost:{settings.port}"
    link = f"{base}/login/link?token={token}"
    print(f"Sign in to the image library (works once, for 15 minutes): {link}", flush=True)
    return 0


def _build(settings: Settings) -> tuple[Any, Any]:
    """Services and the WSGI app for this process."""
    from bot.wiring import build_services, build_web

    services = build_services(settings)
    web = build_web(settings, services)
    if settings.slack_mode == "unconfigured":
        log.warning(
            "Slack is not connected: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (HTTP) "
            "or SLACK_APP_TOKEN (Socket Mode). The web library works for its local owner."
        )
    return services, web


def _freeze_startup_objects() -> None:
    """Keep the objects startup made (modules, the app, its pools and caches: about 130,000)
    out of the garbage collector's full collections, which walk every tracked object while
    holding the GIL: 84-95 ms each on a 2-core host during bench/ack_latency.py, every
    request in flight waiting; 3-9 ms once frozen. Call once the process is ready."""
    gc.freeze()


def _start_in_process_scheduler(services: Any) -> None:
    # With the embedded database one process does everything; with Postgres the Procfile's
    # worker runs the scheduler (jobs claim rows, so running it in both would still be safe).
    if services.settings.is_embedded_database:
        from bot.scheduler import build_scheduler

        build_scheduler(services, blocking=False).start()
    else:
        # The worker takes what this process leaves queued; this process still picks up,
        # one at a time, what no worker takes (none running, or all of them busy).
        services.start_ingest_polling(web=True)


def serve(settings: Settings) -> int:
    """HTTP under gunicorn (gthread): Slack events, commands, actions and options."""
    from gunicorn.app.base import BaseApplication

    from bot import process_metrics

    metrics_dir = process_metrics.directory_for_this_start()

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            embedded = settings.is_embedded_database
            self.cfg.set("bind", f"0.0.0.0:{settings.port}")
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("workers", 1 if embedded else _web_concurrency())
            self.cfg.set("threads", 16)
            self.cfg.set("timeout", 60)
            self.cfg.set("graceful_timeout", 20)
            self.cfg.set("accesslog", None)
            self.cfg.set("loglevel", settings.log_level.lower())
            # gunicorn's own loggers have their own handlers: redact those too.
            self.cfg.set("logger_class", RedactingGunicornLogger)
            # A worker told to stop (a deploy, a scale-down) finishes the ingests and App
            # Home refreshes it holds before exiting; the rest wait in the database.
            self.cfg.set("worker_exit", lambda _arbiter, _worker: _shutdown_services())
            # /metrics sums every worker's files; a dead worker's gauges are dropped.
            self.cfg.set("child_exit", lambda _arbiter, worker: process_metrics.gone(worker.pid))
            if metrics_dir is not None:
                self.cfg.set("on_exit", lambda _arbiter: process_metrics.remove(metrics_dir))

        def load(self) -> Any:
            services, web = _build(settings)
            _running.append(services)
            _start_in_process_scheduler(services)
            _freeze_startup_objects()
            return web

    log.info("serving HTTP on port %s (Slack: %s)", settings.port, settings.slack_mode)
    if settings.slack_mode == "unconfigured":
        login_link(settings, "owner")  # the newcomer's way in: one line, one click
    Server().run()
    return 0


_running: list[Any] = []  # the Services of this process, to shut down on exit


def _shutdown_services() -> None:
    while _running:
        _running.pop().shutdown()


def _web_concurrency() -> int:
    import os

    # One process with many threads by default: ingest is I/O bound and each process holds
    # its own decode budget (DECODE_MEMORY_MB), so processes multiply peak memory.
    raw = os.environ.get("WEB_CONCURRENCY", "1")
    return int(raw) if raw.isdigit() and int(raw) > 0 else 1


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def socket_mode(settings: Settings) -> int:
    """Socket Mode for Slack, plus the small HTTP server for /healthz and media links."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.wiring import build_slack_app

    if settings.slack_mode != "socket":
        log.error("Socket Mode needs SLACK_APP_TOKEN (xapp-...) and SLACK_BOT_TOKEN (xoxb-...)")
        return 2
    services, web = _build(settings)
    _start_in_process_scheduler(services)
    httpd = make_server(
        "0.0.0.0",  # noqa: S104 - health checks and media links
        settings.port,
        web,
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    threading.Thread(target=httpd.serve_forever, name="http", daemon=True).start()
    bolt_app = web.extensions["bolt"] or build_slack_app(settings, services)
    handler = SocketModeHandler(bolt_app, app_token=settings.slack_app_token)
    _freeze_startup_objects()
    log.info("connecting to Slack in Socket Mode; HTTP on port %s", settings.port)
    handler.start()
    return 0


def run_worker(settings: Settings, *, once: bool) -> int:
    from bot.scheduler import build_scheduler, run_all_once
    from bot.wiring import build_services

    services = build_services(settings)
    if once:
        log.info("ran jobs once: %s", run_all_once(services))
        services.shutdown()
        return 0
    log.info("worker started")
    scheduler = build_scheduler(services, blocking=True)
    _freeze_startup_objects()

    def stop(_signum: int, _frame: Any) -> None:
        scheduler.shutdown(wait=False)

    # SIGTERM (a deploy, a scale-down): stop scheduling, finish the ingests under way.
    signal.signal(signal.SIGTERM, stop)
    scheduler.start()
    services.shutdown()
    log.info("worker stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
