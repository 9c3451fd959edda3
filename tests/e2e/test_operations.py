"""What an operator sees of the running app: /metrics after real signed requests and ingests,
summed over gunicorn's workers and closed to strangers; JSON log lines; /healthz naming the
dependency that is down; and retrying failed ingests from the command line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from prometheus_client.parser import text_string_to_metric_families
from psycopg2 import sql
from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url

from storage.db import session_scope
from storage.models import ApprovalRequest, IngestJob, IngestState
from tests.conftest import (
    ADMIN,
    POSTER,
    ROOT,
    TEAM,
    AppProcess,
    app_env,
    free_port,
)
from tests.fakes.cloudinary_api import CloudinaryEmulator
from tests.fakes.slack_api import SlackEmulator
from tests.live import Live, start_live, wait_until
from tests.pg import PostgresServer

METRICS_TOKEN = "scrape-token-0123456789abcdef"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def scrape(app: AppProcess, headers: dict[str, str] | None = None) -> Samples:
    status, body = get(app.url + "/metrics", headers)
    assert status == 200, body
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 for a labelled counter never incremented (it is not exported)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def health(app: AppProcess) -> tuple[int, dict[str, Any]]:
    status, body = get(app.url + "/healthz")
    return status, json.loads(body)


def job_states(live: Live) -> dict[str, int]:
    with session_scope(live.db.factory) as session:
        rows = session.execute(select(IngestJob.state, func.count()).group_by(IngestJob.state))
        return {str(state): int(count) for state, count in rows}


def first_image_id(live: Live) -> int:
    with session_scope(live.db.factory) as session:
        return int(session.scalar(select(func.min(IngestJob.image_id))) or 0)


def add_non_image(slack: SlackEmulator) -> None:
    """A file posing as a JPEG: its ingest fails for good ("not an image")."""
    slack.add_file(
        "F0NOTIMG",
        name="notes.jpg",
        content=b"not a picture",
        mimetype="image/jpeg",
        filetype="jpg",
        user=POSTER,
    )


def test_metrics_count_what_slack_sent_and_what_the_ingest_did(live: Live) -> None:
    good = live.post(live.add_jpeg("F0GOOD", seed=3))
    retried = live.sender.event(good, retry_num=1, retry_reason="http_timeout")
    add_non_image(live.slack)
    live.slack.inject("chat.postEphemeral", "error:channel_not_found")
    live.post("F0NOTIMG")
    forged = live.sender.post(json.dumps(good), content_type="application/json", signature="v0=0")
    live.command("help")
    assert (retried.status, forged.status) == (200, 401)
    wait_until(lambda: job_states(live) == {"stored": 1, "failed": 1}, what="both ingests settled")
    live.slack.wait_for("chat.postEphemeral", count=2)
    # The emulator records a call before it answers: the app counts the refusal a moment
    # after the test has seen the call.
    errors = "imglib_slack_api_errors_total"
    refused = {"method": "chat.postEphemeral", "status": "200", "error": "channel_not_found"}
    wait_until(lambda: value(scrape(live.app), errors, **refused) == 1, what="refusal counted")
    # A job waiting for its retry, posted two minutes ago, and a request for approval.
    later = live.db.clock() + timedelta(hours=1)
    image_id = first_image_id(live)
    with session_scope(live.db.factory) as session:
        session.execute(
            update(IngestJob)
            .where(IngestJob.state == IngestState.STORED)
            .values(
                state=IngestState.QUEUED,
                next_attempt_at=later,
                created_at=live.db.clock() - timedelta(minutes=2),
            )
        )
        session.add(
            ApprovalRequest(
                team_id=TEAM,
                image_id=image_id,
                requested_by=POSTER,
                created_at=live.db.clock(),
            )
        )

    samples = scrape(live.app)

    acks = "imglib_slack_ack_seconds_count"
    assert value(samples, acks, kind="event") == 4  # two posts, a retry, a forgery
    assert value(samples, acks, kind="command") == 1
    requests = "imglib_slack_requests_total"
    assert value(samples, requests, kind="event", type="message", outcome="acked") == 2
    assert value(samples, requests, kind="event", type="message", outcome="retry") == 1
    assert value(samples, requests, kind="event", type="message", outcome="refused_signature") == 1
    assert value(samples, requests, kind="command", type="command", outcome="acked") == 1
    assert value(samples, errors, **refused) == 1
    assert value(samples, "imglib_ingest_jobs", state="queued") == 1
    assert value(samples, "imglib_ingest_jobs", state="running") == 0
    assert 120 <= value(samples, "imglib_ingest_oldest_job_age_seconds") < 240
    assert value(samples, "imglib_ingest_failed_jobs", reason="not_an_image") == 1
    assert value(samples, "imglib_ingest_failed_jobs", reason="download") == 0
    assert value(samples, "imglib_approval_requests_open") == 1
    assert value(samples, "imglib_database_up") == 1
    # No label anywhere names a team, a person, a channel or a file.
    text = get(live.app.url + "/metrics")[1].decode()
    for private in (TEAM, POSTER, ADMIN, "C0SHOOTS", "F0GOOD", "notes"):
        assert private not in text


@pytest.mark.postgres
def test_metrics_of_two_gunicorn_workers_are_summed(
    empty_postgres_url: str,
    slack: SlackEmulator,
    tmp_path: Path,
    run_app: Callable[..., AppProcess],
) -> None:
    env = app_env(database_url=empty_postgres_url, slack=slack, media_dir=tmp_path / "media")
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env.update(WEB_CONCURRENCY="2", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    app = run_app(env)
    sender = app.sender()
    sent = 0
    # Each command on a new connection; gunicorn's two workers take them as they come, so
    # send until both have answered some (bounded).
    while sent < 200 and len(list(metrics_dir.glob("histogram_*.db"))) < 2:
        fields = slack.slash_command("/images", user=POSTER, channel="C0SHOOTS", text="help")
        assert sender.command(**fields).status == 200
        sent += 1
    assert len(list(metrics_dir.glob("histogram_*.db"))) == 2, "one worker answered them all"
    for _ in range(4):  # whichever worker answers the scrape, it counts both
        samples = scrape(app)
        assert value(samples, "imglib_slack_ack_seconds_count", kind="command") == sent
        assert (
            value(
                samples,
                "imglib_slack_requests_total",
                kind="command",
                type="command",
                outcome="acked",
            )
            == sent
        )


def test_metrics_refuse_a_remote_request_without_the_token(
    slack: SlackEmulator, tmp_path: Path, run_app: Callable[..., AppProcess]
) -> None:
    env = app_env(database_url=f"sqlite:///{tmp_path / 'a.db'}", slack=slack, media_dir=tmp_path)
    env["TRUSTED_PROXIES"] = "1"  # the address a proxy forwards is the one checked
    open_app = run_app(env, command=("run",))  # migrates the new database first
    remote = {"X-Forwarded-For": "203.0.113.7"}
    assert get(open_app.url + "/metrics", remote)[0] == 403
    assert get(open_app.url + "/metrics")[0] == 200  # from this machine

    closed_app = run_app({**env, "PORT": str(free_port()), "METRICS_TOKEN": METRICS_TOKEN})
    assert get(closed_app.url + "/metrics", remote)[0] == 401
    assert get(closed_app.url + "/metrics")[0] == 401  # the token is needed from anywhere
    wrong = {**remote, "Authorization": "Bearer scrape-token-0123456789abcdeX"}
    assert get(closed_app.url + "/metrics", wrong)[0] == 401
    right = {**remote, "Authorization": f"Bearer {METRICS_TOKEN}"}
    assert value(scrape(closed_app, right), "imglib_database_up") == 1
    assert METRICS_TOKEN not in closed_app.logs()


def test_json_log_lines_name_team_event_and_image_and_hold_no_token(
    database_url: str, slack: SlackEmulator, tmp_path: Path, run_app: Callable[..., AppProcess]
) -> None:
    live = start_live(
        database_url=database_url,
        slack=slack,
        tmp_path=tmp_path,
        run_app=run_app,
        extra_env={"LOG_FORMAT": "json"},
    )
    add_non_image(slack)
    live.post("F0NOTIMG")
    unheard = slack.message_event(channel="C0SHOOTS", user=POSTER, text="hi")
    unheard["event"]["type"] = "reaction_added"  # no listener: Bolt warns about it
    assert live.sender.event(unheard).status == 404
    with socket.create_connection(("127.0.0.1", live.app.port), timeout=5) as conn:
        conn.sendall(f"GET / HTTP/1.1 {slack.bot_token}\r\n\r\n".encode())
        conn.recv(4096)
    wait_until(lambda: "Invalid request" in live.app.logs(), what="gunicorn's warning")
    wait_until(lambda: job_states(live) == {"failed": 1}, what="the failed ingest")
    wait_until(lambda: "ingest job" in live.app.logs(), what="the ingest's warning")

    lines = [json.loads(line) for line in live.app.log_path.read_text().splitlines() if line]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    (failed,) = [line for line in lines if "ingest job" in line["message"]]
    assert (failed["team"], failed["image_id"]) == (TEAM, str(first_image_id(live)))
    (unhandled,) = [line for line in lines if line.get("event_id") == unheard["event_id"]]
    assert unhandled["team"] == TEAM
    (gunicorn,) = [line for line in lines if "Invalid request" in line["message"]]
    assert "[redacted]" in gunicorn["message"]
    assert slack.bot_token not in live.app.log_path.read_text()
    live.db.shutdown()


def test_healthz_names_slack_and_cloudinary_when_they_are_away_and_keeps_serving(
    slack: SlackEmulator,
    cloudinary: CloudinaryEmulator,
    tmp_path: Path,
    run_app: Callable[..., AppProcess],
) -> None:
    db = f"sqlite:///{tmp_path / 'h.db'}"
    env = app_env(database_url=db, slack=slack, media_dir=tmp_path, cloudinary=cloudinary)
    app = run_app(env)
    assert health(app) == (
        200,
        {
            "ok": True,
            "down": [],
            "reasons": {},
            "database": "ok",
            "media": "ok",
            "media_store": "cloudinary",
            "slack": "ok",
        },
    )
    assert [c["action"] for c in cloudinary.calls] == ["ping"]
    assert health(app)[0] == 200
    assert len(slack.calls_to("api.test")) == 1  # remembered: a probe every second is cheap

    slack.stop()
    cloudinary.stop()
    fresh = run_app({**env, "PORT": str(free_port())})  # nothing remembered yet
    status, answer = health(fresh)
    assert status == 200  # neither is this process's to fix: it still acks and queues
    assert (answer["ok"], answer["down"]) == (True, ["media", "slack"])
    assert answer["reasons"]["slack"].startswith("unreachable")
    assert "Cloudinary" in answer["reasons"]["media"]
    assert cloudinary.api_secret not in json.dumps(answer)


@pytest.mark.postgres
def test_healthz_with_the_database_down_names_it_and_answers_503(
    postgres_server: PostgresServer,
    slack: SlackEmulator,
    tmp_path: Path,
    run_app: Callable[..., AppProcess],
) -> None:
    url = postgres_server.create_database()
    app = run_app(app_env(database_url=url, slack=slack, media_dir=tmp_path), command=("run",))
    name = make_url(url).database
    admin = psycopg2.connect(postgres_server.admin_dsn, connect_timeout=5)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(
                sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(
                    sql.Identifier(name)
                )
            )
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
        status, answer = health(app)
        assert status == 503
        assert (answer["ok"], answer["down"], answer["database"]) == (False, ["database"], "down")
        assert answer["slack"] == "ok"
        assert value(scrape(app), "imglib_database_up") == 0
        with admin.cursor() as cursor:
            cursor.execute(
                sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(
                    sql.Identifier(name)
                )
            )
        assert health(app) == (
            200,
            {**answer, "ok": True, "down": [], "reasons": {}, "database": "ok"},
        )
    finally:
        admin.close()


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m bot <args>` as an operator runs it, beside the app, on its configuration."""
    outside = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CLOUDINARY"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        env={**outside, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_failed_ingests_are_retried_from_the_command_line(live: Live) -> None:
    # Slack answers the download with its login page (a missing scope): failed for good.
    live.slack.inject("files.download", "html_login")
    live.post(live.add_jpeg("F0SCOPE", seed=5))
    wait_until(lambda: job_states(live) == {"failed": 1}, what="the ingest to fail")
    assert value(scrape(live.app), "imglib_ingest_failed_jobs", reason="download") == 1

    # The scope is added; the operator retries what failed since then (nothing) and then
    # what failed for this team.
    future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert run_cli(live.env, "ingest", "retry", "--failed-since", future).stdout == (
        "queued 0 failed ingest job(s) again\n"
    )
    assert job_states(live) == {"failed": 1}
    done = run_cli(live.env, "ingest", "retry", "--team", TEAM)
    assert (done.returncode, done.stdout) == (0, "queued 1 failed ingest job(s) again\n")

    wait_until(lambda: job_states(live) == {"stored": 1}, what="the retried ingest")
    assert [image.slack_file_id for image in live.stored()] == ["F0SCOPE"]
    samples = scrape(live.app)
    assert value(samples, "imglib_ingest_failed_jobs", reason="download") == 0
    assert value(samples, "imglib_ingest_jobs", state="queued") == 0


def test_each_start_counts_from_zero(
    slack: SlackEmulator, tmp_path: Path, run_app: Callable[..., AppProcess]
) -> None:
    """gunicorn's workers count into a directory of this start's own: a restarted app does
    not add the last run's counts to its own, even when that one was killed before it could
    remove its directory."""
    env = app_env(database_url=f"sqlite:///{tmp_path / 'z.db'}", slack=slack, media_dir=tmp_path)
    first = run_app(env, command=("run",))
    fields = slack.slash_command("/images", user=POSTER, channel="C0SHOOTS", text="help")
    assert first.sender().command(**fields).status == 200
    assert value(scrape(first), "imglib_slack_ack_seconds_count", kind="command") == 1
    first.kill()

    second = run_app(env)
    samples = scrape(second)
    assert value(samples, "imglib_slack_ack_seconds_count", kind="command") == 0
    # Summed from the workers' files (multiprocess mode), not one process's own registry.
    assert not any(name.startswith("process_") for name, _ in samples)
