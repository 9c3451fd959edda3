"""Search benchmark: query latency at 1,000,000 images on Postgres and 100,000 on SQLite,
beside a naive baseline, and the whole `/images` slash command from signed request to
`response_url` answer, on each database.

    .venv/bin/python bench/search.py            # 1M Postgres + 100k SQLite; ~15 min seeded
    .venv/bin/python bench/search.py --quick    # 100k Postgres + 20k SQLite, fewer runs
    .venv/bin/python bench/search.py --only sqlite

Postgres images are seeded once with COPY into a dedicated database (`imglib_bench_<N>` on
the server at 127.0.0.1:5432, created and migrated when missing); SQLite ones through
SQLAlchemy into `bench/.cache/search_<N>.db` (its triggers keep FTS5 and `tag_uses` as in
use). Both are reused by later runs while their `bench_meta` marker says they hold N images
of this seed version (`--reseed` forces a new seed; `--database-url` / `--sqlite-path` pick
others). Then each query shape runs through `bot.finder.find` (what `/images` calls:
`storage.search.search_images` plus the category names and suggestions) after
`storage.search.parse`, or through `bot.details.suggest_tags` (the details modal's tag
autocomplete), with the Viewer `bot.people.People.viewer` builds, and beside it a naive SQL
equivalent (ILIKE / LIKE over a join, OFFSET paging, no indexes) on the same data in the same
run. Last, the real app (`python -m bot serve`, started by `tests.conftest.AppProcess`)
answers signed `/images` commands from the Slack emulator.

Figures go to stdout as `name: value` lines (SQLite's prefixed `sqlite_`); progress, sanity
checks, goals and (for a shape over its goal, or all with `--explain`) the query plans go to
stderr. Exit status 1 when something failed (the database, the app, a wrong result, a tag
offered or found that the viewer may not see), with the reason. See bench/README.md,
"Search benchmark", for what each figure means.

Only 127.0.0.1 is contacted: Postgres, the Slack emulator and the app. Result previews point
at https://media.example.com, which nothing fetches (the emulator only checks the URL).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import hashlib
import io
import math
import multiprocessing
import queue
import random
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432"
SEED_VERSION = "search-v3"  # v2: planted private-channel tags; v3: channels checked
SEED = 20261124

TEAM = "T0TEAM1"
OTHER_TEAM = "T0OTHER"  # a second workspace in the same tables: never in TEAM's results
ADMIN = "UADMIN"
MEMBER = "UMEMBER"
GUEST = "UGUEST"
COMMAND_CHANNEL = "C0PUB000"

END = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # the newest image; 3 years of dates before
SPAN = timedelta(days=3 * 365)
OTHER_TEAM_SHARE = 0.03
PRIVATE_SHARE = 0.30
PUBLIC_CHANNELS = 42
PRIVATE_CHANNELS = 18
UPLOADERS = 300
TAG_VOCABULARY = 20_000
PSEUDO_WORDS = 3_000
CHUNK_ROWS = 25_000
GENERATORS = 1  # processes generating COPY text while the server ingests it

PER_PAGE = 5  # what /images shows
GOAL_MS = 10.0  # p95 per shape, Postgres, 1M images
GOAL_MS_SQLITE = 25.0  # p95 per shape, SQLite, 100k images
GOAL_COMMAND_MS = 30.0
SQLITE_IMAGES = 100_000
SQLITE_INSERT_ROWS = 5_000
BASELINE_BUDGET_S = 25.0  # per shape; at least BASELINE_MIN_RUNS whatever it costs
BASELINE_MIN_RUNS = 5
STATEMENT_TIMEOUT_MS = 60_000
APP_START_TIMEOUT_S = 60.0
RESPONSE_TIMEOUT_S = 15.0
MEDIA_BASE_URL = "https://media.example.com"  # only ever written into payloads


class BenchError(Exception):
    """Something did not work; the message says what (and the script exits 1)."""


def info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def figure(name: str, value: float, digits: int) -> None:
    print(f"{name}: {value:.{digits}f}", flush=True)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


# --------------------------------------------------------------------------------------------
# The library's vocabulary: deterministic, built the same way in every process


FUNCTION_WORDS = ["the", "and", "at", "with", "of", "in", "for", "on", "from", "our"]
REAL_WORDS = [
    *FUNCTION_WORDS,
    "team", "new", "photo", "day", "event", "office", "stage", "product", "shot", "launch",
    "group", "party", "booth", "portrait", "client", "city", "night", "morning", "summer",
    "winter", "spring", "autumn", "coffee", "desk", "meeting", "workshop", "panel", "speaker",
    "crowd", "lobby", "screen", "banner", "poster", "logo", "sample", "demo", "lunch", "dinner",
    "photos", "keynote", "brand", "garden", "rooftop", "studio", "light", "blue", "red", "green",
    "window", "street", "hall", "venue", "guests", "table", "award", "ceremony", "welcome",
    "photographer", "candid", "wide", "detail", "close", "hands", "smile", "selfie", "signage",
    "backstage", "rehearsal", "packaging", "unboxing", "prototype", "whiteboard", "sketch",
    "campaign", "billboard", "storefront", "shelf", "display", "kiosk", "van", "fleet",
    "warehouse", "factory", "lab", "interview", "podcast", "livestream", "webinar", "recording",
    "microphone", "camera", "drone", "aerial", "skyline", "harbour", "beach", "mountain",
    "forest", "snow", "rain", "sunset", "sunrise", "golden", "hour", "flatlay", "mockup",
    "render", "draft", "final", "approved", "version", "edit", "crop", "print", "flyer",
    "brochure", "catalog", "magazine", "press", "release", "headline", "quote", "testimonial",
    "customer", "partner", "volunteer", "charity", "run", "marathon", "trophy", "medal",
    "cake", "birthday", "anniversary", "farewell", "onboarding", "hackathon", "townhall",
    "offsite", "retreat", "summit", "expo", "fair", "showroom", "gallery", "museum",
]  # fmt: skip
HOT_TAGS = [
    "events", "marketing", "team", "product", "office", "keynote", "CMO", "launch", "social",
    "brand", "conference", "webinar", "portrait", "headshot", "booth", "stage", "customer",
    "partner", "award", "hiring", "culture", "offsite", "summit", "retail", "packaging",
    "press", "Q4", "Q1", "Q2", "Q3", "berlin", "london", "paris", "new-york", "tokyo",
    "sales", "leadership", "design", "engineering", "support", "community", "sponsor",
    "trade-show", "print", "video-still", "ugc", "influencer", "holiday", "summer-party",
    "town-hall",
]  # fmt: skip
PHRASES = [
    ("launch party", 4.0),
    ("product launch", 3.0),
    ("team offsite", 2.0),
    ("behind the scenes", 2.0),
    ("customer story", 1.5),
    ("annual summit", 1.0),
]
PHRASE_TITLE_SHARE = 0.03
PHRASE_DESCRIPTION_SHARE = 0.01
CATEGORIES = [
    "Events", "Marketing", "Product", "Brand", "Social Media", "Sales", "Partners",
    "Customers", "People & Culture", "Office", "Press", "Webinars", "Trade Shows",
    "Leadership", "Recruiting", "Community", "Design", "Engineering", "Support", "Archive",
]  # fmt: skip
OTHER_CATEGORIES = ["Events", "Operations", "Misc"]
OTHER_ONLY_TAG = "zephyrine"  # only the other team uses it
# Planted without drawing from the random generator (the rest of the data stays the same):
# a project tag only one private channel uses, which the member and the guest must never be
# offered, and a tag mostly used there but on a few public images too (the planner guesses
# it common; the member sees ~140 images of it at 1M).
PRIVATE_TAG_CHANNEL = 3  # VOCAB.private[3]: neither the member nor the guest is in it
PRIVATE_TAG = "project-falcon"
MOSTLY_PRIVATE_TAG = "falcon"
FIRST_NAMES = [
    "Ana", "Ben", "Chloe", "Dev", "Ema", "Femi", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea",
    "Mo", "Nia", "Oli", "Pia", "Raj", "Sol", "Tess", "Uma", "Vik", "Wen", "Xan", "Yara", "Zed",
]  # fmt: skip
LAST_NAMES = [
    "Silva", "Okafor", "Nguyen", "Schmidt", "Rossi", "Kowalski", "Haddad", "Tanaka", "Moreau",
    "Jensen", "Costa", "Ivanova",
]  # fmt: skip
STATUSES = [("approved", 72), ("pending", 12), ("draft", 9), ("rejected", 4), ("archived", 3)]
TAG_COUNTS = [(0, 6), (1, 14), (2, 22), (3, 24), (4, 17), (5, 10), (6, 7)]
CAMERAS = ["Canon EOS R5", "Sony A7 IV", "iPhone 15 Pro", "Nikon Z6", "Pixel 8", None]


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def _zipf(n: int, *, s: float, q: float) -> list[float]:
    return _cumulative([1.0 / (rank + q) ** s for rank in range(1, n + 1)])


def _pseudo_words(rng: random.Random, count: int, taken: set[str]) -> list[str]:
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    words: list[str] = []
    seen = set(taken)
    for _ in range(count * 20):  # bounded: duplicates are rare
        if len(words) == count:
            break
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        if rng.random() < 0.4:
            word += rng.choice("lnrst")
        if word not in seen:
            seen.add(word)
            words.append(word)
    if len(words) < count:
        raise BenchError("could not make enough distinct pseudo-words")
    return words


@dataclass(frozen=True)
class Vocabulary:
    tags: list[str]
    tag_cum: list[float]
    words: list[str]
    word_cum: list[float]
    phrases: list[str]
    phrase_cum: list[float]
    uploaders: list[tuple[str, str]]
    uploader_cum: list[float]
    public: list[str]
    private: list[str]
    public_cum: list[float]
    private_cum: list[float]
    other_channels: list[str]
    category_cum: list[float]


def build_vocabulary() -> Vocabulary:
    rng = random.Random(SEED)
    taken = {w.lower() for w in (*REAL_WORDS, *HOT_TAGS)}
    taken |= {"keynoet", OTHER_ONLY_TAG, PRIVATE_TAG, MOSTLY_PRIVATE_TAG}
    pseudo = _pseudo_words(rng, TAG_VOCABULARY - len(HOT_TAGS) + PSEUDO_WORDS, taken)
    tags = HOT_TAGS + pseudo[: TAG_VOCABULARY - len(HOT_TAGS)]
    words = REAL_WORDS + pseudo[TAG_VOCABULARY - len(HOT_TAGS) :]
    uploaders = [
        (f"U{n:06d}", f"{FIRST_NAMES[n % len(FIRST_NAMES)]} {LAST_NAMES[n % len(LAST_NAMES)]}")
        for n in range(UPLOADERS)
    ]
    return Vocabulary(
        tags=tags,
        tag_cum=_zipf(len(tags), s=1.0, q=1.0),
        words=words,
        word_cum=_zipf(len(words), s=1.0, q=2.0),
        phrases=[p for p, _ in PHRASES],
        phrase_cum=_cumulative([w for _, w in PHRASES]),
        uploaders=uploaders,
        uploader_cum=_zipf(UPLOADERS, s=0.9, q=3.0),
        public=[f"C0PUB{n:03d}" for n in range(PUBLIC_CHANNELS)],
        private=[f"G0PRV{n:03d}" for n in range(PRIVATE_CHANNELS)],
        public_cum=_zipf(PUBLIC_CHANNELS, s=1.0, q=2.0),
        private_cum=_zipf(PRIVATE_CHANNELS, s=1.0, q=2.0),
        other_channels=[f"C0OTH{n:03d}" for n in range(5)],
        category_cum=_zipf(len(CATEGORIES), s=0.8, q=1.0),
    )


VOCAB = build_vocabulary()
MEMBER_PRIVATE = [VOCAB.private[i] for i in (0, 5, 9, 14)]  # a member of 4 of the 18
GUEST_CHANNELS = [VOCAB.public[2], VOCAB.public[10], VOCAB.private[1]]  # a guest in 3


# --------------------------------------------------------------------------------------------
# Seeding: COPY text generated in other processes, chunk by chunk

IMAGE_COLUMNS = (
    "team_id, slack_file_id, channel_id, channel_private, message_ts, uploader_id, "
    "uploader_name, file_name, title, description, category_id, tags, tag_keys, shoot_date, "
    "sort_at, status, details_added_at, storage_key, width, height, format, bytes, sha256, "
    "phash, phash_b0, phash_b1, phash_b2, phash_b3, camera, exif, created_at, updated_at"
)
NULL = "\\N"


def _ts(value: datetime) -> str:
    return value.isoformat()


def _words(rng: random.Random, count: int) -> list[str]:
    return rng.choices(VOCAB.words, cum_weights=VOCAB.word_cum, k=count)


def _with_phrase(rng: random.Random, words: list[str]) -> list[str]:
    phrase = rng.choices(VOCAB.phrases, cum_weights=VOCAB.phrase_cum)[0]
    at = rng.randint(0, len(words))
    return words[:at] + phrase.split() + words[at:]


def generate_chunk(start: int, count: int, total: int, categories: dict[str, list[int]]) -> str:
    """COPY text (tab-separated) for images start..start+count-1 of `total`, oldest first."""
    rng = random.Random(f"{SEED}:{start}")
    out = io.StringIO()
    span_s = SPAN.total_seconds()
    first = END - SPAN
    statuses = [s for s, _ in STATUSES]
    status_cum = _cumulative([w for _, w in STATUSES])
    tag_counts = [n for n, _ in TAG_COUNTS]
    tag_count_cum = _cumulative([w for _, w in TAG_COUNTS])
    team_categories, other_categories = categories[TEAM], categories[OTHER_TEAM]
    for index in range(start, start + count):
        # A library grows: more images per day lately (u ** 0.8 spreads the old ones out).
        u = (index + rng.random()) / total
        created = first + timedelta(seconds=span_s * u**0.8)
        other = rng.random() < OTHER_TEAM_SHARE
        if other:
            team = OTHER_TEAM
            channel, private = rng.choice(VOCAB.other_channels), False
            category = rng.choice([*other_categories, None])
        else:
            team = TEAM
            private = rng.random() < PRIVATE_SHARE
            if private:
                channel = rng.choices(VOCAB.private, cum_weights=VOCAB.private_cum)[0]
            else:
                channel = rng.choices(VOCAB.public, cum_weights=VOCAB.public_cum)[0]
            category = (
                rng.choices(team_categories, cum_weights=VOCAB.category_cum)[0]
                if rng.random() < 0.85
                else None
            )
        uploader_id, uploader_name = rng.choices(VOCAB.uploaders, cum_weights=VOCAB.uploader_cum)[0]
        title_words = _words(rng, rng.randint(2, 6))
        if rng.random() < PHRASE_TITLE_SHARE:
            title_words = _with_phrase(rng, title_words)
        title = " ".join(title_words).capitalize()
        description = ""
        if rng.random() < 0.6:
            described = _words(rng, rng.randint(4, 20))
            if rng.random() < PHRASE_DESCRIPTION_SHARE:
                described = _with_phrase(rng, described)
            description = " ".join(described).capitalize() + "."
        n_tags = rng.choices(tag_counts, cum_weights=tag_count_cum)[0]
        tags = list(dict.fromkeys(rng.choices(VOCAB.tags, cum_weights=VOCAB.tag_cum, k=n_tags)))
        if other and rng.random() < 0.2:
            tags.append(OTHER_ONLY_TAG)
        if private and channel == VOCAB.private[PRIVATE_TAG_CHANNEL] and index % 4 < 2:
            tags.append(PRIVATE_TAG if index % 4 == 0 else MOSTLY_PRIVATE_TAG)
        elif not other and not private and index % 5000 == 7:
            tags.append(MOSTLY_PRIVATE_TAG)
        shoot = None
        if rng.random() < 0.6:
            shoot = (created - timedelta(days=rng.uniform(0, 20))).replace(microsecond=0)
        sort_at = shoot or created
        status = rng.choices(statuses, cum_weights=status_cum)[0]
        stored = rng.random() < 0.97
        sha = hashlib.sha256(f"{SEED}:{index}".encode()).hexdigest()
        phash = rng.getrandbits(64)
        bands = [(phash >> (48 - 16 * b)) & 0xFFFF for b in range(4)]
        camera = rng.choice(CAMERAS)
        fields = [
            team,
            f"F{index:010d}",
            channel,
            "t" if private else "f",
            f"{created.timestamp():.6f}",
            uploader_id,
            uploader_name,
            f"IMG_{index % 100000:05d}.jpg",
            title,
            description,
            str(category) if category else NULL,
            "{" + ",".join(tags) + "}",
            "{" + ",".join(t.casefold() for t in tags) + "}",
            _ts(shoot) if shoot else NULL,
            _ts(sort_at),
            status,
            _ts(created + timedelta(minutes=5)) if title_words and rng.random() < 0.7 else NULL,
            f"{team}/{sha[:2]}/{sha}.jpg" if stored else NULL,
            "4000",
            "3000",
            "JPEG",
            str(rng.randint(800_000, 14_000_000)),
            sha,
            str(phash - (1 << 63)),
            *(str(b) for b in bands),
            camera or NULL,
            "{}",
            _ts(created),
            _ts(created + timedelta(seconds=30)),
        ]
        out.write("\t".join(fields))
        out.write("\n")
    return out.getvalue()


def _generator_process(
    worker: int,
    workers: int,
    total: int,
    categories: dict[str, list[int]],
    out: Any,
) -> None:
    for n, start in enumerate(range(0, total, CHUNK_ROWS)):
        if n % workers == worker:
            out.put(generate_chunk(start, min(CHUNK_ROWS, total - start), total, categories))
    out.put(None)


def chunks(total: int, categories: dict[str, list[int]]) -> Iterator[str]:
    """The COPY text in order, generated by GENERATORS processes (bounded queues)."""
    context = multiprocessing.get_context("fork")
    queues = [context.Queue(maxsize=3) for _ in range(GENERATORS)]
    procs = [
        context.Process(
            target=_generator_process,
            args=(w, GENERATORS, total, categories, queues[w]),
            daemon=True,
        )
        for w in range(GENERATORS)
    ]
    for proc in procs:
        proc.start()
    try:
        for n in range(math.ceil(total / CHUNK_ROWS)):
            try:
                chunk = queues[n % GENERATORS].get(timeout=300)
            except queue.Empty:
                raise BenchError("the row generator stopped producing") from None
            if chunk is None:
                raise BenchError("the row generator ended early")
            yield chunk
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)


def app_tables() -> list[str]:
    from storage.models import Base

    return [t.name for t in Base.metadata.sorted_tables]


def seed(engine: Any, total: int) -> float:
    """Empty the library tables and fill them; one transaction (a failed seed leaves the
    database as it was). Returns the seconds it took."""
    started = time.perf_counter()
    now = datetime.now(UTC).replace(microsecond=0)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("SET maintenance_work_mem = '1GB'")
        cur.execute("SET synchronous_commit = off")
        cur.execute(f"TRUNCATE {', '.join(app_tables())} RESTART IDENTITY CASCADE")
        cur.execute("DELETE FROM bench_meta")
        categories: dict[str, list[int]] = {TEAM: [], OTHER_TEAM: []}
        for team, names in ((TEAM, CATEGORIES), (OTHER_TEAM, OTHER_CATEGORIES)):
            for name in names:
                cur.execute(
                    "INSERT INTO categories (team_id, name, name_key, approval_policy, "
                    "default_approvers, created_at) VALUES (%s, %s, %s, 'any', '[]', %s) "
                    "RETURNING id",
                    (team, name, name.casefold(), END - SPAN),
                )
                categories[team].append(int(cur.fetchone()[0]))
        channels = [(TEAM, c, False) for c in VOCAB.public]
        channels += [(TEAM, c, True) for c in VOCAB.private]
        channels += [(OTHER_TEAM, c, False) for c in VOCAB.other_channels]
        # Checked, as the worker leaves them: an unchecked channel counts as private.
        cur.executemany(
            "INSERT INTO channels (team_id, channel_id, is_private, checked_at, created_at) "
            "VALUES (%s, %s, %s, %s, %s)",
            [(*c, END, END - SPAN) for c in channels],
        )
        # Secondary indexes are built after the load (the same definitions, read back from
        # the catalog): far faster than keeping a GIN index up to date row by row.
        cur.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = 'images'::regclass "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
        )
        indexes = cur.fetchall()
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        replica = bool(cur.fetchone()[0])
        if replica:
            # Skips the foreign-key triggers during COPY (every category id exists).
            cur.execute("SET LOCAL session_replication_role = replica")
        info(
            f"seeding {total:,} images with COPY"
            + ("" if replica else " (foreign keys checked per row: not a superuser)")
        )
        copied = 0
        last_note = time.perf_counter()
        for chunk in chunks(total, categories):
            cur.copy_expert(
                f"COPY images ({IMAGE_COLUMNS}) FROM STDIN WITH (FREEZE)", io.StringIO(chunk)
            )
            copied += chunk.count("\n")
            if time.perf_counter() - last_note > 15 or copied == total:
                last_note = time.perf_counter()
                info(f"  {copied:,} copied ({last_note - started:.0f} s)")
        if replica:
            cur.execute("SET LOCAL session_replication_role = origin")
        t_index = time.perf_counter()
        for name, definition in indexes:
            cur.execute(definition)
            info(f"  index {name} built ({time.perf_counter() - t_index:.0f} s)")
        cur.execute(
            "INSERT INTO tags (team_id, name, name_key, use_count, created_at) "
            "SELECT team_id, min(t), lower(t), count(*), min(created_at) "
            "FROM images, unnest(tags) AS t GROUP BY team_id, lower(t)"
        )
        # What the triggers on images keep (skipped during the COPY as a superuser): filled
        # the way migration 0004 fills it.
        cur.execute("DELETE FROM tag_uses")
        cur.execute(TAG_USES_FILL_PG)
        seconds = time.perf_counter() - started
        cur.executemany(
            "INSERT INTO bench_meta (key, value) VALUES (%s, %s)",
            [
                ("images", str(total)),
                ("version", SEED_VERSION),
                ("seeded_at", now.isoformat()),
                ("seed_load_s", f"{seconds:.1f}"),
            ],
        )
        raw.commit()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()
    info(f"  committed ({time.perf_counter() - started:.0f} s); VACUUM ANALYZE")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("images", "tags", "tag_uses", "categories", "channels"):
            conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
    seconds = time.perf_counter() - started
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE bench_meta SET value = %(v)s WHERE key = 'seed_load_s'", {"v": f"{seconds:.1f}"}
        )
    return seconds


TAG_USES_FILL_PG = (
    "INSERT INTO tag_uses (team_id, name_key, channel_id, channel_private, uses) "
    "SELECT team_id, k, channel_id, channel_private, count(*) "
    "FROM images, LATERAL (SELECT DISTINCT unnest(tag_keys) AS k) AS keys "
    "GROUP BY team_id, k, channel_id, channel_private"
)


def database_url(args: argparse.Namespace, total: int) -> str:
    from bot.config import normalise_database_url

    if args.database_url:
        return normalise_database_url(args.database_url)
    return normalise_database_url(f"{DEFAULT_SERVER}/imglib_bench_{total}")


def ensure_database(url: str) -> None:
    """Create the database when missing (from the server's `postgres` database)."""
    import psycopg2
    from psycopg2 import sql
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = parsed.database
    admin = parsed.set(drivername="postgresql", database="postgres")
    dsn = admin.render_as_string(hide_password=False)
    connection = psycopg2.connect(dsn, connect_timeout=10)
    try:
        connection.autocommit = True
        with connection.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                info(f"creating database {name}")
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        connection.close()


def prepare(args: argparse.Namespace, total: int) -> tuple[str, float | None]:
    """A migrated database holding `total` seeded images; the seed time if seeded now."""
    from sqlalchemy import text

    from storage import migrate
    from storage.db import make_engine

    url = database_url(args, total)
    try:
        ensure_database(url)
        engine = make_engine(url)
        migrate.upgrade(engine)
    except Exception as exc:
        raise BenchError(f"cannot prepare the database: {exc}") from None
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text)"
            )
            meta = dict(conn.execute(text("SELECT key, value FROM bench_meta")).all())
            count = int(conn.execute(text("SELECT count(*) FROM images")).scalar_one())
        if meta.get("version") == SEED_VERSION and meta.get("images") == str(total) == str(count):
            if not args.reseed:
                info(
                    f"reusing {url.rsplit('/', 1)[-1]}: {count:,} images seeded "
                    f"{meta.get('seeded_at', '?')} (seed took {meta.get('seed_load_s', '?')} s)"
                )
                return url, None
        elif count and not meta:
            raise BenchError(
                f"{url.rsplit('/', 1)[-1]} has {count:,} images and no bench_meta: not a "
                "benchmark database, refusing to empty it"
            )
        seconds = seed(engine, total)
        info(f"seeded {total:,} images in {seconds:.0f} s")
        return url, seconds
    finally:
        engine.dispose()


def sqlite_path(args: argparse.Namespace, total: int) -> Path:
    if args.sqlite_path:
        return Path(args.sqlite_path)
    return ROOT / "bench" / ".cache" / f"search_{total}.db"


def _copy_row(line: str) -> dict[str, Any]:
    """One COPY text row of `generate_chunk` as the values SQLAlchemy inserts."""
    values = [None if v == NULL else v for v in line.split("\t")]
    row = dict(zip([c.strip() for c in IMAGE_COLUMNS.split(",")], values, strict=True))
    for key in ("tags", "tag_keys"):
        inner = str(row[key])[1:-1]
        row[key] = inner.split(",") if inner else []
    for key in ("shoot_date", "sort_at", "details_added_at", "created_at", "updated_at"):
        row[key] = datetime.fromisoformat(row[key]) if row[key] else None
    row["channel_private"] = row["channel_private"] == "t"
    for key in ("category_id", "width", "height", "bytes", "phash", "phash_b0", "phash_b1"):
        row[key] = int(row[key]) if row[key] is not None else None
    for key in ("phash_b2", "phash_b3"):
        row[key] = int(row[key]) if row[key] is not None else None
    row["exif"] = {}
    return row


def seed_sqlite(engine: Any, total: int) -> float:
    """Fill a freshly migrated SQLite file through SQLAlchemy (so every value is stored as
    the app stores it), with its triggers keeping the FTS5 index and `tag_uses` as they
    would in use. The same generator as Postgres, so the same data at the same size."""
    from sqlalchemy import insert, text

    from storage.models import Category, Channel, Image

    started = time.perf_counter()
    now = datetime.now(UTC).replace(microsecond=0)
    with engine.begin() as conn:
        categories: dict[str, list[int]] = {TEAM: [], OTHER_TEAM: []}
        for team, names in ((TEAM, CATEGORIES), (OTHER_TEAM, OTHER_CATEGORIES)):
            for name in names:
                inserted = conn.execute(
                    insert(Category).values(
                        team_id=team,
                        name=name,
                        name_key=name.casefold(),
                        approval_policy="any",
                        default_approvers=[],
                        created_at=END - SPAN,
                    )
                )
                categories[team].append(int(inserted.inserted_primary_key[0]))
        channels = [(TEAM, c, False) for c in VOCAB.public]
        channels += [(TEAM, c, True) for c in VOCAB.private]
        channels += [(OTHER_TEAM, c, False) for c in VOCAB.other_channels]
        conn.execute(
            insert(Channel),
            [
                {
                    "team_id": t,
                    "channel_id": c,
                    "is_private": p,
                    "checked_at": END,  # as the worker leaves them
                    "created_at": END - SPAN,
                }
                for t, c, p in channels
            ],
        )
        info(f"seeding {total:,} images into SQLite (FTS5 and tag_uses triggers on)")
        for start in range(0, total, SQLITE_INSERT_ROWS):
            chunk = generate_chunk(start, min(SQLITE_INSERT_ROWS, total - start), total, categories)
            conn.execute(insert(Image), [_copy_row(line) for line in chunk.splitlines()])
            if (start // SQLITE_INSERT_ROWS) % 5 == 4:
                took = time.perf_counter() - started
                info(f"  {start + SQLITE_INSERT_ROWS:,} inserted ({took:.0f} s)")
        conn.execute(
            text(
                "INSERT INTO tags (team_id, name, name_key, use_count, created_at) "
                "SELECT team_id, min(t.value), lower(t.value), count(*), min(created_at) "
                "FROM images, json_each(images.tags) AS t GROUP BY team_id, lower(t.value)"
            )
        )
        seconds = time.perf_counter() - started
        conn.execute(
            text("INSERT INTO bench_meta (key, value) VALUES (:k, :v)"),
            [
                {"k": "images", "v": str(total)},
                {"k": "version", "v": SEED_VERSION},
                {"k": "seeded_at", "v": now.isoformat()},
                {"k": "seed_load_s", "v": f"{seconds:.1f}"},
            ],
        )
    return seconds


def prepare_sqlite(args: argparse.Namespace, total: int) -> tuple[str, float | None]:
    """A migrated SQLite file holding `total` seeded images; the seed time if seeded now.
    No ANALYZE: a SQLite library in use has none either (nothing runs it)."""
    from sqlalchemy import text

    from storage import migrate
    from storage.db import make_engine

    path = sqlite_path(args, total)
    url = f"sqlite:///{path}"
    if path.exists() and not args.reseed:
        engine = make_engine(url)
        try:
            migrate.upgrade(engine)
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    "CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text)"
                )
                meta = dict(conn.execute(text("SELECT key, value FROM bench_meta")).all())
                count = int(conn.execute(text("SELECT count(*) FROM images")).scalar_one())
        finally:
            engine.dispose()
        if meta.get("version") == SEED_VERSION and meta.get("images") == str(total) == str(count):
            info(f"reusing {path.name}: {count:,} images seeded {meta.get('seeded_at', '?')}")
            return url, None
        if count and not meta:
            raise BenchError(f"{path} has images and no bench_meta: not ours, refusing to reuse")
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE bench_meta (key text PRIMARY KEY, value text)")
        seconds = seed_sqlite(engine, total)
    finally:
        engine.dispose()
    info(f"seeded {total:,} images into {path.name} in {seconds:.0f} s")
    return url, seconds


# --------------------------------------------------------------------------------------------
# Shapes: what people search for, through the app's own code


@dataclass(frozen=True)
class Shape:
    name: str
    text: str  # typed after /images, or (kind "suggest") into the details modal's tag select
    user: str
    page: int = 1  # > 1: fetched with the cursor of the page before (keyset paging)
    naive: tuple[Any, ...] = ()  # what the naive SQL looks for
    expect_corrected: dict[str, str] = field(default_factory=dict)
    kind: str = "search"  # or "suggest": bot.details.suggest_tags, as tag autocomplete calls it


def shapes_for(engine: Any, total: int) -> list[Shape]:
    from sqlalchemy import text

    target = max(2, round(total / 40_000))  # a rare tag: ~25 images at 1M, a few at 100k
    with engine.connect() as conn:
        rare = conn.execute(
            text(
                "SELECT name FROM tags WHERE team_id = :team AND name_key <> :other "
                "AND use_count BETWEEN :lo AND :hi ORDER BY abs(use_count - :target), name "
                "LIMIT 1"
            ),
            {
                "team": TEAM,
                "other": OTHER_ONLY_TAG,
                "lo": max(1, target // 2),
                "hi": target * 2,
                "target": target,
            },
        ).scalar()
    if rare is None:
        raise BenchError("no rare tag in the seeded data")
    second = VOCAB.tags[300]  # ~0.1 % of images
    to_day = END.date()
    from_day = to_day - timedelta(days=90)
    return [
        Shape("common_tag", "tag:events", MEMBER, naive=("tags", ["events"])),
        Shape("rare_tag", f"tag:{rare}", MEMBER, naive=("tags", [rare])),
        Shape(
            "two_tags",
            f"tag:keynote tag:{second}",
            MEMBER,
            naive=("tags", ["keynote", second]),
        ),
        Shape("free_word", "rehearsal", MEMBER, naive=("word", "rehearsal")),
        Shape("phrase", '"launch party"', MEMBER, naive=("phrase", "launch party")),
        Shape(
            "category_90_days",
            f"category:Events after:{from_day - timedelta(days=1)} before:{to_day}",
            MEMBER,
            naive=("category_range", "Events", from_day, to_day),
        ),
        Shape(
            "misspelled_tag",
            "tag:keynoet",
            MEMBER,
            naive=("misspelled", "keynoet"),
            expect_corrected={"keynoet": "keynote"},
        ),
        Shape("page_50", "photo", MEMBER, page=50, naive=("word", "photo")),
        Shape("guest_visibility", "tag:events", GUEST, naive=("tags", ["events"])),
        Shape(
            "mostly_private_tag",
            f"tag:{MOSTLY_PRIVATE_TAG}",
            MEMBER,
            naive=("tags", [MOSTLY_PRIVATE_TAG]),
        ),
        Shape("tag_suggestions", "fal", MEMBER, naive=("suggest", "fal"), kind="suggest"),
        Shape("guest_tag_suggestions", "fal", GUEST, naive=("suggest", "fal"), kind="suggest"),
    ]


@dataclass
class Library:
    """The app's pieces the slash command uses, in this process."""

    engine: Any
    factory: Any
    media: Any
    viewers: dict[str, Any]

    def run(self, shape: Shape, cursor: Any = None) -> Any:
        """What the app does for this shape: a search page, or tag suggestions."""
        if shape.kind == "suggest":
            from bot.details import suggest_tags

            with self.factory() as session:
                return suggest_tags(session, viewer=self.viewers[shape.user], typed=shape.text)
        return self.find(shape, cursor)

    def find(self, shape: Shape, cursor: Any = None) -> Any:
        from bot.finder import find
        from storage.search import parse

        return find(
            self.factory,
            query=parse(shape.text),
            viewer=self.viewers[shape.user],
            user_id=shape.user,
            is_admin=False,
            media=self.media,
            cursor=cursor,
            per_page=PER_PAGE,
        )


def memberships_map() -> dict[str, set[str]]:
    """Who is in which conversation (what the emulator answers conversations.members with)."""
    members: dict[str, set[str]] = {}
    for channel in VOCAB.public:
        members[channel] = {ADMIN, MEMBER, "UBOT"}
    for channel in VOCAB.private:
        members[channel] = {ADMIN, "UBOT"}
    for channel in MEMBER_PRIVATE:
        members[channel].add(MEMBER)
    for channel in GUEST_CHANNELS:
        members[channel].add(GUEST)
    return members


class BenchDirectory:
    """The workspace search.py seeded, as `bot.ports.Directory`: three people who act (the
    admin, the member, the guest), the uploaders (named on the image page), who is in
    which channel."""

    def __init__(self) -> None:
        self._members = memberships_map()
        self._names = {ADMIN: "Ana Admin", MEMBER: "Max Member", GUEST: "Gil Guest"}
        self._names.update(dict(VOCAB.uploaders))

    def person(self, team_id: str, user_id: str) -> Any:
        from bot.ports import UNKNOWN_PERSON, PersonFacts

        if team_id != TEAM or user_id not in self._names:
            return UNKNOWN_PERSON
        return PersonFacts(
            is_admin=user_id == ADMIN,
            is_guest=user_id == GUEST,
            is_bot=False,
            deleted=False,
            name=self._names[user_id],
        )

    def guests(self, team_id: str) -> frozenset[str] | None:
        return frozenset({GUEST})

    def members(self, team_id: str, conversation_id: str) -> frozenset[str] | None:
        return frozenset(self._members.get(conversation_id, ()))

    def conversations_of(self, team_id: str, user_id: str) -> frozenset[str] | None:
        return frozenset(c for c, people in self._members.items() if user_id in people)

    def is_private(self, team_id: str, conversation_id: str) -> bool | None:
        return conversation_id in VOCAB.private

    def everyone(self, team_id: str) -> list[tuple[str, Any]] | None:
        return [(user_id, self.person(team_id, user_id)) for user_id in sorted(self._names)]

    def conversation_name(self, team_id: str, conversation_id: str) -> str | None:
        return conversation_id.lower() if conversation_id in self._members else None

    def app_is_in(self, team_id: str, conversation_id: str) -> bool | None:
        return conversation_id in self._members

    def conversations_named(self, team_id: str, user_id: str) -> dict[str, str] | None:
        mine = self.conversations_of(team_id, user_id) or frozenset()
        return {c: c.lower() for c in mine}


def open_library(url: str, media_dir: Path) -> Library:
    from bot.people import People
    from storage.db import make_engine, make_session_factory
    from storage.media import LocalStore

    engine = make_engine(url)
    factory = make_session_factory(engine)
    media = LocalStore(media_dir, signing_key=b"bench-search", public_base_url=MEDIA_BASE_URL)
    people = People(BenchDirectory(), factory, configured_admins=frozenset({ADMIN}))
    viewers = {user: people.viewer(TEAM, user) for user in (MEMBER, GUEST)}
    if viewers[MEMBER].channels != frozenset(MEMBER_PRIVATE):
        raise BenchError(f"member viewer has {sorted(viewers[MEMBER].channels)}")
    if not viewers[GUEST].is_guest or viewers[GUEST].channels != frozenset(GUEST_CHANNELS):
        raise BenchError(f"guest viewer is {viewers[GUEST]}")
    return Library(engine, factory, media, viewers)


def cursor_for(library: Library, shape: Shape) -> Any:
    """The cursor of page `shape.page`: walk the Older links from the first page."""
    cursor = None
    for n in range(1, shape.page):
        page = library.find(shape, cursor)
        if page.older is None:
            raise BenchError(f"{shape.name}: only {n} pages")
        cursor = page.older
    return cursor


def check_suggestions(library: Library, shape: Shape, tags: list[str]) -> None:
    """Some tags offered, and each is on an image the viewer may see (the planted private
    tag never is)."""
    from sqlalchemy import select

    from storage.models import Image
    from storage.search import _has_any_tag, tag_key, visible_to

    viewer = library.viewers[shape.user]
    if not tags:
        raise BenchError(f"{shape.name}: no tags offered for {shape.text!r}")
    postgres = library.engine.dialect.name == "postgresql"
    with library.factory() as session:
        for tag in tags:
            has = _has_any_tag([tag_key(tag)], postgres=postgres)
            seen = session.scalar(select(Image.id).where(visible_to(viewer), has).limit(1))
            if seen is None:
                raise BenchError(f"{shape.name}: offered {tag!r}, on no image {shape.user} sees")


def check_results(library: Library, shape: Shape, page: Any) -> None:
    """Every result is the team's, visible to the viewer, and the count is plausible."""
    from sqlalchemy import select

    from storage.models import Image

    if shape.kind == "suggest":
        check_suggestions(library, shape, page)
        return
    viewer = library.viewers[shape.user]
    ids = [r.image_id for r in page.results]
    if not ids:
        raise BenchError(f"{shape.name}: no results for {shape.text!r}")
    with library.factory() as session:
        rows = session.execute(
            select(Image.id, Image.team_id, Image.channel_id, Image.channel_private).where(
                Image.id.in_(ids)
            )
        ).all()
    for image_id, team, channel, private in rows:
        if team != TEAM:
            raise BenchError(f"{shape.name}: image {image_id} of team {team} in the results")
        if (viewer.is_guest or private) and channel not in viewer.channels:
            raise BenchError(f"{shape.name}: image {image_id} from {channel} is not visible")
    if shape.expect_corrected and page.corrected_tags != shape.expect_corrected:
        raise BenchError(f"{shape.name}: corrected {page.corrected_tags}")


def check_isolation(library: Library) -> None:
    """The other team's own tag finds nothing for this team (and something for its own);
    without typo correction, which could rightly pick one of this team's tags."""
    from dataclasses import replace

    from storage.search import parse, search_images

    query = parse(f"tag:{OTHER_ONLY_TAG}")
    viewer = library.viewers[MEMBER]
    with library.factory() as session:
        ours = search_images(session, query, viewer=viewer, correct_tags=False)
        theirs = search_images(
            session, query, viewer=replace(viewer, team_id=OTHER_TEAM), correct_tags=False
        )
    if ours.total or not theirs.total:
        raise BenchError(
            f"team isolation: {ours.total} for {TEAM}, {theirs.total} for {OTHER_TEAM}"
        )
    info(f"isolation: tag:{OTHER_ONLY_TAG} finds 0 for {TEAM}, {theirs.total} for {OTHER_TEAM}")
    from bot.details import suggest_tags

    with library.factory() as session:
        for user in (MEMBER, GUEST):
            viewer = library.viewers[user]
            secret = search_images(
                session, parse(f"tag:{PRIVATE_TAG}"), viewer=viewer, correct_tags=False
            )
            offered = suggest_tags(session, viewer=viewer, typed=PRIVATE_TAG[:4])
            if secret.total or PRIVATE_TAG in offered:
                raise BenchError(f"{user} sees the private tag {PRIVATE_TAG}: {offered}")
        insider = replace(library.viewers[MEMBER], channels=frozenset(VOCAB.private))
        if PRIVATE_TAG not in suggest_tags(session, viewer=insider, typed=PRIVATE_TAG[:4]):
            raise BenchError(f"{PRIVATE_TAG} is not offered even to its channel's members")
    info(f"visibility: {PRIVATE_TAG} neither found nor offered outside its channel")


def time_shape(library: Library, shape: Shape, *, runs: int, warmup: int) -> list[float]:
    cursor = cursor_for(library, shape)
    page = None
    for _ in range(warmup):
        page = library.run(shape, cursor)
    check_results(library, shape, page)
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        library.run(shape, cursor)
        timings.append((time.perf_counter() - started) * 1000)
    if shape.kind == "suggest":
        found = f"{len(page)} tags offered ({', '.join(page[:3])}, ...)"
    else:
        found = f"{page.total:,}" + ("+" if page.total > 100 else "") + " found"
    info(
        f"{shape.name}: {shape.text!r} as {shape.user}, page {shape.page}: {found}; "
        f"p50 {percentile(timings, 50):.2f} ms, p95 {percentile(timings, 95):.2f} ms "
        f"({runs} runs)"
    )
    return timings


# --------------------------------------------------------------------------------------------
# The naive baseline: ILIKE over a join, OFFSET paging, no index scans


NAIVE_SELECT = (
    "SELECT i.id, i.title, i.file_name, i.tags, c.name AS category, i.sort_at, i.uploader_id, "
    "i.status, i.storage_key, i.slack_file_id FROM images i "
    "LEFT JOIN categories c ON c.id = i.category_id WHERE "
)


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def naive_where(conn: Any, shape: Shape, viewer: Any) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {
        "team": viewer.team_id,
        "statuses": ["approved", "pending", "draft"],
        "channels": sorted(viewer.channels),
    }
    where = [
        "i.team_id = %(team)s",
        "i.storage_key IS NOT NULL",
        "i.status = ANY(%(statuses)s::text[])",
        "i.channel_id = ANY(%(channels)s::text[])"
        if viewer.is_guest
        else "(NOT i.channel_private OR i.channel_id = ANY(%(channels)s::text[]))",
    ]
    kind = shape.naive[0]
    if kind == "misspelled":
        # The naive way to forgive a typo: the whole vocabulary into Python, then difflib.
        vocabulary = [
            row[0]
            for row in _run_naive(
                conn,
                "SELECT name_key FROM tags WHERE team_id = %(team)s AND use_count > 0",
                {"team": viewer.team_id},
            )
        ]
        close = difflib.get_close_matches(shape.naive[1].casefold(), vocabulary, n=1, cutoff=0.6)
        kind, wanted = "tags", close[:1] or [shape.naive[1]]
    else:
        wanted = shape.naive[1]
    if kind == "tags" and not wanted:
        pass  # suggestions: every visible image's tags
    elif kind == "tags":
        ors = []
        for n, tag in enumerate(wanted):
            params[f"tag{n}"] = tag.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            ors.append(f"t ILIKE %(tag{n})s")
        where.append(f"EXISTS (SELECT 1 FROM unnest(i.tags) AS t WHERE {' OR '.join(ors)})")
    elif kind in ("word", "phrase"):
        params["like"] = _like(wanted)
        params["prefix"] = _like(wanted)[1:]
        text_match = [
            "i.title ILIKE %(like)s",
            "i.description ILIKE %(like)s",
            "i.uploader_name ILIKE %(like)s",
            "EXISTS (SELECT 1 FROM unnest(i.tags) AS t WHERE t ILIKE %(like)s)",
        ]
        if kind == "word":
            text_match.append("c.name ILIKE %(prefix)s")
        where.append("(" + " OR ".join(text_match) + ")")
    elif kind == "category_range":
        _, name, first, last = shape.naive
        params.update(
            category=name,
            after=datetime.combine(first, datetime.min.time(), tzinfo=UTC),
            before=datetime.combine(last, datetime.min.time(), tzinfo=UTC),
        )
        where += ["c.name ILIKE %(category)s", "i.sort_at >= %(after)s", "i.sort_at < %(before)s"]
    else:
        raise BenchError(f"no naive form for {shape.name}")
    return " AND ".join(where), params


def _sqlite_sql(statement: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The naive Postgres SQL above, said in SQLite: lists spelled out, LIKE (which is
    case-insensitive there) for ILIKE, json_each for unnest, `NOT INDEXED` for the planner
    settings, :name parameters, datetimes as SQLAlchemy stores them."""
    params = dict(params)

    def spell_out(found: re.Match[str]) -> str:
        column, name = found.group(1), found.group(2)
        values = params.pop(name)
        for n, value in enumerate(values):
            params[f"{name}_{n}"] = value
        listed = ", ".join(f"%({name}_{n})s" for n in range(len(values))) or "NULL"
        return f"{column} IN ({listed})"

    statement = re.sub(r"(\S+) = ANY\(%\((\w+)\)s::text\[\]\)", spell_out, statement)
    statement = statement.replace("unnest(i.tags) AS t", "json_each(i.tags) AS t")
    statement = re.sub(r"\bt ILIKE", "t.value ILIKE", statement)
    statement = re.sub(r"GROUP BY t\b", "GROUP BY t.value", statement)
    statement = statement.replace("SELECT t, count(*)", "SELECT t.value, count(*)")
    statement = re.sub(r"ILIKE (%\(\w+\)s)", r"LIKE \1 ESCAPE '\\'", statement)
    statement = statement.replace("FROM images i", "FROM images i NOT INDEXED")
    statement = re.sub(r"%\((\w+)\)s", r":\1", statement)
    for key, value in params.items():
        if isinstance(value, datetime):
            params[key] = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return statement, params


def _run_naive(conn: Any, statement: str, params: dict[str, Any]) -> Any:
    if conn.dialect.name == "sqlite":
        statement, params = _sqlite_sql(statement, params)
    return conn.exec_driver_sql(statement, params)


def naive_page(conn: Any, shape: Shape, viewer: Any) -> list[Any]:
    """One page the naive way: the page by OFFSET, and the same capped count as ours (or,
    for suggestions, the tags of every visible image grouped and counted)."""
    if shape.kind == "suggest":
        where, params = naive_where(conn, replace(shape, naive=("tags", [])), viewer)
        params["prefix"] = _like(shape.naive[1])[1:]
        rows = _run_naive(
            conn,
            f"SELECT t, count(*) FROM images i, unnest(i.tags) AS t WHERE {where} "
            "AND t ILIKE %(prefix)s GROUP BY t ORDER BY 2 DESC, 1 LIMIT 20",
            params,
        ).all()
        return [row[0] for row in rows]
    where, params = naive_where(conn, shape, viewer)
    params["offset"] = (shape.page - 1) * PER_PAGE
    rows = _run_naive(
        conn,
        NAIVE_SELECT + where + f" ORDER BY i.sort_at DESC, i.id DESC LIMIT {PER_PAGE + 1} "
        "OFFSET %(offset)s",
        params,
    ).all()
    _run_naive(
        conn,
        "SELECT count(*) FROM (SELECT 1 FROM images i LEFT JOIN categories c "
        f"ON c.id = i.category_id WHERE {where} LIMIT 1001) AS capped",
        params,
    ).scalar()
    _run_naive(
        conn, "SELECT id, name FROM categories WHERE team_id = %(team)s", {"team": viewer.team_id}
    ).all()
    return [row[0] for row in rows[:PER_PAGE]]


@contextlib.contextmanager
def naive_connection(engine: Any) -> Iterator[Any]:
    if engine.dialect.name == "sqlite":  # `NOT INDEXED` in the SQL does it there
        with engine.connect() as conn:
            yield conn
            conn.rollback()
        return
    with engine.connect() as conn:
        for setting in ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan"):
            conn.exec_driver_sql(f"SET {setting} = off")
        conn.exec_driver_sql(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
        conn.commit()  # a SET inside a transaction that is rolled back would be undone
        try:
            yield conn
        finally:
            conn.rollback()
            conn.exec_driver_sql("RESET ALL")
            conn.commit()


def time_naive(
    library: Library, shape: Shape, *, runs: int, ours: list[int]
) -> tuple[list[float], bool]:
    viewer = library.viewers[shape.user]
    timings: list[float] = []
    budget_until = time.perf_counter() + BASELINE_BUDGET_S
    with naive_connection(library.engine) as conn:
        same = naive_page(conn, shape, viewer) == ours  # also the warm-up
        conn.rollback()
        for n in range(runs):
            if n >= BASELINE_MIN_RUNS and time.perf_counter() > budget_until:
                break
            started = time.perf_counter()
            naive_page(conn, shape, viewer)
            conn.rollback()
            timings.append((time.perf_counter() - started) * 1000)
    info(
        f"  baseline: p50 {percentile(timings, 50):.1f} ms ({len(timings)} runs); same page "
        f"as ours: {'yes' if same else 'no'}"
    )
    return timings, same


# --------------------------------------------------------------------------------------------
# Query plans of what the app runs


def explain(library: Library, shape: Shape) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of every statement one `find` (or tag suggestion) sends,
    to stderr; on SQLite, EXPLAIN QUERY PLAN."""
    from sqlalchemy import event

    cursor = cursor_for(library, shape)
    captured: list[tuple[str, Any]] = []

    def record(conn: Any, cur: Any, statement: str, parameters: Any, *args: Any) -> None:
        captured.append((statement, parameters))

    event.listen(library.engine, "before_cursor_execute", record)
    try:
        library.run(shape, cursor)
    finally:
        event.remove(library.engine, "before_cursor_execute", record)
    if library.engine.dialect.name == "sqlite":
        with library.engine.connect() as conn:
            for n, (statement, parameters) in enumerate(captured, 1):
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
                plan = "\n".join(f"    {row[-1]}" for row in rows)
                info(f"--- {shape.name}, statement {n}:\n    {statement}\n{plan}")
        return
    raw = library.engine.raw_connection()
    summary = []
    try:
        cur = raw.cursor()
        for n, (statement, parameters) in enumerate(captured, 1):
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            lines = [row[0] for row in cur.fetchall()]
            plan = "\n".join(f"    {line}" for line in lines)
            sql_text = cur.mogrify(statement, parameters).decode()
            info(f"--- {shape.name}, statement {n}:\n    {sql_text}\n{plan}")
            took = next((x.split(":")[1].strip() for x in lines if "Execution Time" in x), "?")
            summary.append(f"{_statement_kind(statement)} {took}")
        raw.rollback()
    finally:
        raw.close()
    info(f"explain {shape.name}: " + ", ".join(summary))


def _statement_kind(statement: str) -> str:
    if "count(*)" in statement:
        return "capped count"
    if "sum(tag_uses.uses)" in statement:
        return "tag counts"
    if "ORDER BY" in statement and "sort_at" in statement:
        return "page ids + count"
    if "images.id IN" in statement:
        return "page rows"
    if "similarity(" in statement:
        return "closest tag"
    if "FROM tags" in statement:
        return "tag lookup"
    return "categories" if "FROM categories" in statement else "other"


# --------------------------------------------------------------------------------------------
# The whole slash command through the running app


def start_slack() -> Any:
    from tests.fakes.slack_api import SlackEmulator

    slack = SlackEmulator(team_id=TEAM, team_name="Bench Marketing")
    slack.add_user(ADMIN, "ana", real_name="Ana Admin", is_admin=True)
    slack.add_user(MEMBER, "max", real_name="Max Member")
    slack.add_user(GUEST, "gil", real_name="Gil Guest", is_restricted=True)
    for channel, members in memberships_map().items():
        slack.add_channel(
            channel,
            channel.lower(),
            is_private=channel in VOCAB.private,
            members=sorted(members),
        )
    return slack.start()


def command_latencies(
    url: str, shapes: list[Shape], *, commands: int, work: Path
) -> tuple[list[float], dict[str, list[float]]]:
    from tests.conftest import AppProcess, app_env

    slack = start_slack()
    env = app_env(database_url=url, slack=slack, media_dir=work / "media")
    env.update({"CLOUDINARY_URL": "", "PUBLIC_BASE_URL": MEDIA_BASE_URL, "LOG_LEVEL": "WARNING"})
    app = AppProcess(["serve"], env, work / "app.log")
    # A page further on is a button, and suggestions an options request: not commands.
    mix = [s for s in shapes if s.page == 1 and s.kind == "search"]
    try:
        try:
            app.start(timeout=APP_START_TIMEOUT_S)
        except AssertionError as exc:
            raise BenchError(f"the app did not start: {exc}") from None
        sender = app.sender()

        def one(shape: Shape) -> float:
            fields = slack.slash_command(
                "/images", user=shape.user, channel=COMMAND_CHANNEL, text=shape.text
            )
            response_url = fields["response_url"]
            sent = time.time()
            reply = sender.command(**fields)
            if reply.status != 200:
                raise BenchError(f"/images {shape.text}: HTTP {reply.status} {reply.body[:200]!r}")
            try:
                calls = slack.wait_for(
                    "response_url",
                    predicate=lambda c: c.params.get("_url") == response_url and c.status == 200,
                    timeout=RESPONSE_TIMEOUT_S,
                )
            except AssertionError:
                raise BenchError(
                    f"/images {shape.text}: no accepted response_url answer in "
                    f"{RESPONSE_TIMEOUT_S:.0f} s\n{app.logs()}"
                ) from None
            answer = str(calls[0].params.get("text", ""))
            if answer.startswith("No images") or "went wrong" in answer:
                raise BenchError(f"/images {shape.text}: answered {answer[:200]!r}")
            return (calls[0].at - sent) * 1000

        for shape in mix * 2:  # warm-up: connections, caches, the first users.info
            one(shape)
        latencies: list[float] = []
        per_shape: dict[str, list[float]] = {s.name: [] for s in mix}
        for n in range(commands):
            shape = mix[n % len(mix)]
            latency = one(shape)
            latencies.append(latency)
            per_shape[shape.name].append(latency)
        refused = [c for c in slack.calls_to("response_url") if c.status != 200]
        if refused:
            info(f"note: {len(refused)} response_url posts refused by the emulator")
        return latencies, per_shape
    finally:
        app.stop()
        slack.stop()


# --------------------------------------------------------------------------------------------


@dataclass
class Measured:
    """One database's figures: per shape ours and the baseline, and the slash command."""

    prefix: str  # "" for Postgres (the names bench/README.md has always used), "sqlite_"
    images: int
    goal_ms: float
    seed_s: float | None
    shapes: list[Shape]
    ours: dict[str, list[float]]
    naive: dict[str, list[float]]
    latencies: list[float]
    per_shape: dict[str, list[float]]


def measure(
    url: str,
    total: int,
    seed_s: float | None,
    *,
    prefix: str,
    goal_ms: float,
    args: argparse.Namespace,
    runs: int,
    warmup: int,
    baseline_runs: int,
    commands: int,
) -> Measured:
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        work = Path(tmp)
        library = open_library(url, work / "media")
        try:
            shapes = shapes_for(library.engine, total)
            check_isolation(library)
            ours: dict[str, list[float]] = {}
            naive: dict[str, list[float]] = {}
            for shape in shapes:
                ours[shape.name] = time_shape(library, shape, runs=runs, warmup=warmup)
                answer = library.run(shape, cursor_for(library, shape))
                first = answer if shape.kind == "suggest" else [r.image_id for r in answer.results]
                naive[shape.name], _ = time_naive(library, shape, runs=baseline_runs, ours=first)
            over = [s for s in shapes if percentile(ours[s.name], 95) >= goal_ms]
            for shape in shapes if args.explain else over:
                explain(library, shape)
        finally:
            library.engine.dispose()
        info(f"slash commands: {commands} timed, one at a time, after {2 * 9} warm-up")
        latencies, per_shape = command_latencies(url, shapes, commands=commands, work=work)
    return Measured(prefix, total, goal_ms, seed_s, shapes, ours, naive, latencies, per_shape)


def report(m: Measured) -> None:
    """Figures to stdout; per-shape command latencies and goal verdicts to stderr."""
    figure(f"{m.prefix}images", m.images, 0)
    if m.seed_s is not None:
        figure(f"{m.prefix}seed_s", m.seed_s, 1)
    for shape in m.shapes:
        p50 = percentile(m.ours[shape.name], 50)
        base = percentile(m.naive[shape.name], 50)
        figure(f"{m.prefix}p50_ms_{shape.name}", p50, 2)
        figure(f"{m.prefix}p95_ms_{shape.name}", percentile(m.ours[shape.name], 95), 2)
        figure(f"{m.prefix}baseline_p50_ms_{shape.name}", base, 1)
        ratio = base / p50 if p50 > 0 else float("nan")
        figure(f"{m.prefix}baseline_ratio_{shape.name}", ratio, 1)
    figure(f"{m.prefix}command_p50_ms", percentile(m.latencies, 50), 1)
    figure(f"{m.prefix}command_p95_ms", percentile(m.latencies, 95), 1)
    for name, values in m.per_shape.items():
        info(
            f"{m.prefix}command {name}: p50 {percentile(values, 50):.1f} ms, "
            f"p95 {percentile(values, 95):.1f} ms ({len(values)})"
        )
    for shape in m.shapes:
        p95 = percentile(m.ours[shape.name], 95)
        verdict = "met" if p95 < m.goal_ms else "NOT met"
        info(f"goal {m.prefix}p95_ms_{shape.name} < {m.goal_ms:.0f}: {verdict} ({p95:.2f})")
    p95 = percentile(m.latencies, 95)
    verdict = "met" if p95 < GOAL_COMMAND_MS else "NOT met"
    info(f"goal {m.prefix}command_p95_ms < {GOAL_COMMAND_MS:.0f}: {verdict} ({p95:.1f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 / 20,000, fewer runs")
    parser.add_argument("--images", type=int, help="Postgres images (default 1,000,000)")
    parser.add_argument("--sqlite-images", type=int, help="SQLite images (default 100,000)")
    parser.add_argument("--only", choices=("postgres", "sqlite"), help="one database only")
    parser.add_argument("--reseed", action="store_true", help="seed again even if seeded")
    parser.add_argument("--database-url", help="a Postgres database to use instead")
    parser.add_argument("--sqlite-path", help="the SQLite file (default bench/.cache/...)")
    parser.add_argument("--runs", type=int, help="timed runs per shape (default 200; quick 100)")
    parser.add_argument("--baseline-runs", type=int, help="naive runs per shape (20; quick 5)")
    parser.add_argument("--commands", type=int, help="timed slash commands (240; quick 200)")
    parser.add_argument("--explain", action="store_true", help="plans of every shape (stderr)")
    args = parser.parse_args(argv)
    total = args.images or (100_000 if args.quick else 1_000_000)
    sqlite_total = args.sqlite_images or (20_000 if args.quick else SQLITE_IMAGES)
    runs = args.runs or (100 if args.quick else 200)
    warmup = 10 if args.quick else 20
    baseline_runs = args.baseline_runs or (5 if args.quick else 20)
    commands = args.commands or (200 if args.quick else 240)
    sizes_ok = all(1_000 <= n <= 10_000_000 for n in (total, sqlite_total))
    if not (sizes_ok and 1 <= runs <= 10_000 and 1 <= baseline_runs <= 1000):
        parser.error("--images 1000..10000000, --runs 1..10000, --baseline-runs 1..1000")
    if not 1 <= commands <= 10_000:
        parser.error("--commands 1..10000")
    timing = {"runs": runs, "warmup": warmup, "baseline_runs": baseline_runs, "commands": commands}

    started = time.perf_counter()
    results: list[Measured] = []
    try:
        if args.only != "sqlite":
            url, seed_s = prepare(args, total)
            results.append(
                measure(url, total, seed_s, prefix="", goal_ms=GOAL_MS, args=args, **timing)
            )
        if args.only != "postgres":
            url, seed_s = prepare_sqlite(args, sqlite_total)
            results.append(
                measure(
                    url,
                    sqlite_total,
                    seed_s,
                    prefix="sqlite_",
                    goal_ms=GOAL_MS_SQLITE,
                    args=args,
                    **timing,
                )
            )
    except BenchError as exc:
        info(f"error: {exc}")
        return 1
    for measured in results:
        report(measured)
    info(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
