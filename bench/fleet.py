"""A fleet of app processes on one Postgres database and one set of emulators, driven over
HTTP exactly as Slack drives it, and the exactly-once counts read when it is over: the shared
harness of the scale-out run (bench/scale.py) and the chaos soak (bench/soak.py).

    from bench.fleet import (Expected, Fleet, FleetSampler, exactly_once, make_images,
                             postgres_database, postgres_server, start_emulators, watch_channel)

    server, _ = postgres_server(None)                    # tests.pg.find_postgres, or a URL
    db = postgres_database(server)                       # throwaway, migrated; db.cleanup()
    slack, cloudinary, file_ids = start_emulators(make_images(40))
    fleet = Fleet(database_url=db.url, slack=slack, cloudinary=cloudinary, work=tmp,
                  webs=2, workers=2)
    watch_channel(fleet.env)                             # the bench channel (CHANNEL) watched
    with fleet, FleetSampler(fleet) as rss:              # started; SIGTERM on exit
        post = fleet.sender.post(slack, file_ids[:3])    # a message of 3 images and its 3
                                                         # file_shared events, round-robin
        fleet.sender.deliver(envelope, retries=1)        # and Slack's retry on another process
        fleet.kill("web1")                               # kill -9; the sender skips it
        fleet.restart("web1")                            # same port, same environment
        view_id = fleet.sender.open_modal(prompt_click(slack, action_id=..., value=...))
        fleet.sender.interactive(slack.view_submission(user=..., view_id=view_id, values=...))
        fleet.sender.at_once(card_click(slack, ...), ["web0", "web1"])  # a double click
        db.states(); db.query("SELECT ...")              # read-only looks while it runs
    counts = exactly_once(db.url, slack, Expected(file_ids=..., messages=...), cloudinary)
    counts.print()                                       # `name: value` lines
    sys.exit(finish(started, counts.problems()))         # 1 when any count is not zero

Also: `fleet.sender.stats` / `figures()` (requests, non-200, unanswered, ack p50/p99 per web
process), `fleet.log_times(name, needle)` (when a process logged a line), `fleet.tail_logs()`,
`rss.peak(name)` / `rss.growth(name, since=warm)`, `percentile`.

Processes are named "web0".."web{N-1}" (`python -m bot serve`: gunicorn, HTTP mode, each on
its own port) and "worker0".."worker{M-1}" (`python -m bot worker`), all with the environment
a deployment has (tests.conftest.app_env): SLACK_API_URL at the Slack emulator, CLOUDINARY_URL
with `upload_prefix` at the Cloudinary emulator, the same DATABASE_URL. Each writes its log to
`work/<name>.log` (appended across restarts).

What a figure or count means is in bench/README.md ("Scale-out (issue 12)"). Only 127.0.0.1
is ever contacted (and the Postgres server given, on loopback here).
"""

from __future__ import annotations

import contextlib
import http.client
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ingest import ADMIN, POSTER, TEAM, BenchError, TreeSampler, info  # noqa: E402

CHANNEL = "C0FLEET"
APPROVERS = ("UAPPROVA", "UAPPROVB")  # two workspace members who can approve
IMAGE_SIZE = (640, 480)
START_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 10.0
SLACK_RETRIES = 3  # Slack delivers an unanswered event at most 3 more times
WORKER_READY = "worker started"  # the worker's log line once its scheduler runs


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100)
    return ordered[int(rank) - 1]


# --------------------------------------------------------------------------------------------
# Images, emulators, databases


def make_images(count: int, *, first_seed: int = 1000) -> list[bytes]:
    """Small real JPEGs (640 x 480, EXIF), one distinct picture (and sha256) per seed."""
    from tests.images import jpeg

    started = time.perf_counter()
    images = [
        jpeg(
            *IMAGE_SIZE, seed=first_seed + n, taken=f"2026:11:03 14:{n // 60 % 60:02d}:{n % 60:02d}"
        )
        for n in range(count)
    ]
    info(
        f"generated {count} JPEGs of {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]} "
        f"({sum(map(len, images)) / max(count, 1) / 1024:.0f} KB each on average) "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return images


def start_slack(images: list[bytes], *, channel: str = CHANNEL) -> tuple[Any, list[str]]:
    """The Slack emulator, started: an admin, the poster, the approvers, `channel` with all of
    them and the bot, and one hosted file per image (ids F00000000, F00000001, ...)."""
    from tests.fakes.slack_api import SlackEmulator

    slack = SlackEmulator(team_id=TEAM, team_name="Bench Marketing")
    slack.add_user(ADMIN, "ana", real_name="Ana Admin", is_admin=True)
    slack.add_user(POSTER, "pat", real_name="Pat Photographer")
    for n, approver in enumerate(APPROVERS):
        slack.add_user(approver, f"approver{n}", real_name=f"Approver {n}")
    slack.add_channel(
        channel, f"bench-{channel.lower()}", members=[ADMIN, POSTER, *APPROVERS, "UBOT"]
    )
    file_ids = []
    for n, content in enumerate(images):
        file_id = f"F{n:08d}"
        slack.add_file(
            file_id,
            name=f"shoot-{n:04d}.jpg",
            content=content,
            mimetype="image/jpeg",
            filetype="jpg",
            user=POSTER,
        )
        file_ids.append(file_id)
    return slack.start(), file_ids


def start_emulators(images: list[bytes], *, channel: str = CHANNEL) -> tuple[Any, Any, list[str]]:
    """(Slack emulator, Cloudinary emulator, file ids), both started; stop() each after."""
    from tests.fakes.cloudinary_api import CloudinaryEmulator

    slack, file_ids = start_slack(images, channel=channel)
    return slack, CloudinaryEmulator().start(), file_ids


@dataclass
class Database:
    kind: str  # "sqlite" or "postgres"
    url: str  # SQLAlchemy URL
    describe: str
    cleanup: Callable[[], None] = lambda: None

    def states(self) -> Counter[str]:
        """Ingest jobs per state, read without disturbing the app (no write lock on SQLite)."""
        return Counter(dict(self.query("SELECT state, COUNT(*) FROM ingest_jobs GROUP BY state")))

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of a read-only statement, on a connection of its own (plain sqlite3 or
        psycopg2: the app's engine would BEGIN IMMEDIATE on SQLite)."""
        if self.kind == "sqlite":
            import sqlite3

            path = self.url.removeprefix("sqlite:///")
            connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
            try:
                return list(connection.execute(sql))
            finally:
                connection.close()
        import psycopg2

        dsn = self.url.replace("postgresql+psycopg2://", "postgresql://")
        connection = psycopg2.connect(dsn, connect_timeout=5)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return list(cursor.fetchall())
        finally:
            connection.close()

    def analyze(self) -> None:
        """Gather the planner's statistics, as autovacuum does on Postgres within a minute
        of a table's first 50 rows (SQLite gathers none unless told)."""
        if self.kind != "postgres":
            return
        import psycopg2

        dsn = self.url.replace("postgresql+psycopg2://", "postgresql://")
        connection = psycopg2.connect(dsn, connect_timeout=5)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        finally:
            connection.close()


def migrate(url: str) -> None:
    from storage import migrate as migrations
    from storage.db import make_engine

    engine = make_engine(url)
    try:
        migrations.upgrade(engine)
    finally:
        engine.dispose()


def postgres_database(server: Any) -> Database:
    """A throwaway migrated database on `server` (tests.pg.PostgresServer); cleanup() drops
    it (and stops the server, when it is a throwaway cluster)."""
    url = server.create_database()
    name = server.databases[-1]
    try:
        migrate(url)
    except Exception:
        server.close()
        raise
    host = url.split("@", 1)[-1].rsplit("/", 1)[0]
    return Database("postgres", url, f"PostgreSQL database {name} at {host}", server.close)


def postgres_server(url: str | None) -> tuple[Any, str]:
    """(tests.pg.PostgresServer, where it came from) for a `--postgres URL` given on the
    command line, or the one tests.pg.find_postgres finds (None and why, when none)."""
    from tests.pg import PostgresServer, find_postgres

    if not url:
        return find_postgres()
    dsn = url.replace("postgresql+psycopg2://", "postgresql://").replace(
        "postgres://", "postgresql://", 1
    )
    return PostgresServer(dsn, "--postgres"), "--postgres"


Figures = dict[str, float]


def on_both_databases(
    work: Path, postgres_url: str | None, run: Callable[[str, str], tuple[list[str], Figures]]
) -> tuple[list[str], Figures]:
    """`run(url, prefix)` on a migrated SQLite file in `work` (prefix "sqlite_"), then on a
    throwaway migrated database of the Postgres server at `postgres_url` (or the one
    tests.pg finds; prefix ""): the problems and figures of both."""
    sqlite_url = f"sqlite:///{work / 'bench.db'}"
    migrate(sqlite_url)
    problems, figures = run(sqlite_url, "sqlite_")
    server, where = postgres_server(postgres_url)
    if server is None:
        return [*problems, f"no Postgres server: {where}"], figures
    database = postgres_database(server)
    try:
        found, more = run(database.url, "")
    finally:
        database.cleanup()
    return problems + found, figures | more


def finish(started: float, problems: list[str]) -> int:
    """A bench's exit status: 1, with the problems on stderr, or 0 when there were none."""
    info(f"done in {time.perf_counter() - started:.1f} s")
    if problems:
        info("FAILED: " + "; ".join(problems))
        return 1
    return 0


def watch_channel(env: dict[str, str], channel: str = CHANNEL) -> None:
    """Have the app watch `channel`, as an admin's `/images watch` would (through the app's
    own code, before or while the fleet runs)."""
    from tests.conftest import make_services

    make_services(env, watch=channel).shutdown()


# --------------------------------------------------------------------------------------------
# The fleet


class Fleet:
    """`webs` web processes and `workers` workers, one database, one set of emulators.

    `fleet.env` is the environment every process shares (PORT aside); `extra_env` adds to it
    (e.g. INGEST_WORKERS). Processes start in order (webs, then workers) and `start()` returns
    once each web answers /healthz and each worker logged that its scheduler runs. `up(name)`
    says whether a process is meant to be running (killed ones are not, until restarted);
    `sender` is the one FleetSender, shared by every thread of the bench."""

    def __init__(
        self,
        *,
        database_url: str,
        slack: Any,
        work: Path,
        cloudinary: Any | None = None,
        webs: int = 2,
        workers: int = 2,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        from tests.conftest import AppProcess, app_env, free_port

        self.slack, self.work = slack, work
        self.env = app_env(
            database_url=database_url, slack=slack, media_dir=work / "media", cloudinary=cloudinary
        )
        self.env["PUBLIC_BASE_URL"] = ""  # a stray .env must not count
        if cloudinary is None:
            self.env["CLOUDINARY_URL"] = ""
        self.env.update(extra_env or {})
        self.processes: dict[str, Any] = {}
        for n in range(webs):
            env = {**self.env, "PORT": str(free_port())}
            self.processes[f"web{n}"] = AppProcess(["serve"], env, work / f"web{n}.log")
        for n in range(workers):
            self.processes[f"worker{n}"] = AppProcess(
                ["worker"], dict(self.env), work / f"worker{n}.log"
            )
        self._up: set[str] = set()
        self._lock = threading.Lock()
        self.kills: list[tuple[float, str]] = []  # (time.time(), name) of every kill -9
        self.sender = FleetSender(self)

    # -- names --------------------------------------------------------------------------------

    @property
    def webs(self) -> list[str]:
        return [n for n in self.processes if n.startswith("web")]

    @property
    def workers(self) -> list[str]:
        return [n for n in self.processes if n.startswith("worker")]

    def up(self, name: str) -> bool:
        with self._lock:
            return name in self._up

    def live_webs(self) -> list[str]:
        with self._lock:
            return [n for n in self.webs if n in self._up]

    def url(self, name: str) -> str:
        return str(self.processes[name].url)

    def pid(self, name: str) -> int | None:
        process = self.processes[name].process
        return None if process is None or process.poll() is not None else int(process.pid)

    # -- life ---------------------------------------------------------------------------------

    def start(self, names: Iterable[str] | None = None) -> Fleet:
        """Start `names` (default: all, webs first); BenchError with the log if one fails."""
        for name in names or list(self.processes):
            self._start_one(name)
        return self

    def _start_one(self, name: str) -> None:
        process = self.processes[name]
        try:
            if name.startswith("web"):
                process.start(timeout=START_TIMEOUT_S)
            else:
                seen = self._log_text(name).count(WORKER_READY)
                process.spawn()
                deadline = time.monotonic() + START_TIMEOUT_S
                while self._log_text(name).count(WORKER_READY) <= seen:
                    if process.process.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(f"{name} did not start:\n{process.logs()}")
                    time.sleep(0.1)
        except AssertionError as exc:
            raise BenchError(f"{name}: {exc}") from None
        with self._lock:
            self._up.add(name)

    def _log_text(self, name: str) -> str:
        path = self.processes[name].log_path
        return path.read_text(errors="replace") if path.is_file() else ""

    def kill(self, name: str) -> None:
        """kill -9 the process (gunicorn's master and its worker: the whole group), like a
        crashed dyno: no cleanup, requests in flight cut, leases left behind."""
        with self._lock:
            self._up.discard(name)
        self.kills.append((time.time(), name))
        self.processes[name].kill()

    def restart(self, name: str) -> None:
        """Start a killed (or stopped) process again, same port and environment."""
        self._start_one(name)

    def stop(self) -> None:
        """SIGTERM every process (a deploy's stop: in-flight work finishes), then wait."""
        with self._lock:
            self._up.clear()
        for process in self.processes.values():
            process.stop()

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def tail_logs(self, chars: int = 3000) -> None:
        """The end of every process's log on stderr (after a failure)."""
        for name in self.processes:
            text = self._log_text(name)
            if text:
                info(f"{name} log (tail):\n{text[-chars:]}")

    def log_times(self, name: str, needle: str) -> list[float]:
        """When (epoch seconds) `name` logged each line containing `needle`, over every run
        of it (the app's lines start with its local time, `2026-11-30 19:31:49,634`)."""
        from datetime import datetime

        times = []
        for line in self._log_text(name).splitlines():
            if needle in line:
                with contextlib.suppress(ValueError):
                    times.append(datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp())
        return times


# --------------------------------------------------------------------------------------------
# Sending, as Slack does


@dataclass(frozen=True)
class Delivered:
    """One HTTP delivery: to which process, what came back (status 0: no HTTP answer)."""

    web: str
    status: int
    elapsed_s: float
    body: bytes = b""
    error: str = ""


@dataclass
class WebStats:
    """What one web process was sent and answered."""

    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    refused: int = 0  # no HTTP answer (the process was down or died mid-request)
    latencies_ms: list[float] = field(default_factory=list)  # answered requests

    @property
    def non_200(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200)


@dataclass(frozen=True)
class Post:
    """One message posted: its envelope and the file_shared companions Slack sends with it."""

    envelope: dict[str, Any]
    file_ids: list[str]
    companions: list[dict[str, Any]]

    @property
    def ts(self) -> str:
        return str(self.envelope["event"]["ts"])


class FleetSender:
    """Signed requests to the fleet's web processes, round-robin over the live ones.

    Slack's own rules: an event not answered (connection refused or cut: a killed process) is
    delivered again, with `X-Slack-Retry-Num` counting up to SLACK_RETRIES and
    `X-Slack-Retry-Reason: http_error`, to the next live process; `deliver(..., retries=n)`
    sends n extra `http_timeout` retries on purpose, each to another process than the
    delivery before it. Interactions (clicks, modal submissions) are not retried: Slack shows
    the person an error instead, so an unanswered one comes back with status 0.

    Thread-safe. `stats[name]` counts every request per process."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self._next = 0
        self._lock = threading.Lock()
        self.stats: dict[str, WebStats] = defaultdict(WebStats)

    def next_web(self, *, not_: str | None = None, among: list[str] | None = None) -> str:
        """The next live web process in turn (of `among`, when given), other than `not_`
        when another is live."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            live = [n for n in self.fleet.live_webs() if among is None or n in among]
            if not_ is not None and len(live) > 1:
                live = [n for n in live if n != not_]
            if live:
                with self._lock:
                    self._next += 1
                    return live[self._next % len(live)]
            if time.monotonic() > deadline:
                raise BenchError("no web process is up")
            time.sleep(0.1)

    def post_to(
        self, web: str, body: str, content_type: str, headers: dict[str, str] | None = None
    ) -> Delivered:
        """One signed POST to `web`'s /slack/events (tests.fakes.signed.SlackSender)."""
        from tests.conftest import SIGNING_SECRET
        from tests.fakes.signed import SlackSender

        sender = SlackSender(self.fleet.url(web) + "/slack/events", SIGNING_SECRET)
        started = time.perf_counter()
        try:
            reply = sender.post(
                body, content_type=content_type, headers=headers, timeout=REQUEST_TIMEOUT_S
            )
        except (OSError, http.client.HTTPException) as exc:
            with self._lock:
                self.stats[web].sent += 1
                self.stats[web].refused += 1
            elapsed = time.perf_counter() - started
            return Delivered(web, 0, elapsed, error=f"{type(exc).__name__}: {exc}")
        with self._lock:
            stats = self.stats[web]
            stats.sent += 1
            stats.statuses[reply.status] += 1
            stats.latencies_ms.append(reply.elapsed * 1000)
        return Delivered(web, reply.status, reply.elapsed, reply.body)

    # -- events -------------------------------------------------------------------------------

    def deliver(
        self, envelope: dict[str, Any], *, retries: int = 0, among: list[str] | None = None
    ) -> list[Delivered]:
        """Deliver an event to the next live web (of `among`, when given), then `retries`
        deliberate `http_timeout` retries, each to another process than the one before.
        Every delivery not answered with a 2xx (a 404, a 500, a process killed) is followed
        by an `http_error` retry to another process, as Slack does, up to SLACK_RETRIES
        retries in all. Returns every delivery made, in order."""
        from tests.fakes.signed import encode_event, retry_headers

        body, content_type = encode_event(envelope)
        done: list[Delivered] = []
        web = self.next_web(among=among)
        while True:
            if done:
                reason = "http_error" if done[-1].status // 100 != 2 else "http_timeout"
                headers = retry_headers(len(done), reason)
            else:
                headers = {}
            done.append(self.post_to(web, body, content_type, headers))
            failed = done[-1].status // 100 != 2
            if len(done) > SLACK_RETRIES or not (failed or len(done) <= retries):
                return done
            web = self.next_web(not_=web, among=among)

    def post(self, slack: Any, file_ids: list[str], *, retries: int = 0) -> Post:
        """A message with `file_ids` in the bench channel, and the file_shared event Slack
        sends beside it for each file, each delivered (with `retries` retries) round-robin."""
        post = self.make_post(slack, file_ids)
        for envelope in [post.envelope, *post.companions]:
            self.deliver(envelope, retries=retries)
        return post

    @staticmethod
    def make_post(slack: Any, file_ids: list[str], *, channel: str = CHANNEL) -> Post:
        """The envelopes of a post of `file_ids` by the poster (not sent)."""
        envelope = slack.message_event(channel=channel, user=POSTER, files=file_ids)
        companions = [
            slack.file_shared_event(file_id, channel=channel, user=POSTER) for file_id in file_ids
        ]
        return Post(envelope, list(file_ids), companions)

    # -- interactions -------------------------------------------------------------------------

    def interactive(self, payload: dict[str, Any], *, via: str | None = None) -> Delivered:
        """A click or a modal submission, once (to `via`, or the next live web)."""
        from tests.fakes.signed import encode_interactive

        body, content_type = encode_interactive(payload)
        return self.post_to(via or self.next_web(), body, content_type)

    def at_once(self, payload: dict[str, Any], webs: list[str]) -> list[Delivered]:
        """The same interaction sent to each of `webs` at the same instant (a double click
        that two processes receive together): threads released by one barrier."""
        from tests.fakes.signed import encode_interactive

        body, content_type = encode_interactive(payload)
        barrier = threading.Barrier(len(webs))
        results: list[Delivered | None] = [None] * len(webs)

        def send(n: int) -> None:
            barrier.wait(timeout=REQUEST_TIMEOUT_S)
            results[n] = self.post_to(webs[n], body, content_type)

        threads = [threading.Thread(target=send, args=(n,)) for n in range(len(webs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(REQUEST_TIMEOUT_S * 2)
        return [r for r in results if r is not None]

    def open_modal(
        self, payload: dict[str, Any], *, via: str | None = None, timeout: float = 20.0
    ) -> str | None:
        """Click a button that opens a modal; the opened view's id (matched on the click's
        trigger_id), or None when the click was not answered 200 or no modal opened."""
        reply = self.interactive(payload, via=via)
        if reply.status != 200:
            return None
        trigger = payload["trigger_id"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for call in self.fleet.slack.calls_to("views.open"):
                response = call.response or {}
                if call.params.get("trigger_id") == trigger and response.get("ok"):
                    return str(response["view"]["id"])
            time.sleep(0.05)
        return None

    def figures(self) -> dict[str, float]:
        """Per web process: requests sent, answered non-200, unanswered, p50/p99 (ms)."""
        out: dict[str, float] = {}
        with self._lock:
            for name in sorted(self.stats):
                stats = self.stats[name]
                out[f"{name}_requests"] = stats.sent
                out[f"{name}_non_200"] = stats.non_200
                out[f"{name}_unanswered"] = stats.refused
                out[f"{name}_ack_p50_ms"] = percentile(stats.latencies_ms, 50)
                out[f"{name}_ack_p99_ms"] = percentile(stats.latencies_ms, 99)
        return out


def card_click(slack: Any, *, user: str, action_id: str, value: str) -> dict[str, Any]:
    """A `block_actions` payload for a click on a card the app DMed to `user`."""
    payload: dict[str, Any] = slack.block_action(user=user, action_id=action_id, value=value)
    payload["container"] = {"type": "message", "channel_id": f"D{user}", "message_ts": "1.1"}
    return payload


def prompt_click(
    slack: Any, *, action_id: str, value: str, channel: str = CHANNEL
) -> dict[str, Any]:
    """A `block_actions` payload for the poster's click on a button of their private prompt."""
    payload: dict[str, Any] = slack.block_action(
        user=POSTER, action_id=action_id, value=value, channel=channel, message_ts="1.1"
    )
    return payload


# --------------------------------------------------------------------------------------------
# Memory


class FleetSampler:
    """RSS of each process tree of the fleet (gunicorn's master with its worker counted
    together), every `every_s` seconds, for at most `limit_s` seconds. A restarted process
    starts a new incarnation: `growth(name)` compares the first and last samples of its last
    one (a kill -9 is not a leak)."""

    def __init__(self, fleet: Fleet, *, every_s: float = 1.0, limit_s: float = 3600.0) -> None:
        self._fleet, self._every_s, self._limit_s = fleet, every_s, limit_s
        self.samples: dict[str, list[tuple[float, int, int]]] = defaultdict(list)  # t, pid, rss
        self._trees: dict[int, TreeSampler] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet-rss", daemon=True)

    def sample(self) -> None:
        import psutil

        for name in self._fleet.processes:
            pid = self._fleet.pid(name)
            if pid is None:
                continue
            tree = self._trees.get(pid)
            if tree is None:
                with contextlib.suppress(psutil.Error):
                    tree = self._trees[pid] = TreeSampler(pid, limit_s=0)
            if tree is not None and (rss := tree.rss()):
                self.samples[name].append((time.time(), pid, rss))

    def _run(self) -> None:
        deadline = time.monotonic() + self._limit_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.sample()
            self._stop.wait(self._every_s)

    def peak(self, name: str) -> int:
        return max((rss for _, _, rss in self.samples[name]), default=0)

    def growth(self, name: str, *, since: float = 0.0) -> float:
        """Last sample over first, minus 1, of the process's last incarnation, from its first
        sample at or after `since` (epoch seconds: pass the end of a warm-up, since a process
        just started is still importing); nan when there is none."""
        series = self.samples[name]
        if not series:
            return float("nan")
        last_pid = series[-1][1]
        mine = [rss for t, pid, rss in series if pid == last_pid and t >= since]
        return mine[-1] / mine[0] - 1 if mine else float("nan")

    def __enter__(self) -> FleetSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# --------------------------------------------------------------------------------------------
# Exactly once: what the database and the emulators hold at the end


@dataclass(frozen=True)
class Expected:
    """What the bench did, to hold the outcome against.

    file_ids: every file posted (each must become exactly one stored image); messages: the
    posts made (each must get exactly one prompt); details: slack file id -> the title saved
    through the details modal; approved: slack file ids whose approval request had Approve
    clicked (by an approver, however many times, on however many processes)."""

    file_ids: list[str]
    messages: int
    details: dict[str, str] = field(default_factory=dict)
    approved: list[str] = field(default_factory=list)


@dataclass
class Counts:
    """Every count must be 0. `notes` explain the non-zero ones (and a few zero ones)."""

    images_lost: int = 0  # posted, not stored
    images_duplicated: int = 0  # more than one image row for one slack file id
    images_unexpected: int = 0  # image rows for files nobody posted
    ingested_twice: int = 0  # more than one "uploaded" audit row for one image
    uploads_twice: int = 0  # stored in Cloudinary more than once for one image
    jobs_stuck: int = 0  # neither stored nor failed at the end
    jobs_failed: int = 0
    prompts_missing: int = 0  # posts whose poster was never prompted (claimed and in Slack)
    prompts_extra: int = 0  # more posts prompted (in the database) than were made
    prompts_twice: int = 0  # the same images' prompt sent to Slack again
    details_lost: int = 0  # a saved title not on the image
    decisions_lost: int = 0  # Approve clicked, request not approved (or no vote recorded)
    decisions_duplicated: int = 0  # extra decision audit rows or settled lines in a thread
    cards_stale: int = 0  # an approver's card still offering Approve after the decision
    errors: Counter[str] = field(default_factory=Counter)  # "state: last_error" per job
    notes: list[str] = field(default_factory=list)

    def items(self) -> list[tuple[str, int]]:
        return [(k, v) for k, v in vars(self).items() if k not in ("errors", "notes")]

    def problems(self) -> list[str]:
        return [f"{name} {value}" for name, value in self.items() if value]

    def print(self) -> None:
        """The counts as `name: value` lines on stdout, the notes on stderr."""
        for name, value in self.items():
            print(f"{name}: {value}", flush=True)
        for note in self.notes:
            info(note)


def exactly_once(url: str, slack: Any, expected: Expected, cloudinary: Any = None) -> Counts:
    """Read the database and the emulators' records (after the fleet stopped, or settled)."""
    from sqlalchemy import func, select

    from storage.db import make_engine
    from storage.models import (
        ApprovalRequest,
        ApprovalVote,
        AuditEvent,
        Image,
        IngestJob,
        PostPrompt,
    )

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            images = connection.execute(
                select(
                    Image.id, Image.slack_file_id, Image.title, Image.channel_id, Image.message_ts
                )
            ).all()
            jobs = connection.execute(
                select(IngestJob.image_id, IngestJob.state, IngestJob.last_error)
            ).all()
            audits = connection.execute(
                select(AuditEvent.image_id, AuditEvent.action, func.count()).group_by(
                    AuditEvent.image_id, AuditEvent.action
                )
            ).all()
            requests = connection.execute(
                select(ApprovalRequest.id, ApprovalRequest.image_id, ApprovalRequest.state)
            ).all()
            votes = connection.execute(
                select(
                    ApprovalVote.request_id,
                    ApprovalVote.decision,
                    ApprovalVote.card_channel,
                    ApprovalVote.card_ts,
                )
            ).all()
            prompted = connection.execute(
                select(func.count())
                .select_from(PostPrompt)
                .where(PostPrompt.prompted_at.is_not(None))
            ).scalar_one()
    finally:
        engine.dispose()

    counts = Counts()
    per_file = Counter(row.slack_file_id for row in images)
    by_file = {row.slack_file_id: row for row in images}
    state_of = {row.image_id: row.state for row in jobs}
    wanted = set(expected.file_ids)
    stored = {row.slack_file_id for row in images if state_of.get(row.id) == "stored"}
    counts.images_lost = len(wanted - stored)
    counts.images_duplicated = sum(n - 1 for n in per_file.values() if n > 1)
    counts.images_unexpected = len(set(per_file) - wanted)
    uploaded = {image_id: n for image_id, action, n in audits if action == "uploaded"}
    counts.ingested_twice = sum(n - 1 for n in uploaded.values() if n > 1)
    counts.jobs_stuck = sum(1 for row in jobs if row.state not in ("stored", "failed"))
    counts.jobs_failed = sum(1 for row in jobs if row.state == "failed")
    counts.errors = Counter(f"{row.state}: {row.last_error}" for row in jobs if row.last_error)
    if counts.errors:
        counts.notes.append(
            "ingest errors: " + "; ".join(f"{e} x{n}" for e, n in counts.errors.items())
        )
    if cloudinary is not None:
        per_public_id = Counter(upload.public_id for upload in cloudinary.stored)
        counts.uploads_twice = sum(n - 1 for n in per_public_id.values() if n > 1)

    # Claimed in the database and received by Slack: a claim whose process died before
    # Slack took the prompt is missing too.
    told = min(int(prompted), len(set(prompt_values(slack))))
    counts.prompts_missing = max(0, expected.messages - told)
    counts.prompts_extra = max(0, int(prompted) - expected.messages)
    counts.prompts_twice = _prompts_twice(slack)
    counts.details_lost = sum(
        1
        for file_id, title in expected.details.items()
        if file_id not in by_file or by_file[file_id].title != title
    )
    _decisions(counts, slack, expected, by_file, requests, votes, audits)
    return counts


def prompt_values(slack: Any) -> list[str]:
    """The value of the details button of every prompt the poster got, in order: the post's
    image ids, comma-separated (what the poster's click sends back)."""
    from handlers.slack.details import ids as details_ids

    values = []
    for call in slack.calls_to("chat.postEphemeral"):
        if call.params.get("user") != POSTER or call.status != 200:
            continue
        for block in call.params.get("blocks") or []:
            for element in block.get("elements", []) if block.get("type") == "actions" else []:
                if element.get("action_id") == details_ids.ADD_DETAILS:
                    values.append(str(element.get("value")))
    return values


def _prompts_twice(slack: Any) -> int:
    """Prompts the poster got more than once for the same images."""
    return sum(n - 1 for n in Counter(prompt_values(slack)).values() if n > 1)


def _decisions(
    counts: Counts,
    slack: Any,
    expected: Expected,
    by_file: dict[str, Any],
    requests: list[Any],
    votes: list[Any],
    audits: list[Any],
) -> None:
    """Each approved request: approved once (one decided vote, one "approved" audit row),
    its thread told once, every card showing the outcome (no Approve button left)."""
    from handlers.slack.approvals import ids as approval_ids

    decided = Counter(v.request_id for v in votes if v.decision is not None)
    approved_rows = {image_id: n for image_id, action, n in audits if action == "approved"}
    last_card: dict[tuple[str, str], str] = {}  # (channel, ts) -> its last update, as text
    for call in slack.calls_to("chat.update"):
        if call.status == 200:
            last_card[(str(call.params.get("channel")), str(call.params.get("ts")))] = str(
                call.params
            )
    threads: Counter[tuple[str, str]] = Counter()  # settled lines per thread
    for call in slack.calls_to("chat.postMessage"):
        text = str(call.params.get("text") or "")
        if call.status == 200 and call.params.get("thread_ts") and "Approved by" in text:
            threads[(str(call.params.get("channel")), str(call.params["thread_ts"]))] += 1
    requests_of: dict[int, list[Any]] = defaultdict(list)
    for request in requests:
        requests_of[request.image_id].append(request)
    settled_per_thread: Counter[tuple[str, str]] = Counter()
    for file_id in expected.approved:
        image = by_file.get(file_id)
        mine = requests_of.get(image.id, []) if image is not None else []
        if image is None or len(mine) != 1:
            counts.decisions_lost += 1
            counts.notes.append(f"{file_id}: {len(mine)} approval requests, 1 expected")
            continue
        request = mine[0]
        if request.state != "approved" or decided[request.id] < 1:
            counts.decisions_lost += 1
            counts.notes.append(
                f"{file_id}: request {request.id} {request.state} with "
                f"{decided[request.id]} votes decided"
            )
        counts.decisions_duplicated += max(0, decided[request.id] - 1)
        counts.decisions_duplicated += max(0, approved_rows.get(image.id, 0) - 1)
        settled_per_thread[(str(image.channel_id), str(image.message_ts))] += 1
        for vote in votes:
            if vote.request_id != request.id:
                continue
            card = last_card.get((str(vote.card_channel), str(vote.card_ts)))
            if card is None or approval_ids.APPROVE in card:
                counts.cards_stale += 1
    for thread, wanted in settled_per_thread.items():
        told = threads[thread]
        counts.decisions_duplicated += max(0, told - wanted)
        counts.decisions_lost += max(0, wanted - told)
        if told != wanted:
            counts.notes.append(f"thread {thread}: told {told} decisions of {wanted}")
