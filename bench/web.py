"""Web library page benchmark: the server time of the library page (`/`) and its neighbours
at 1,000,000 images on Postgres (or 100,000 on SQLite), beside the search it runs, and the
page's weight without images.

    .venv/bin/python bench/web.py                # 1M Postgres; ~5 min seeded, +5 min seeding
    .venv/bin/python bench/web.py --quick        # 100k Postgres, 50 requests per shape
    .venv/bin/python bench/web.py --only sqlite  # 100k SQLite (--quick: 20k)

The databases are bench/search.py's, seeded and reused by its own functions (`prepare`,
`prepare_sqlite`: `imglib_bench_<N>` on 127.0.0.1:5432, `bench/.cache/search_<N>.db`). The
real Flask app (`bot.wiring.build_services`, `handlers.web.create_web`) runs in this process
with a Directory that answers from the seeded workspace (search.py's member: in every public
channel and 4 of the 18 private ones; its guest: in 3), and Flask's test client signs the
member in through the session cookie and asks for each page: no network, no gunicorn, so the
time is the app's own (routing, sign-in check, queries, template).

Per shape, round-robin so that the machine's other load falls on every shape alike: the page
through the test client, and the same `bot.finder.search` call alone (the baseline: what the
page adds to its search, chips and template, shows as the ratio). Then the parts the page adds
alone (rebuilding the person, the category chips), the page weight (HTML of `/` with 48
results plus the CSS and JS it links, raw and gzip), and, for a shape over its goal (or all
with `--explain`), every SQL statement one request sends with its time and the slowest one's
plan; `--profile` adds cProfile's top functions.

Figures go to stdout as `name: value` lines (SQLite's prefixed `sqlite_`); progress, checks,
goals and where the time goes to stderr. Exit status 1 when something failed. See
bench/README.md, "Web library page". Only 127.0.0.1 is contacted (Postgres).
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import io
import json
import pstats
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from html import unescape
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.search import (  # noqa: E402 - needs ROOT on sys.path
    END,
    GUEST,
    MEMBER,
    TEAM,
    VOCAB,
    BenchDirectory,
    BenchError,
    figure,
    info,
    memberships_map,
    percentile,
    prepare,
    prepare_sqlite,
)

GOAL_MS = 50.0  # p95 per page shape, 1M images
GOAL_WEIGHT_BYTES = 200 * 1024  # the library page without images, raw
PER_PAGE = 48  # what the library page shows (handlers/web/pages.py)
API = "api"  # the client that calls the JSON API with the member's token
GZIP_LEVEL = 6  # what nginx, Heroku's router and most servers use
MIN_ROUNDS = 30  # timed rounds at least, whatever the time budget
DIAGNOSTIC_REQUESTS = 20  # per shape over the goal: without the counts, statements, profile


@dataclass
class Shape:
    name: str
    url: str
    user: str = MEMBER
    baseline: Callable[[], Any] | None = None  # the same search alone
    expect: int = PER_PAGE  # tiles on the page at least (0: an image page)
    page: list[float] = field(default_factory=list)
    alone: list[float] = field(default_factory=list)


@dataclass
class Web:
    """The app in this process and a signed-in test client per person."""

    services: Any
    app: Any
    clients: dict[str, Any]

    def get(self, url: str, user: str = MEMBER) -> Any:
        return self.clients[user].get(url)


def open_web(url: str, work: Path) -> Web:
    from bot import tokens
    from bot.config import Settings
    from bot.services import utc_now
    from bot.signin import start_session
    from bot.wiring import build_services
    from handlers.web import Workspaces, create_web
    from handlers.web.api import guard
    from handlers.web.security import RateLimit

    settings = Settings.from_env(
        {"DATABASE_URL": url, "MEDIA_DIR": str(work / "media"), "LOG_LEVEL": "WARNING"},
        dotenv=False,
    )
    services = build_services(settings)
    services.directory = BenchDirectory()  # before `people` is first built on it
    app = create_web(services, bolt_app=None, workspaces=Workspaces.only(TEAM))
    clients = {}
    for user in (MEMBER, GUEST):
        client = app.test_client()
        session_id = start_session(services.factory, team_id=TEAM, user_id=user, now=utc_now())
        with client.session_transaction() as session:
            session["sid"] = session_id
        clients[user] = client
    # The JSON API as the member, with a personal access token; its rate limit (600 a minute
    # per token) would stop a benchmark, so this process lifts it.
    _, token = tokens.create(
        services.factory, team_id=TEAM, user_id=MEMBER, name="bench", now=utc_now()
    )
    guard.per_token = RateLimit(limit=10**9, window=60.0)
    clients[API] = app.test_client()
    clients[API].environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return Web(services, app, clients)


def _ok(response: Any, url: str) -> str:
    if response.status_code != 200:
        raise BenchError(f"GET {url}: HTTP {response.status_code} {response.data[:300]!r}")
    return response.get_data(as_text=True)


def tiles(html: str) -> int:
    return html.count('<li class="tile">')


def load_more_href(html: str) -> str:
    found = re.search(r'id="load-more" href="([^"]+)"', html)
    if not found:
        raise BenchError("the first page has no Load more link")
    return unescape(found.group(1))


def build_shapes(web: Web) -> list[Shape]:
    from bot import finder
    from bot.finder import visible_image
    from storage.query import parse
    from storage.search import Cursor

    services = web.services
    people = {u: services.people.person(TEAM, u) for u in (MEMBER, GUEST)}
    if people[MEMBER].viewer.channels != frozenset(
        c for c in VOCAB.private if MEMBER in memberships_map()[c]
    ):
        raise BenchError(f"member sees {sorted(people[MEMBER].viewer.channels)}")

    def searching(text: str, user: str = MEMBER, after: str = "") -> Callable[[], Any]:
        query, cursor = parse(text), Cursor.decode(after)
        return lambda: finder.search(
            services, people[user], query, cursor=cursor, per_page=PER_PAGE
        )

    since = END.date() - timedelta(days=90)
    word = f"photo after:{since}"
    first = _ok(web.get("/"), "/")
    more = load_more_href(first)
    after = re.search(r"[?&]after=([^&]+)", more)
    if after is None:
        raise BenchError(f"no after= in the Load more link {more}")
    image_id = int(re.search(r'href="/images/(\d+)"', first).group(1))  # type: ignore[union-attr]
    shapes = [
        Shape("first_page", "/", baseline=searching("")),
        Shape("tag", "/?q=tag:events", baseline=searching("tag:events"), expect=1),
        Shape("category", "/?q=category:Events", baseline=searching("category:Events"), expect=1),
        Shape("word_after", f"/?q={word.replace(' ', '+')}", baseline=searching(word), expect=1),
        # What the page's script fetches for "Load more" (the link plus fragment=1).
        Shape(
            "load_more",
            more + "&fragment=1",
            baseline=searching("", after=after.group(1)),
        ),
        Shape(
            "image_page",
            f"/images/{image_id}",
            baseline=lambda: visible_image(
                services.factory, image_id=image_id, viewer=people[MEMBER].viewer
            ),
            expect=0,
        ),
        Shape("first_page_guest", "/", user=GUEST, baseline=searching("", user=GUEST)),
        # The JSON API: the same searches as JSON, and one image.
        Shape(
            "api_first_page", f"/api/v1/images?limit={PER_PAGE}", user=API, baseline=searching("")
        ),
        Shape(
            "api_tag",
            f"/api/v1/images?q=tag:events&limit={PER_PAGE}",
            user=API,
            baseline=searching("tag:events"),
        ),
        Shape(
            "api_image",
            f"/api/v1/images/{image_id}",
            user=API,
            baseline=lambda: visible_image(
                services.factory, image_id=image_id, viewer=people[MEMBER].viewer
            ),
            expect=0,
        ),
    ]
    for shape in shapes:
        html = _ok(web.get(shape.url, shape.user), shape.url)
        found = len(json.loads(html).get("items", [])) if shape.user == API else tiles(html)
        if found < shape.expect:
            raise BenchError(f"{shape.name}: {found} tiles on {shape.url}, expected {shape.expect}")
        count = re.search(r'<p class="count" role="status">([^<]*)</p>', html)
        info(
            f"{shape.name}: GET {shape.url} as {shape.user}: {len(html):,} bytes, {found} "
            + ("items" if shape.user == API else "tiles")
            + (f", {count.group(1).strip()}" if count else "")
        )
    return shapes


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return (time.perf_counter() - started) * 1000, result


def measure_shapes(
    web: Web, shapes: list[Shape], *, runs: int, warmup: int, budget_s: float
) -> None:
    """Round-robin: request n of every shape, then request n + 1, and so on; each page
    followed by its search alone. Stops early (after MIN_ROUNDS timed rounds at least)
    once `budget_s` has gone: a page of a second makes 200 rounds a long wait."""
    until = time.perf_counter() + budget_s
    for n in range(warmup + runs):
        if n >= warmup + MIN_ROUNDS and time.perf_counter() > until:
            info(f"  time budget ({budget_s:.0f} s) spent: {n - warmup} timed rounds")
            break
        for shape in shapes:
            ms, response = timed(lambda s=shape: web.get(s.url, s.user))
            if response.status_code != 200:
                raise BenchError(f"{shape.name}: HTTP {response.status_code}")
            alone, _ = timed(shape.baseline) if shape.baseline else (0.0, None)
            if n >= warmup:
                shape.page.append(ms)
                shape.alone.append(alone)


def measure_parts(web: Web, *, runs: int) -> dict[str, list[float]]:
    """What the page runs besides its search, each alone: rebuilding who is signed in (every
    request: facts, memberships, the channels query) and the category chips (the categories
    with an image the viewer would find)."""
    from bot.finder import categories_in_view

    services = web.services
    me = services.people.person(TEAM, MEMBER)
    parts: dict[str, Callable[[], Any]] = {
        "person": lambda: services.people.person(TEAM, MEMBER),
        "chips_categories": lambda: categories_in_view(services.factory, viewer=me.viewer),
    }
    out: dict[str, list[float]] = {name: [] for name in parts}
    for n in range(runs + 3):
        for name, call in parts.items():
            ms, _ = timed(call)
            if n >= 3:
                out[name].append(ms)
    return out


def page_weight(web: Web) -> dict[str, tuple[int, int]]:
    """(raw, gzip) bytes of the first page's HTML and of each stylesheet and script it links."""
    html = _ok(web.get("/"), "/")
    if tiles(html) != PER_PAGE:
        raise BenchError(f"the weighed page has {tiles(html)} tiles, not {PER_PAGE}")
    weights = {"html": _weigh(html.encode())}
    linked = re.findall(r'<link rel="stylesheet" href="([^"]+)"|<script src="([^"]+)"', html)
    for css, js in linked:
        url = unescape(css or js)
        body = web.get(url)
        if body.status_code != 200:
            raise BenchError(f"GET {url}: HTTP {body.status_code}")
        weights["css" if css else "js"] = _weigh(body.get_data())
        body.close()
    if set(weights) != {"html", "css", "js"}:
        raise BenchError(f"the page links {linked}")
    return weights


def _weigh(data: bytes) -> tuple[int, int]:
    return len(data), len(gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0))


# --------------------------------------------------------------------------------------------
# Where the time goes


def statements(web: Web, shape: Shape, *, requests: int) -> None:
    """Every SQL statement one request of `shape` sends, with its median time over
    `requests` requests (to stderr), and the slowest one's plan."""
    from sqlalchemy import event

    engine = web.services.engine
    seen: list[list[tuple[str, Any, float]]] = []
    started: dict[int, float] = {}

    def before(conn: Any, cur: Any, statement: str, parameters: Any, *args: Any) -> None:
        started[id(cur)] = time.perf_counter()

    def after(conn: Any, cur: Any, statement: str, parameters: Any, *args: Any) -> None:
        ms = (time.perf_counter() - started.pop(id(cur), time.perf_counter())) * 1000
        seen[-1].append((statement, parameters, ms))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        for _ in range(requests):
            seen.append([])
            web.get(shape.url, shape.user)
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    counts = {len(s) for s in seen}
    if len(counts) != 1:
        info(f"  {shape.name}: {sorted(counts)} statements per request (varies)")
    last = seen[-1]
    medians = []
    for n, (statement, parameters, _) in enumerate(last):
        times = [s[n][2] for s in seen if len(s) == len(last)]
        medians.append((percentile(times, 50), statement, parameters))
    total = sum(m for m, _, _ in medians)
    info(f"--- {shape.name}: {len(last)} statements, {total:.1f} ms in SQL (medians)")
    for ms, statement, _ in medians:
        info(f"  {ms:8.2f} ms  {_short(statement)}")
    if engine.dialect.name != "postgresql":
        return
    slowest = max(medians, key=lambda m: m[0])
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest[1], slowest[2])
        plan = "\n".join(f"    {row[0]}" for row in cur.fetchall())
        sql_text = cur.mogrify(slowest[1], slowest[2]).decode()
        raw.rollback()
    finally:
        raw.close()
    info(f"  slowest ({slowest[0]:.1f} ms):\n    {sql_text}\n{plan}")


def _short(statement: str) -> str:
    flat = " ".join(statement.split())
    return flat if len(flat) <= 220 else flat[:217] + "..."


def profile(web: Web, shape: Shape, *, requests: int, top: int = 30) -> None:
    """cProfile over `requests` requests of `shape`: the functions with the most cumulative
    time, per request, to stderr."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        web.get(shape.url, shape.user)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    info(f"--- cProfile {shape.name}, {requests} requests (times are totals):\n{out.getvalue()}")


# --------------------------------------------------------------------------------------------


@dataclass
class Measured:
    prefix: str
    images: int
    seed_s: float | None
    shapes: list[Shape]
    parts: dict[str, list[float]]
    weights: dict[str, tuple[int, int]]


def measure(
    url: str, total: int, seed_s: float | None, *, prefix: str, args: argparse.Namespace
) -> Measured:
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        web = open_web(url, Path(tmp))
        try:
            shapes = build_shapes(web)
            info(
                f"timing {len(shapes)} shapes: {args.runs} requests each after {args.warmup} "
                "warm-up, round-robin, each beside its search alone"
            )
            started = time.perf_counter()
            measure_shapes(web, shapes, runs=args.runs, warmup=args.warmup, budget_s=args.budget)
            info(f"  took {time.perf_counter() - started:.0f} s")
            parts = measure_parts(web, runs=min(args.runs, len(shapes[0].page)))
            weights = page_weight(web)
            over = [s for s in shapes if percentile(s.page, 95) >= GOAL_MS]
            diagnosed = shapes if args.explain else over
            if diagnosed:
                info(f"where the time goes ({DIAGNOSTIC_REQUESTS} requests per shape):")
            for shape in diagnosed:
                statements(web, shape, requests=DIAGNOSTIC_REQUESTS)
            # The first shape diagnosed only (with --explain, all): they share their cause.
            for shape in (diagnosed if args.explain else diagnosed[:1]) if args.profile else []:
                profile(web, shape, requests=DIAGNOSTIC_REQUESTS)
        finally:
            web.services.shutdown()
    return Measured(prefix, total, seed_s, shapes, parts, weights)


def report(m: Measured) -> None:
    p = m.prefix
    figure(f"{p}images", m.images, 0)
    if m.seed_s is not None:
        figure(f"{p}seed_s", m.seed_s, 1)
    for shape in m.shapes:
        for pct in (50, 95, 99):
            figure(f"{p}page_p{pct}_ms_{shape.name}", percentile(shape.page, pct), 2)
        figure(f"{p}page_max_ms_{shape.name}", max(shape.page), 2)
        figure(f"{p}search_p50_ms_{shape.name}", percentile(shape.alone, 50), 2)
        figure(f"{p}search_p95_ms_{shape.name}", percentile(shape.alone, 95), 2)
        alone = percentile(shape.alone, 50)
        ratio = percentile(shape.page, 50) / alone if alone > 0 else float("nan")
        figure(f"{p}page_over_search_{shape.name}", ratio, 1)
        figure(f"{p}requests_{shape.name}", len(shape.page), 0)
    for name, values in m.parts.items():
        figure(f"{p}part_p50_ms_{name}", percentile(values, 50), 2)
        figure(f"{p}part_p95_ms_{name}", percentile(values, 95), 2)
    for name, (raw, packed) in m.weights.items():
        figure(f"{p}weight_{name}_bytes", raw, 0)
        figure(f"{p}weight_{name}_gzip_bytes", packed, 0)
    raw_total = sum(r for r, _ in m.weights.values())
    figure(f"{p}weight_total_bytes", raw_total, 0)
    figure(f"{p}weight_total_gzip_bytes", sum(g for _, g in m.weights.values()), 0)
    for shape in m.shapes:
        p95 = percentile(shape.page, 95)
        verdict = "met" if p95 < GOAL_MS else "NOT met"
        info(f"goal {p}page_p95_ms_{shape.name} < {GOAL_MS:.0f}: {verdict} ({p95:.2f})")
    verdict = "met" if raw_total < GOAL_WEIGHT_BYTES else "NOT met"
    info(f"goal {p}weight_total_bytes < {GOAL_WEIGHT_BYTES} (200 KB): {verdict} ({raw_total:,})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100k / 20k images, 50 requests")
    parser.add_argument("--only", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--images", type=int, help="images (default 1M Postgres, 100k SQLite)")
    parser.add_argument("--reseed", action="store_true", help="seed again even if seeded")
    parser.add_argument("--database-url", help="a Postgres database to use instead")
    parser.add_argument("--sqlite-path", help="the SQLite file (default bench/.cache/...)")
    parser.add_argument("--runs", type=int, help="timed requests per shape (200; quick 50)")
    parser.add_argument("--budget", type=float, help="seconds for the timed rounds (900; 300)")
    parser.add_argument("--explain", action="store_true", help="diagnose every shape")
    parser.add_argument("--profile", action="store_true", help="cProfile a shape over the goal")
    args = parser.parse_args(argv)
    sqlite = args.only == "sqlite"
    if args.images is None:
        args.images = (
            (20_000 if sqlite else 100_000) if args.quick else (100_000 if sqlite else 1_000_000)
        )
    args.runs = args.runs or (50 if args.quick else 200)
    args.warmup = 5 if args.quick else 10
    args.budget = args.budget or (300.0 if args.quick else 900.0)
    if not (1_000 <= args.images <= 10_000_000 and 1 <= args.runs <= 5_000):
        parser.error("--images 1000..10000000, --runs 1..5000")
    if not 10 <= args.budget <= 3600:
        parser.error("--budget 10..3600")

    started = time.perf_counter()
    try:
        if sqlite:
            url, seed_s = prepare_sqlite(args, args.images)
        else:
            url, seed_s = prepare(args, args.images)
        measured = measure(url, args.images, seed_s, prefix="sqlite_" if sqlite else "", args=args)
    except BenchError as exc:
        info(f"error: {exc}")
        return 1
    report(measured)
    info(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
