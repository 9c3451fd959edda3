"""Fixtures of the fast tier: `h`, the Bolt app in-process with the Slack emulator and a
fresh SQLite database (see harness.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.handlers.slack.harness import (
    Harness,
    make_template_database,
    running,
    wait_for_closing,
    warm_up,
)


@pytest.fixture(scope="session")
def template_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A migrated database to copy for each test (and the imaging libraries warmed up)."""
    template = make_template_database(tmp_path_factory.mktemp("template"))
    warm_up(tmp_path_factory.mktemp("warm-up"), template)
    yield template
    wait_for_closing()


@pytest.fixture
def h(tmp_path: Path, template_database: Path) -> Iterator[Harness]:
    """The app with no channel watched yet, the workspace of tests/conftest.py in Slack."""
    yield from running(tmp_path, template_database)


@pytest.fixture
def watching(h: Harness) -> Harness:
    """`h` with #marketing-shoots watched, set up the way an admin does it: `/images watch`."""
    sent = h.command("watch <#C0SHOOTS|marketing-shoots>")
    assert "Watching <#C0SHOOTS>" in h.answer(sent)["text"]
    return h
