"""Chaos soak (issue 12, part 3): two web processes and two workers on a throwaway Postgres,
people using the library the whole time, faults on a schedule, and at the end the counts
that must all be zero.

    .venv/bin/python bench/soak.py            # 20 minutes of traffic, then the drain
    .venv/bin/python bench/soak.py --quick    # 2 minutes (what CI runs)

The fleet (bench/fleet.py) runs the processes against the Slack and Cloudinary emulators in
this process; the faults (bench/chaos.py) come one at a time: Slack answering 429 with
Retry-After, then 503; Cloudinary answering 503, then hanging past the app's timeout;
Postgres stopped and started; a web process and a worker killed with SIGKILL and restarted.
Meanwhile, at a bounded rate, people post images (now and then delivered twice, as Slack's
retries), add details from the prompt, ask for approval, decide from the approver's card
(sometimes a double click landing on both processes), search with /images, open web pages
and call the JSON API. Details reminders are made due after 30 s and two `worker --once`
race to send them every 30 s (every minute in the full run, beside the workers' own).

Figures go to stdout as `name: value` lines; the faults, progress and every error a person
saw (with the fault that explains it, or UNEXPLAINED) go to stderr. The exit status is 1
when a count is not zero (lost or duplicated images and decisions, reminders sent twice,
stuck jobs, unexplained errors), when the ack p99 outside the fault windows is 100 ms or
more, or (full run only) when a process's RSS grew 10 % or more from its first minute to its
last; 2 when the soak cannot run here (no initdb/pg_ctl). Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.chaos import GRACE_S, Chaos, Window, plan  # noqa: E402
from bench.fleet import (  # noqa: E402
    APPROVERS,
    CHANNEL,
    Database,
    Expected,
    Fleet,
    FleetSampler,
    exactly_once,
    make_images,
    percentile,
    postgres_database,
    prompt_click,
    start_emulators,
    watch_channel,
)
from bench.ingest import ADMIN, MB, POSTER, BenchError, info  # noqa: E402

DURATION_S = 1200.0
QUICK_DURATION_S = 120.0
RATE = 2.5  # people's actions a second, every kind together
SHARE = {"post": 4, "details": 3, "decide": 2, "search": 3, "web": 2, "api": 2}
ACTORS = 8  # threads acting for people; an action finds none free: skipped, and counted
DRAIN_S = {True: 150.0, False: 300.0}  # after the traffic, for the last jobs to settle
WAIT_S = 10.0  # for the app's answer to a person (a modal, a search result)
REMINDER_HOURS = 30 / 3600  # DETAILS_REMINDER_HOURS: due 30 s after the post
APPROVAL_REMINDER_S = 60.0  # APPROVAL_REMINDER_HOURS, in seconds
REMIND_EVERY_S = {True: 30.0, False: 60.0}  # two `worker --once` at once, this often
GOAL_P99_MS = 100.0
GOAL_RSS_GROWTH = 0.10
ERROR_MARKS = (":warning:", "went wrong", "try again")


@dataclass(frozen=True)
class Seen:
    """Something a person saw go wrong, when, through which door, and what it was."""

    at: float  # time.time()
    door: str  # "slack", "web", "api" or "worker" (bench.chaos.EXPLAINS)
    what: str


@dataclass(frozen=True)
class Ack:
    """One answer to Slack: the action's start and end (time.time()), how long the answer
    took, what it was and which process gave it."""

    start: float
    end: float
    ms: float
    what: str
    web: str


@dataclass
class Journal:
    """What the people did and saw; every list is appended to from the actor threads."""

    acks: list[Ack] = field(default_factory=list)
    errors: list[Seen] = field(default_factory=list)
    posted: list[str] = field(default_factory=list)  # file ids of messages Slack delivered
    messages: int = 0
    details: dict[int, str] = field(default_factory=dict)  # image id -> title saved
    decided: set[int] = field(default_factory=set)  # request ids with Approve answered 200
    done: Counter[str] = field(default_factory=Counter)
    skipped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, start: float, replies: list[Any], what: str) -> None:
        """The answers Slack got (a request with no HTTP answer has no ack time)."""
        end = time.time()
        with self.lock:
            self.acks += [
                Ack(start, end, r.elapsed_s * 1000, what, r.web) for r in replies if r.status
            ]

    def saw(self, what: str, at: float | None = None, door: str = "slack") -> None:
        with self.lock:
            self.errors.append(Seen(at or time.time(), door, what))


class People:
    """The people of the workspace, acting at random (seeded) through Slack, the web and the
    API. Each action is bounded by WAIT_S; it records what a person would notice."""

    def __init__(self, fleet: Fleet, slack: Any, file_ids: list[str], *, seed: int) -> None:
        self.fleet, self.slack, self.sender = fleet, slack, fleet.sender
        self.files = list(file_ids)
        self.journal = Journal()
        self.rng = random.Random(seed)
        self._lock = threading.Lock()
        self._prompts_taken: set[str] = set()
        self._cards_taken: set[str] = set()
        self.browser: Any = None
        self.api: Any = None

    def sign_in(self) -> None:
        """The web door through a one-time link (`python -m bot login-link`), the API with a
        personal access token (`python -m bot token create`), both for the admin."""
        from tests.web.conftest import Browser

        web = self.fleet.url(self.fleet.webs[0])
        line = run_cli(self.fleet, "login-link", "--user", ADMIN)
        token = line.rsplit("token=", 1)[-1].strip()
        self.browser = Browser(web)
        self.browser.get(f"/login/link?token={token}")
        signed = self.browser.post("/login/link", {"token": token})
        if signed.status != 200 or "/login" in signed.url:
            raise BenchError(f"web sign-in failed: {signed.status} {signed.text[:300]}")
        self.api = Browser(web)
        self.api.token = run_cli(self.fleet, "token", "create", "--user", ADMIN, "--name", "soak")

    def warm_up(self) -> None:
        """Every kind of action twice before the clock starts: a fresh process pays for its
        lazy imports and first connections once, and that is not what the soak measures.
        (Restarted processes pay it again inside their fault's window.)"""
        for kind in ["post", "post"] + list(SHARE) * 2:
            self.act(kind)
            time.sleep(0.5)
        with self.journal.lock:
            self.journal.acks.clear()

    def act(self, kind: str) -> None:
        {
            "post": self.post,
            "details": self.add_details,
            "decide": self.decide,
            "search": self.search,
            "web": self.open_page,
            "api": self.call_api,
        }[kind]()
        with self.journal.lock:
            self.journal.done[kind] += 1

    # -- Slack ----------------------------------------------------------------------------

    def post(self) -> None:
        """One message of 1 to 3 images; one in ten delivered again as Slack's retry."""
        with self._lock:
            count = min(len(self.files), self.rng.randint(1, 3))
            files, self.files = self.files[:count], self.files[count:]
            retries = 1 if self.rng.random() < 0.1 else 0
        if not files:
            return
        post = self.sender.make_post(self.slack, files)
        start = time.time()
        replies = self.sender.deliver(post.envelope, retries=retries)
        if not any(r.status == 200 for r in replies):
            # Slack's later retries (after 1 and 5 minutes): one more, a minute on.
            time.sleep(min(60.0, WAIT_S * 6))
            replies.append(self.sender.post_to(self.sender.next_web(), *_event(post.envelope)))
        self.journal.ack(start, replies, "message event")
        if any(r.status == 200 for r in replies):
            with self.journal.lock:
                self.journal.posted += files
                self.journal.messages += 1
        else:
            self.journal.saw(f"post of {files}: never answered 200 ({_statuses(replies)})", start)
        for companion in post.companions:
            self.journal.ack(time.time(), self.sender.deliver(companion), "file_shared event")

    def add_details(self) -> None:
        """The poster opens the modal from the oldest prompt not used yet and saves titles,
        tags and, for half of them, an approver."""
        from handlers.slack.details import ids as details_ids
        from tests.live import form_values

        prompt = self._take(self.slack.calls_to("chat.postEphemeral"), details_ids.ADD_DETAILS)
        if prompt is None:
            return
        value = prompt[0]
        image_ids = [int(i) for i in value.split(",")]
        start = time.time()
        payload = prompt_click(self.slack, action_id=details_ids.ADD_DETAILS, value=value)
        reply = self.sender.interactive(payload)
        self.journal.ack(start, [reply], "Add details click")
        view_id, why = (
            self._modal_for(payload["trigger_id"])
            if reply.status == 200
            else (
                None,
                _statuses([reply]),
            )
        )
        if view_id is None:
            self.journal.saw(f"Add details on images {value}: no modal ({why})", start)
            return
        titles = [f"Soak image {i}" for i in image_ids]
        approvers = [APPROVERS[0]] if self.rng.random() < 0.5 else []
        values = form_values(image_ids, titles=titles, tags=["soak"], approvers=approvers)
        start = time.time()
        reply = self.sender.interactive(
            self.slack.view_submission(user=POSTER, view_id=view_id, values=values)
        )
        self.journal.ack(start, [reply], "details submission")
        if reply.status != 200 or reply.body:
            self.journal.saw(f"details of {value} not saved: {reply.status} {reply.body[:200]!r}")
            return
        with self.journal.lock:
            self.journal.details.update(zip(image_ids, titles, strict=True))

    def decide(self) -> None:
        """The approver clicks Approve on the oldest card not clicked yet; one click in five
        reaches both web processes at once (a double click)."""
        from handlers.slack.approvals import ids as approval_ids

        card = self._take(self.slack.calls_to("chat.postMessage"), approval_ids.APPROVE)
        if card is None:
            return
        value, call = card
        if self.rng.random() < 0.15:
            return  # left waiting: its approver is reminded
        # On the card where Slack shows it: the DM and message the app's post created.
        payload = self.slack.block_action(
            user=APPROVERS[0],
            action_id=approval_ids.APPROVE,
            value=value,
            channel=call.response["channel"],
            message_ts=call.response["ts"],
        )
        live = self.fleet.live_webs()
        start = time.time()
        if len(live) > 1 and self.rng.random() < 0.2:
            replies = self.sender.at_once(payload, live[:2])
        else:
            replies = [self.sender.interactive(payload)]
        self.journal.ack(start, replies, "Approve click")
        if any(r.status == 200 for r in replies):
            with self.journal.lock:
                self.journal.decided.add(int(value))
        else:
            self.journal.saw(f"Approve on request {value}: {_statuses(replies)}", start)

    def search(self) -> None:
        """`/images <words>` and the answer at its response_url within WAIT_S."""
        from tests.fakes.signed import encode_command

        text = self.rng.choice(["soak", "status:approved", "soak image", "status:pending"])
        fields = self.slack.slash_command("/images", user=ADMIN, channel=CHANNEL, text=text)
        start = time.time()
        reply = self.sender.post_to(self.sender.next_web(), *encode_command(**fields))
        self.journal.ack(start, [reply], "/images command")
        if reply.status != 200:
            self.journal.saw(f"/images {text}: {_statuses([reply])}", start)
            return
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            answers = [
                c
                for c in self.slack.calls_to("response_url")
                if c.params.get("_url") == fields["response_url"] and c.status == 200
            ]
            if answers:
                return
            time.sleep(0.1)
        self.journal.saw(f"/images {text}: no answer within {WAIT_S:.0f} s", start)

    # -- the web and the API ----------------------------------------------------------------

    def open_page(self) -> None:
        path = self.rng.choice(["/", "/?q=soak", "/approvals", "/?q=status:approved"])
        self._get(self.browser, path, "web")

    def call_api(self) -> None:
        path = self.rng.choice(["/api/v1/images?q=soak", "/api/v1/tags", "/api/v1/approvals"])
        self._get(self.api, path, "api", {"Authorization": f"Bearer {self.api.token}"})

    def _get(
        self, client: Any, path: str, door: str, headers: dict[str, str] | None = None
    ) -> None:
        """GET `path` from a live web process (either: the session and the token work on
        both), as a person's browser or script would."""
        live = self.fleet.live_webs()
        if not live:
            return
        client.base_url = self.fleet.url(self.rng.choice(live))
        start = time.time()
        try:
            answer = client.request("GET", path, headers=headers)
        except OSError as exc:
            self.journal.saw(f"{door} GET {path}: {type(exc).__name__}: {exc}", start, door)
            return
        if answer.status != 200:
            said = f"{answer.status} {answer.text[:120]!r}"
            self.journal.saw(f"{door} GET {path}: {said}", start, door)

    # -- helpers -------------------------------------------------------------------------------

    def _take(self, calls: list[Any], action_id: str) -> tuple[str, Any] | None:
        """The value of `action_id`'s button in the oldest message Slack accepted that no
        action took yet (prompts and cards are each used once), and that call."""
        taken = self._prompts_taken if "details" in action_id else self._cards_taken
        for call in calls:
            if call.status != 200 or not (call.response or {}).get("ok"):
                continue
            for value in _button_values(call.params.get("blocks"), action_id):
                with self._lock:
                    if value not in taken:
                        taken.add(value)
                        return value, call
        return None

    def _modal_for(self, trigger: str) -> tuple[str | None, str]:
        """The view the app opened with `trigger` within WAIT_S, or None and what Slack
        answered the app's views.open (a fault), or that it never called it."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            calls = [
                c
                for c in self.slack.calls_to("views.open")
                if c.params.get("trigger_id") == trigger
            ]
            for call in calls:
                if call.status == 200 and (call.response or {}).get("ok"):
                    return str(call.response["view"]["id"]), ""
            if calls and not self._retrying(calls):
                last = calls[-1]
                error = last.fault or (last.response or {}).get("error")
                return None, f"views.open answered {last.status} ({error})"
            time.sleep(0.05)
        return None, f"no views.open within {WAIT_S:.0f} s"

    @staticmethod
    def _retrying(calls: list[Any]) -> bool:
        # slack_sdk retries a 429 (after Retry-After) up to three times.
        return calls[-1].status == 429 and len(calls) < 4


def _event(envelope: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
    from tests.fakes.signed import encode_event, retry_headers

    body, content_type = encode_event(envelope)
    return body, content_type, retry_headers(3, "http_error")


def _statuses(replies: list[Any]) -> str:
    return ", ".join(f"{r.web}: {r.status or r.error}" for r in replies) or "not sent"


def _button_values(blocks: Any, action_id: str) -> list[str]:
    return [
        str(element.get("value"))
        for block in blocks or []
        if isinstance(block, dict) and block.get("type") == "actions"
        for element in block.get("elements", [])
        if element.get("action_id") == action_id
    ]


def run_cli(fleet: Fleet, *args: str) -> str:
    """`python -m bot <args>` with the fleet's environment; its last line of stdout."""
    result = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        env=_process_env(fleet),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise BenchError(f"python -m bot {args[0]} failed: {result.stderr[-500:]}")
    return result.stdout.strip().splitlines()[-1]


def _process_env(fleet: Fleet) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CLOUDINARY"))}
    return {**env, **fleet.env, "PYTHONUNBUFFERED": "1"}


def remind_round(fleet: Fleet) -> list[str]:
    """Two `python -m bot worker --once` started together: both claim the reminders due
    (and any ingest due), as two schedulers firing at the same moment would. Returns how
    they failed (Postgres restarting under them, say)."""
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "bot", "worker", "--once"],
            cwd=ROOT,
            env=_process_env(fleet),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    problems = []
    for process in started:
        try:
            _, err = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
        if process.returncode:
            last = err.strip().splitlines()[-3:] if err.strip() else ["(nothing said)"]
            problems.append(f"worker --once exited {process.returncode}: {' / '.join(last)}")
    return problems


# --------------------------------------------------------------------------------------------
# The run


class FleetTargets:
    """What the faults act on (bench.chaos.Targets): kills take the fleet's processes of a
    role in turn."""

    def __init__(self, fleet: Fleet, slack: Any, cloudinary: Any, postgres: Any) -> None:
        self.fleet, self.slack, self.cloudinary, self.postgres = fleet, slack, cloudinary, postgres
        self._turns: Counter[str] = Counter()

    def kill_and_restart(self, role: str) -> str:
        names = self.fleet.webs if role == "web" else self.fleet.workers
        name = names[self._turns[role] % len(names)]
        self._turns[role] += 1
        self.fleet.kill(name)
        time.sleep(2.0)  # a crashed dyno is restarted after a moment
        self.fleet.restart(name)
        return name


def drive(people: People, fleet: Fleet, *, seconds: float, quick: bool, seed: int) -> list[str]:
    """People act at RATE a second for `seconds` (open loop: an action due while ACTORS are
    all busy is skipped and counted); a reminder round every REMIND_EVERY_S. Returns the
    soak's own failures (an action that raised: a bug in the bench, not the app)."""
    rng = random.Random(seed + 1)
    kinds, weights = list(SHARE), list(SHARE.values())
    free = threading.Semaphore(ACTORS)
    failures: list[str] = []
    rounds: list[threading.Thread] = []

    def act(kind: str) -> None:
        try:
            people.act(kind)
        except Exception as exc:
            failures.append(f"{kind}: {type(exc).__name__}: {exc}")
        finally:
            free.release()

    def remind() -> None:
        start = time.time()
        for problem in remind_round(fleet):
            people.journal.saw(problem, start, "worker")

    t0 = time.monotonic()
    every = REMIND_EVERY_S[quick]
    next_report, next_round = 30.0, every
    with ThreadPoolExecutor(ACTORS, thread_name_prefix="person") as pool:
        for n in range(int(seconds * RATE)):
            due = n / RATE
            time.sleep(max(0.0, t0 + due - time.monotonic()))
            if free.acquire(blocking=False):
                pool.submit(act, rng.choices(kinds, weights)[0])
            else:
                people.journal.skipped += 1
            if due >= next_round and len(rounds) < int(seconds / every):
                rounds.append(threading.Thread(target=remind, name="remind", daemon=True))
                rounds[-1].start()
                next_round += every
            if due >= next_report:
                info(f"  {due:4.0f} s: {dict(people.journal.done)}, live {fleet.live_webs()}")
                next_report += 30.0
    for thread in rounds:
        thread.join(timeout=150)
    return failures[:20]


def drain(db: Database, *, seconds: float) -> list[str]:
    """Wait (at most `seconds`) until every ingest job is stored or failed: retries after a
    fault wait out their backoff, and a killed run's job its one-minute lease. Returns the
    jobs still unsettled then (stuck)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        states = db.states()
        if not set(states) - {"stored", "failed"}:
            return []
        time.sleep(1.0)
    return [
        f"{file_id}: {state} since {changed:%H:%M:%S}, attempt {attempts}, {error}"
        for file_id, state, changed, attempts, error in db.query(
            "SELECT i.slack_file_id, j.state, j.updated_at, j.attempts, j.last_error "
            "FROM ingest_jobs j JOIN images i ON i.id = j.image_id "
            "WHERE j.state NOT IN ('stored', 'failed')"
        )
    ]


# --------------------------------------------------------------------------------------------
# The counts


def acks_outside(journal: Journal, windows: list[Window]) -> tuple[list[float], list[float]]:
    """How long the answers to Slack took (ms) when their action started and ended outside
    every fault window (and its grace), and the others; the slowest outside on stderr."""
    outside: list[Ack] = []
    inside: list[Ack] = []
    for ack in journal.acks:
        touched = any(w.start <= ack.end and ack.start <= w.end + GRACE_S for w in windows)
        (inside if touched else outside).append(ack)
    t0 = min((a.start for a in journal.acks), default=0.0)
    for ack in sorted(outside, key=lambda a: -a.ms)[:5]:
        when = f"at {ack.start - t0:.0f} s"
        info(f"slow ack outside faults: {ack.ms:.0f} ms, {ack.what} to {ack.web} {when}")
    return [a.ms for a in outside], [a.ms for a in inside]


def rss_growth(sampler: FleetSampler, *, quick: bool) -> dict[str, tuple[float, float, float]]:
    """Per process, its last incarnation (a killed process starts again): mean RSS (MB) over
    its first minute and its last, and the growth from one to the other. In the full run
    the first minute is the process's second one: its first is its warm-up (the imaging
    stack imported on its first ingest, connection pools and caches filled), once. The quick
    run has no minute to spare: its first and last 20 s, reported, not judged."""
    window_s, skip_s = (20.0, 0.0) if quick else (60.0, 60.0)
    out = {}
    for name, samples in sorted(sampler.samples.items()):
        pid = samples[-1][1] if samples else None
        mine = [(t, rss) for t, p, rss in samples if p == pid]
        if not mine:
            continue
        begin = mine[0][0] + skip_s
        first = [rss for t, rss in mine if begin <= t <= begin + window_s] or [mine[0][1]]
        last = [rss for t, rss in mine if t >= mine[-1][0] - window_s]
        a, b = sum(first) / len(first) / MB, sum(last) / len(last) / MB
        out[name] = (a, b, b / a - 1)
    return out


def reminders(db: Database, slack: Any) -> tuple[int, int, int, int]:
    """(details reminders Slack accepted, images stamped reminded with no reminder accepted,
    images reminded about more than once, approval reminders sent twice within one interval).

    A reminder names how many images it is about in its text, and up to 20 of their ids in
    its button: the images in accepted reminders, summed, must equal the images the database
    says were reminded about (each once), and no id may be in two of them."""
    from handlers.slack.details import ids as details_ids

    stamped = db.query("SELECT COUNT(*) FROM images WHERE details_reminded_at IS NOT NULL")
    visible: Counter[str] = Counter()
    accepted = named = 0
    nudges: dict[tuple[str, str], list[float]] = defaultdict(list)
    for call in slack.calls_to("chat.postMessage"):
        text = str(call.params.get("text") or "")
        if call.status != 200:
            continue
        if text.endswith("still without details"):
            accepted += 1
            named += int(text.split()[1]) if text.split()[1].isdigit() else 1
            for value in _button_values(call.params.get("blocks"), details_ids.ADD_DETAILS):
                visible.update(value.split(","))
        elif text.startswith(":bell: Reminder"):
            nudges[(str(call.params.get("channel")), text)].append(call.at)
    twice = max(named - stamped[0][0], sum(1 for n in visible.values() if n > 1))
    too_soon = sum(
        1
        for times in nudges.values()
        for a, b in zip(sorted(times), sorted(times)[1:], strict=False)
        if b - a < APPROVAL_REMINDER_S - 2
    )
    return accepted, max(0, stamped[0][0] - named), twice, too_soon


def slack_errors(slack: Any) -> tuple[list[Seen], Counter[str]]:
    """Error messages the app sent people in Slack (and Slack accepted), and the app's calls
    Slack refused for a reason of its own (an error code, not an injected fault); with the
    count of calls the faults refused, per method and status."""
    found, faulted = [], Counter[str]()
    for method in ("chat.postEphemeral", "chat.postMessage", "response_url"):
        for call in slack.calls_to(method):
            said = str(call.params.get("text") or "") + str(call.params.get("blocks") or "")
            if call.status == 200 and any(mark in said for mark in ERROR_MARKS):
                found.append(Seen(call.at, "slack", f"{method} to a person: {said[:160]!r}"))
    for call in list(slack.calls):
        if call.fault:
            faulted[f"{call.method} {call.status}"] += 1
        elif isinstance(call.response, dict) and call.response.get("ok") is False:
            error = call.response.get("error")
            found.append(Seen(call.at, "slack", f"Slack refused the app's {call.method}: {error}"))
    return found, faulted


def decisions(db: Database, decided: set[int]) -> tuple[int, int]:
    """(lost, duplicated): requests whose Approve was answered 200 but are not approved with
    a decided vote; extra decided votes or decision audit rows of one request."""
    state = dict(db.query("SELECT id, state FROM approval_requests"))
    votes = Counter(
        request
        for (request,) in db.query(
            "SELECT request_id FROM approval_votes WHERE decision IS NOT NULL"
        )
    )
    audits = Counter(
        int(detail["request"])
        for (detail,) in db.query(
            "SELECT detail FROM audit_events WHERE action IN ('approved', 'rejected')"
        )
    )
    lost = sum(1 for r in decided if state.get(r) != "approved" or votes[r] < 1)
    duplicated = sum(n - 1 for n in votes.values() if n > 1)
    duplicated += sum(n - 1 for n in audits.values() if n > 1)
    return lost, duplicated


def file_ids_of(db: Database, image_ids: list[int]) -> dict[int, str]:
    wanted = set(image_ids)
    return {i: f for i, f in db.query("SELECT id, slack_file_id FROM images") if i in wanted}


# --------------------------------------------------------------------------------------------
# Main


def figure(name: str, value: float, digits: int = 0) -> None:
    print(f"{name}: {value:.{digits}f}", flush=True)


def soak(
    server: Any, *, seconds: float, quick: bool, seed: int, keep_logs: Path | None
) -> list[str]:
    """One soak on the throwaway cluster `server`; the reasons it failed (none: passed).
    With `keep_logs`, every process's log is copied there at the end."""
    db = postgres_database(server)
    n_files = int(seconds * RATE * SHARE["post"] / sum(SHARE.values()) * 3) + 30
    slack, cloudinary, file_ids = start_emulators(make_images(n_files))
    hours = {
        "DETAILS_REMINDER_HOURS": f"{REMINDER_HOURS:.6f}",
        "APPROVAL_REMINDER_HOURS": f"{APPROVAL_REMINDER_S / 3600:.6f}",
    }
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        fleet = Fleet(
            database_url=db.url,
            slack=slack,
            cloudinary=cloudinary,
            work=Path(tmp),
            webs=2,
            workers=2,
            extra_env=hours,
        )
        targets = FleetTargets(fleet, slack, cloudinary, server)
        chaos = Chaos(targets, plan(seconds, quick=quick), info)
        rss = FleetSampler(fleet, every_s=1.0, limit_s=seconds + DRAIN_S[quick] + 300)
        try:
            watch_channel(fleet.env)
            fleet.start()
            people = People(fleet, slack, file_ids, seed=seed)
            people.sign_in()
            people.warm_up()
            info(f"{len(chaos.planned)} faults planned over {seconds:.0f} s at {RATE:g} actions/s")
            with rss:
                chaos.start(time.time())
                failures = drive(people, fleet, seconds=seconds, quick=quick, seed=seed)
                chaos.stop()
                left = drain(db, seconds=DRAIN_S[quick])
            fleet.stop()
            return report(db, people, chaos, rss, left, failures, quick=quick)
        except BenchError:
            chaos.stop()
            fleet.tail_logs()
            raise
        finally:
            chaos.stop()
            fleet.stop()
            if keep_logs is not None:
                keep(keep_logs, Path(tmp), rss)
            slack.stop()
            cloudinary.stop()
            db.cleanup()


MUST_BE_ZERO = (
    "images_lost",
    "images_duplicated",
    "images_ingested_twice",
    "jobs_stuck",
    "jobs_failed",
    "prompts_twice",
    "details_lost",
    "decisions_lost",
    "decisions_duplicated",
    "details_reminders_lost",
    "reminders_twice",
    "errors_unexplained",
)


def keep(folder: Path, work: Path, rss: FleetSampler) -> None:
    """The processes' logs, and every RSS sample (rss.csv: process, time, pid, bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    for log in work.glob("*.log"):
        shutil.copy(log, folder / log.name)
    lines = [
        f"{name},{t:.1f},{pid},{size}"
        for name, samples in sorted(rss.samples.items())
        for t, pid, size in samples
    ]
    (folder / "rss.csv").write_text("process,time,pid,rss\n" + "\n".join(lines) + "\n")


def report(
    db: Database,
    people: People,
    chaos: Chaos,
    rss: FleetSampler,
    left: list[str],
    failures: list[str],
    *,
    quick: bool,
) -> list[str]:
    """Print the figures, the faults and the errors people saw; the reasons the soak failed."""
    journal, slack = people.journal, people.slack
    for window in chaos.windows:
        info(f"fault {window.kind}: {window.end - window.start:.1f} s ({window.detail})")
    titles = file_ids_of(db, list(journal.details))
    expected = Expected(
        file_ids=journal.posted,
        messages=journal.messages,
        details={titles[i]: title for i, title in journal.details.items() if i in titles},
    )
    counts = exactly_once(db.url, slack, expected, cloudinary=chaos.targets.cloudinary)
    lost, duplicated = decisions(db, journal.decided)
    sent, unsent, twice, too_soon = reminders(db, slack)
    outside, inside = acks_outside(journal, chaos.windows)
    growth = rss_growth(rss, quick=quick)
    rows: list[tuple[str, float, int]] = [
        ("faults", len(chaos.windows), 0),
        *((f"actions_{kind}", n, 0) for kind, n in sorted(journal.done.items())),
        ("actions_skipped", journal.skipped, 0),
        ("images_posted", len(journal.posted), 0),
        ("images_lost", counts.images_lost, 0),
        ("images_duplicated", counts.images_duplicated + counts.images_unexpected, 0),
        ("images_ingested_twice", counts.ingested_twice + counts.uploads_twice, 0),
        ("jobs_stuck", len(left), 0),
        ("jobs_failed", counts.jobs_failed, 0),
        ("prompts_twice", counts.prompts_twice, 0),
        ("details_saved", len(journal.details), 0),
        ("details_lost", counts.details_lost, 0),
        ("decisions_made", len(journal.decided), 0),
        ("decisions_lost", lost, 0),
        ("decisions_duplicated", duplicated, 0),
        ("details_reminders_sent", sent, 0),
        ("details_reminders_lost", unsent, 0),
        ("reminders_twice", twice + too_soon, 0),
        *errors_seen(journal, slack, chaos),
        ("ack_p50_ms_outside_faults", percentile(outside, 50), 1),
        ("ack_p99_ms_outside_faults", percentile(outside, 99), 1),
        ("ack_p99_ms_in_faults", percentile(inside, 99), 1),
        ("acks_outside_faults", len(outside), 0),
    ]
    for name, (first, last, grew) in growth.items():
        rows += [(f"rss_mb_first_{name}", first, 1), (f"rss_mb_last_{name}", last, 1)]
        rows.append((f"rss_growth_pct_{name}", grew * 100, 1))
    for name, value, digits in rows:
        figure(name, value, digits)
    for line in left + counts.notes:
        info(line)

    values = {name: value for name, value, _ in rows}
    problems = [f"{name} {values[name]:.0f}" for name in MUST_BE_ZERO if values[name]]
    problems += chaos.failures + failures
    if not outside or percentile(outside, 99) >= GOAL_P99_MS:
        problems.append(f"ack p99 outside the faults {percentile(outside, 99):.1f} ms")
    grown = [f"{n} {g * 100:.1f} %" for n, (_, _, g) in growth.items() if g >= GOAL_RSS_GROWTH]
    if grown and not quick:
        problems.append("RSS grew: " + ", ".join(grown))
    return problems


def errors_seen(journal: Journal, slack: Any, chaos: Chaos) -> list[tuple[str, float, int]]:
    """Every error a person saw, on stderr with the fault that explains it (one that was on
    then and can fail that door) or UNEXPLAINED; the counts of both."""
    refused, faulted = slack_errors(slack)
    seen = sorted(journal.errors + refused, key=lambda s: s.at)
    unexplained = 0
    for item in seen:
        window = chaos.explain(item.at, item.door)
        unexplained += window is None
        info(f"person saw: {item.what} -- {'during ' + window.kind if window else 'UNEXPLAINED'}")
    info("calls the faults answered: " + ", ".join(f"{k} x{n}" for k, n in faulted.items()))
    return [("errors_seen", len(seen), 0), ("errors_unexplained", unexplained, 0)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 minutes instead of 20")
    parser.add_argument("--seconds", type=float, help="minutes of traffic, in seconds (60-1800)")
    parser.add_argument("--seed", type=int, default=12, help="the people's random choices")
    parser.add_argument("--keep-logs", type=Path, help="copy the processes' logs to this folder")
    args = parser.parse_args(argv)
    seconds = args.seconds or (QUICK_DURATION_S if args.quick else DURATION_S)
    if not 60 <= seconds <= 1800:
        parser.error("--seconds must be 60-1800")

    from tests.pg import throwaway_cluster

    server, source = throwaway_cluster()
    if server is None:
        info(f"SKIPPED: the soak needs a throwaway Postgres cluster of its own: {source}")
        return 2
    info(f"PostgreSQL: {source} (restarted by the soak)")
    started = time.perf_counter()
    try:
        problems = soak(
            server, seconds=seconds, quick=args.quick, seed=args.seed, keep_logs=args.keep_logs
        )
    except BenchError as exc:
        info(f"FAILED: {exc}")
        return 1
    finally:
        server.close()
    info(f"done in {time.perf_counter() - started:.0f} s")
    if problems:
        info("FAILED: " + "; ".join(problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
