"""The library's own tier: real `Services` on SQLite with fakes of its ports (tests/bot/fakes.py)
plugged in, and nothing of Slack. A module needing another workspace or notifier overrides
these fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.ports import FileSource
from bot.services import Services
from tests.bot.fakes import (
    FakeClock,
    FakeDirectory,
    FakeFiles,
    RecordingNotifier,
    make_services,
    workspace,
)


@pytest.fixture
def directory() -> FakeDirectory:
    return workspace()


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def files() -> FileSource:
    return FakeFiles()


@pytest.fixture
def services(
    tmp_path: Path, directory: FakeDirectory, notifier: RecordingNotifier, files: FileSource
) -> Iterator[Services]:
    services = make_services(
        tmp_path, directory=directory, files=files, notifier=notifier, clock=FakeClock()
    )
    yield services
    services.shutdown()
