"""The Procfile as Heroku runs it, on this machine: honcho runs the release phase against a fresh
PostgreSQL database, then web and worker with app.json's settings, pointed at the Slack and
Cloudinary emulators. A real signed post must end as a stored image and a prompt in Slack, and
SIGTERM (what Heroku sends on every deploy and restart) must stop both processes cleanly."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text

from handlers.slack.details import ids as details_ids
from storage.db import make_engine, session_scope
from storage.migrate import MIGRATIONS_DIR
from storage.models import Image, IngestJob, IngestState
from tests import images
from tests.conftest import (
    POSTER,
    PUBLIC_CHANNEL,
    ROOT,
    SIGNING_SECRET,
    app_env,
    free_port,
    make_services,
)
from tests.e2e.test_details import button_values
from tests.fakes.cloudinary_api import CloudinaryEmulator
from tests.fakes.signed import SlackSender
from tests.fakes.slack_api import SlackEmulator
from tests.live import wait_until
from tests.pg import PostgresServer
from tests.test_app_json import app_json

BIN = Path(sys.executable).parent
STARTED = re.compile(r"system\s+\| (\w+)\.1 started \(pid=(\d+)\)")


class Honcho:
    """`honcho start` as a developer runs it, its output kept in a file to read and assert on."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def command(self, *process_types: str) -> list[str]:
        # The .env of whoever runs the tests stays out: honcho lets it override the environment.
        empty_env_file = self.log_path.with_suffix(".env")
        empty_env_file.touch()
        return [
            str(BIN / "honcho"),
            "--no-colour",
            "-e",
            str(empty_env_file),
            "start",
            *process_types,
        ]

    def run(self, *process_types: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*process_types),
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def start(self, *process_types: str) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(*process_types),
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def started(self) -> dict[str, int]:
        """Process type -> the pid honcho started it as (each leads its own process group)."""
        return {kind: int(pid) for kind, pid in STARTED.findall(self.output())}

    def kill_everything(self) -> None:
        """After a failed test: nothing it started may outlive it."""
        for pid in self.started().values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def honcho(tmp_path: Path) -> Iterator[Honcho]:
    # The Procfile says `python`: the test's own interpreter (the venv's) comes first on PATH.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CLOUDINARY"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    runner = Honcho(env, tmp_path / "honcho.log")
    yield runner
    runner.kill_everything()


def deployed_settings() -> dict[str, str]:
    """The config vars a Deploy from app.json sets: its values, and its secrets generated."""
    settings = {}
    for name, spec in app_json()["env"].items():
        if "value" in spec:
            settings[name] = spec["value"]
        elif spec.get("generator") == "secret":
            settings[name] = secrets.token_hex(32)
    return settings


def tables(database_url: str) -> set[str]:
    engine = make_engine(database_url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def schema_revision(database_url: str) -> str | None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def healthz(port: int) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return dict(json.loads(response.read())) if response.status == 200 else None
    except OSError:
        return None


@pytest.mark.postgres
def test_procfile_under_honcho_migrates_serves_a_post_and_stops_on_sigterm(
    postgres_server: PostgresServer,
    slack: SlackEmulator,
    cloudinary: CloudinaryEmulator,
    honcho: Honcho,
    tmp_path: Path,
) -> None:
    database_url = postgres_server.create_database()
    assert tables(database_url) == set()  # fresh, as the add-on hands it over
    port = free_port()
    env = {
        **deployed_settings(),
        **app_env(
            database_url=database_url,
            slack=slack,
            cloudinary=cloudinary,
            media_dir=tmp_path / "unused-media",
            port=port,
        ),
        # As the add-on writes it: postgres://, which the app accepts.
        "DATABASE_URL": database_url.replace("postgresql+psycopg2://", "postgres://"),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    honcho.env.update(env)

    # The release phase, on its own as on Heroku: it migrates, then exits 0.
    release = honcho.run("release")
    assert release.returncode == 0, release.stdout + release.stderr
    assert "release.1 stopped (rc=0)" in release.stdout
    assert schema_revision(database_url) == ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()

    db = make_services(env, watch=True)  # an admin ran /images watch #marketing-shoots
    honcho.start("web", "worker")
    assert honcho.process is not None
    wait_until(
        lambda: healthz(port) or honcho.process.poll() is not None,
        timeout=60,
        what=f"the web process on $PORT {port}",
    )
    assert honcho.process.poll() is None, honcho.output()
    wait_until(
        lambda: re.search(r"worker\.1\s+\|.*worker started", honcho.output()),
        timeout=60,
        what="the worker to start",
    )
    assert set(honcho.started()) == {"web", "worker"}

    data = images.jpeg(1600, 1200, seed=12)
    slack.add_file(
        "F0HEROKU",
        name="launch.jpg",
        content=data,
        mimetype="image/jpeg",
        filetype="jpg",
        user=POSTER,
    )
    envelope = slack.message_event(channel=PUBLIC_CHANNEL, user=POSTER, files=["F0HEROKU"])
    reply = SlackSender(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET).event(envelope)
    assert reply.status == 200

    (prompt,) = slack.wait_for(
        "chat.postEphemeral", timeout=60, predicate=lambda c: c.params.get("user") == POSTER
    )
    assert prompt.params["channel"] == PUBLIC_CHANNEL
    reactions = [c.params for c in slack.calls_to("reactions.add")]
    assert reactions == [
        {
            "channel": PUBLIC_CHANNEL,
            "timestamp": envelope["event"]["ts"],
            "name": "frame_with_picture",
        }
    ]
    with session_scope(db.factory) as session:
        (image,) = session.scalars(select(Image)).all()
        assert session.scalar(select(IngestJob.state)) == IngestState.STORED
    assert cloudinary.uploads[image.storage_key].data == data
    assert button_values(prompt.params["blocks"], details_ids.ADD_DETAILS) == [str(image.id)]
    assert len(slack.calls_to("files.download")) == 1
    health = healthz(port)
    assert health is not None
    assert (health["ok"], health["down"], health["media_store"]) == (True, [], "cloudinary")
    db.shutdown()

    pids = honcho.started()
    honcho.process.send_signal(signal.SIGTERM)
    assert honcho.process.wait(30) == 128 + signal.SIGTERM  # honcho's own answer to SIGTERM
    output = honcho.output()
    # Each process took the signal itself (the Procfile `exec`s it) and exited 0.
    assert "web.1 stopped (rc=0)" in output, output[-3000:]
    assert "worker.1 stopped (rc=0)" in output, output[-3000:]
    assert re.search(r"worker\.1\s+\|.*worker stopped", output)

    def left_behind() -> list[psutil.Process]:
        groups = set(pids.values())
        return [p for p in psutil.process_iter() if _group_of(p) in groups]

    # gunicorn's workers included: nothing of either process outlives honcho.
    wait_until(lambda: not left_behind(), timeout=10, what="every process to exit")


def _group_of(process: psutil.Process) -> int | None:
    try:
        return os.getpgid(process.pid)
    except (ProcessLookupError, psutil.Error):
        return None
