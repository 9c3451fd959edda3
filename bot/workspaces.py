"""The workspaces the app is installed in, when it is installed from /slack/install (the
`oauth` mode): what installing, uninstalling and installing again mean for a workspace's
library. Uninstalling keeps the library and pauses its jobs (`storage.access.still_installed`);
installing again resumes them and says the library was kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from storage.access import Workspace
from storage.db import session_scope
from storage.models import Image


@dataclass(frozen=True)
class Installed:
    team_id: str
    name: str
    returning: bool  # it was installed here before and uninstalled: its library was kept
    images: int  # how many images its library holds


def record_install(
    factory: sessionmaker[Session], *, team_id: str, name: str, installer: str, now: datetime
) -> Installed:
    """Note that the app is (again) installed in `team_id`, which resumes its jobs."""
    with session_scope(factory) as session:
        row = session.get(Workspace, team_id, with_for_update=True)
        returning = row is not None and row.uninstalled_at is not None
        if row is None:
            row = Workspace(team_id=team_id, name=name, installed_by=installer, installed_at=now)
            session.add(row)
        if row.uninstalled_at is not None or row.installed_by != installer:
            row.installed_at, row.installed_by = now, installer
        row.name, row.uninstalled_at = name[:200], None
        images = session.scalar(select(func.count(Image.id)).where(Image.team_id == team_id))
    return Installed(team_id=team_id, name=name, returning=returning, images=images or 0)


def record_uninstall(factory: sessionmaker[Session], *, team_id: str, now: datetime) -> bool:
    """Note that the app was uninstalled from `team_id` (or lost its bot token): its jobs
    pause, its library stays. False when it was not installed (a repeated event)."""
    with session_scope(factory) as session:
        row = session.get(Workspace, team_id, with_for_update=True)
        if row is None or row.uninstalled_at is not None:
            return False
        row.uninstalled_at = now
        return True


def only_workspace(factory: sessionmaker[Session]) -> str | None:
    """The one workspace the app is installed in, or None (none, or several)."""
    with session_scope(factory) as session:
        teams = session.scalars(
            select(Workspace.team_id).where(Workspace.uninstalled_at.is_(None)).limit(2)
        ).all()
    return teams[0] if len(teams) == 1 else None
