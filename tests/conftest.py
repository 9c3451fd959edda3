"""Shared fixtures: both databases, the Slack and Cloudinary emulators, and the app itself
running as a real process on a loopback port."""

from __future__ import annotations

import fcntl
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pillow_heif
import pytest
from sqlalchemy import text

from bot.config import Settings
from bot.services import Services
from bot.wiring import build_services
from storage import migrate
from storage.db import make_engine
from storage.models import Base
from tests.fakes.cloudinary_api import CloudinaryEmulator
from tests.fakes.signed import SlackSender
from tests.fakes.slack_api import SlackEmulator
from tests.pg import PostgresServer, find_postgres

pytest_plugins = ["tests.live", "tests.web.browser"]

# The tests write HEIC files with Pillow (the app reads them through pillow_heif directly).
pillow_heif.register_heif_opener()

ROOT = Path(__file__).resolve().parent.parent
SIGNING_SECRET = "test-signing-secret-0123456789abcdef"
TEAM = "T0TEAM1"
POSTER = "UPOSTER"
ADMIN = "UADMIN"
MEMBER = "UMEMBER"
GUEST = "UGUEST"
PUBLIC_CHANNEL = "C0SHOOTS"
PRIVATE_CHANNEL = "G0SECRET"

_pg: tuple[PostgresServer | None, str] | None = None


def _postgres() -> tuple[PostgresServer | None, str]:
    global _pg  # noqa: PLW0603 - one server per test session
    if _pg is None:
        _pg = find_postgres()
    return _pg


def pytest_configure(config: pytest.Config) -> None:
    # An xdist worker uses the server its controller found (and, for a throwaway cluster,
    # started and will stop): one cluster per run, not one per worker.
    found = getattr(config, "workerinput", {}).get("imglib_postgres")
    if found is not None:
        global _pg  # noqa: PLW0603
        dsn, source = found
        _pg = (PostgresServer(dsn, source) if dsn else None, source)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller, for each worker it starts: hand it the server found here."""
    server, source = _postgres()
    node.workerinput["imglib_postgres"] = (server and server.admin_dsn, source)


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_report_header(config: pytest.Config) -> str:
    server, source = _postgres()
    if server is None:
        return f"PostgreSQL: NONE - Postgres tests will be SKIPPED ({source})"
    return f"PostgreSQL: {source}"


@dataclass
class Tracked:
    """Tests that need something the machine may lack (a PostgreSQL server, a browser): skipped
    without it, with one loud line; under the `require` variable (CI) that is a failure. Under
    xdist the controller counts every worker's reports, and decides."""

    keyword: str  # the marker
    require: str  # the environment variable that makes skipping them a failure
    hint: str
    absent_fails: bool  # under `require`, a run with none of them at all fails too
    reason: Callable[[Tracked], str | None] = lambda tracked: "; ".join(tracked.skip_reasons)
    outcomes: dict[str, int] = field(
        default_factory=lambda: {"passed": 0, "skipped": 0, "failed": 0}
    )
    skip_reasons: list[str] = field(default_factory=list)

    def record(self, report: pytest.TestReport) -> None:
        if self.keyword in report.keywords and (report.when == "call" or report.skipped):
            self.outcomes[report.outcome] = self.outcomes.get(report.outcome, 0) + 1
            if report.skipped and isinstance(report.longrepr, tuple):
                reason = str(report.longrepr[2]).removeprefix("Skipped: ")
                if reason not in self.skip_reasons:
                    self.skip_reasons.append(reason)

    def missing(self) -> bool:
        seen = any(self.outcomes.values())
        return bool(self.outcomes["skipped"]) or (
            not self.outcomes["passed"] and (seen or self.absent_fails)
        )


def _postgres_skip_reason(tracked: Tracked) -> str | None:
    # No server: that is why. A server, and still skipped (the chaos soak needs initdb to
    # start a cluster of its own): the tests' own reasons.
    server, reason = _pg or (None, "")
    if server is None and reason:
        return reason
    return "; ".join(tracked.skip_reasons) or None


TRACKED = [
    Tracked(
        "postgres",
        "REQUIRE_POSTGRES",
        "Set TEST_DATABASE_URL to run them.",
        absent_fails=True,
        reason=_postgres_skip_reason,
    ),
    # tests/web/browser.py marks every test that uses its `chromium` fixture.
    Tracked(
        "browser",
        "REQUIRE_BROWSER",
        "They need Debian's chromium (apt-get install chromium) and npm.",
        absent_fails=False,
    ),
]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for tracked in TRACKED:
        tracked.record(report)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for tracked in TRACKED:
        skipped = tracked.outcomes["skipped"]
        if skipped and (reason := tracked.reason(tracked)):
            terminalreporter.write_line(
                f"!!! {tracked.keyword.upper()} TESTS SKIPPED ({skipped}): {reason}. "
                f"{tracked.hint}",
                red=True,
                bold=True,
            )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _pg is not None and _pg[0] is not None:
        _pg[0].close()  # this process's databases (and the cluster it started)
    if _is_xdist_worker(session.config):
        return  # the controller sees every worker's reports and decides below
    # CI sets REQUIRE_POSTGRES (REQUIRE_BROWSER): a run whose Postgres (browser) tests were
    # skipped fails; so does one with no Postgres test at all, or browser tests none of which ran.
    for tracked in TRACKED:
        if os.environ.get(tracked.require) and session.testscollected and tracked.missing():
            sys.stderr.write(
                f"\n{tracked.require}: {tracked.keyword} tests did not all run "
                f"({tracked.outcomes})\n"
            )
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    server, reason = _postgres()
    if server is None:
        message = f"PostgreSQL tests cannot run: {reason}"
        if os.environ.get("REQUIRE_POSTGRES"):
            pytest.fail(message + " (REQUIRE_POSTGRES is set, so this is a failure)")
        pytest.skip(message)
    return server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    url = postgres_server.create_database()
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


def _truncate(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def empty_postgres_url(postgres_url: str) -> str:
    """The session's Postgres database, emptied for this test."""
    _truncate(postgres_url)
    return postgres_url


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite file, made once per session: each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite") / "migrated.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()  # the last connection closed: the WAL is checkpointed into the file
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: every storage and end-to-end test runs on both."""
    if request.param == "postgres":
        return str(request.getfixturevalue("empty_postgres_url"))
    path = tmp_path / "library.db"
    shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
    return f"sqlite:///{path}"


def workspace() -> SlackEmulator:
    """The workspace every test starts from (not started yet): an admin, a poster, a member,
    a guest and another app's bot; a public and a private channel the bot is in."""
    emulator = SlackEmulator(team_id=TEAM, team_name="Acme Marketing")
    emulator.add_user(ADMIN, "ana", real_name="Ana Admin", is_admin=True)
    emulator.add_user(POSTER, "pat", real_name="Pat Photographer")
    emulator.add_user(MEMBER, "max", real_name="Max Member")
    emulator.add_user(GUEST, "gil", real_name="Gil Guest", is_restricted=True)
    emulator.add_user("UOTHERBOT", "otherbot", real_name="Another Bot", is_bot=True)
    emulator.add_channel(
        PUBLIC_CHANNEL, "marketing-shoots", members=[ADMIN, POSTER, MEMBER, "UBOT"]
    )
    emulator.add_channel(
        PRIVATE_CHANNEL, "launch-secret", is_private=True, members=[ADMIN, POSTER, "UBOT"]
    )
    return emulator


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with workspace() as emulator:
        yield emulator


@pytest.fixture
def cloudinary() -> Iterator[CloudinaryEmulator]:
    with CloudinaryEmulator().start() as emulator:
        yield emulator


class FakeClock:
    """Tests move time explicitly instead of sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        from datetime import timedelta

        self.now += timedelta(**delta)


def app_env(
    *,
    database_url: str,
    slack: SlackEmulator | None,
    media_dir: Path,
    cloudinary: CloudinaryEmulator | None = None,
    socket_mode: bool = False,
    port: int | None = None,
) -> dict[str, str]:
    """The environment a real deployment would have, pointed at the emulators."""
    env = {
        "DATABASE_URL": database_url,
        "MEDIA_DIR": str(media_dir),
        "PORT": str(port or free_port()),
        "LOG_LEVEL": "INFO",
    }
    if slack is not None:
        env["SLACK_BOT_TOKEN"] = slack.bot_token
        env["SLACK_API_URL"] = slack.api_url
        env["SLACK_ADMIN_IDS"] = ADMIN
        if socket_mode:
            env["SLACK_APP_TOKEN"] = slack.app_token
        else:
            env["SLACK_SIGNING_SECRET"] = SIGNING_SECRET
    if cloudinary is not None:
        env["CLOUDINARY_URL"] = cloudinary.cloudinary_url
    return env


def make_services(
    env: dict[str, str],
    *,
    clock: Callable[[], datetime] | None = None,
    watch: bool | str = False,
) -> Services:
    """The app's object graph for `env`; with `watch`, #marketing-shoots (or the channel id
    `watch` names) is watched, as an admin's `/images watch` leaves it."""
    settings = Settings.from_env(env, dotenv=False)
    services = build_services(settings, clock=clock or FakeClock())
    if watch:
        from bot import admin

        admin.watch(
            services.factory,
            team_id=TEAM,
            channel_id=watch if isinstance(watch, str) else PUBLIC_CHANNEL,
            category_name=None,
            actor_id=ADMIN,
            now=services.clock(),
        )
    return services


# Ports for processes the tests start, which bind them a second or so later. Below the
# ephemeral range (Linux: 32768-60999), so the kernel never hands one to an emulator binding
# port 0 or to a client connection meanwhile; a lock file, held for the next 32 choices,
# keeps parallel workers (and other test runs on the machine) from choosing the same one.
PORT_RANGE = range(20000, 32000)
_PORT_LOCKS = Path(tempfile.gettempdir()) / f"imglib-test-ports-{os.getuid()}"
_port_locks_held: list[int] = []


def free_port() -> int:
    _PORT_LOCKS.mkdir(exist_ok=True)
    start = random.randrange(len(PORT_RANGE))
    for n in range(len(PORT_RANGE)):
        port = PORT_RANGE[(start + n) % len(PORT_RANGE)]
        fd = os.open(_PORT_LOCKS / str(port), os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with socket.socket() as s:
                s.bind(("0.0.0.0", port))  # noqa: S104 - where the app binds
        except OSError:
            os.close(fd)
            continue
        _port_locks_held.append(fd)
        if len(_port_locks_held) > 32:  # long bound by its app (and gone with its test)
            os.close(_port_locks_held.pop(0))
        return port
    raise RuntimeError(f"no free port in {PORT_RANGE}")


@dataclass
class AppProcess:
    """The app as a separate OS process, the way it runs in production."""

    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    port: int = field(init=False)

    def __post_init__(self) -> None:
        self.port = int(self.env["PORT"])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait_for: str = "/healthz", timeout: float = 30.0) -> AppProcess:
        """Start the process and wait until `wait_for` answers 200 on its port."""
        self.spawn()
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"app exited early:\n{self.logs()}")
            try:
                with urllib.request.urlopen(self.url + wait_for, timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"app did not answer {wait_for} in {timeout}s:\n{self.logs()}")

    def spawn(self) -> AppProcess:
        """Start the process without waiting for it (a worker serves no HTTP to wait on)."""
        full_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CLOUDINARY"))
        }
        full_env.update(self.env)
        full_env["PYTHONUNBUFFERED"] = "1"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", *self.command],
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def sender(self) -> SlackSender:
        return SlackSender(self.url + "/slack/events", SIGNING_SECRET)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def kill(self) -> None:
        """SIGKILL the whole process group: no cleanup, like a crashed dyno."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def run_app(tmp_path: Path) -> Iterator[object]:
    """Factory: run_app(env, command=("serve",)) starts the app and kills it after the test."""
    started: list[AppProcess] = []

    def start(env: dict[str, str], *, command: tuple[str, ...] = ("serve",)) -> AppProcess:
        app = AppProcess(list(command), env, tmp_path / f"app-{len(started)}.log")
        started.append(app)
        return app.start()

    yield start
    for app in started:
        app.kill()  # the test is over: a graceful stop costs ~2 s (tests of it call stop())
