"""What every view needs: the library (`Services`) and who is signed in (`Person`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar, cast

from flask import abort, current_app, g, redirect, request, url_for

from bot.people import Person
from bot.services import Services

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Workspaces:
    """Which workspaces' members may use the web door and the API.

    `installed(team_id)`: may sign in now. `gone(team_id)`: known not to be installed (any
    more), so that workspace's sessions and tokens stop; unknown is not gone, so that a Slack
    outage signs nobody out. `hint()` names the one workspace when there is only one, so
    Sign in with Slack goes straight to it."""

    hint: Callable[[], str | None]
    installed: Callable[[str], bool]
    gone: Callable[[str], bool]

    @classmethod
    def single(cls, team: Callable[[], str | None]) -> Workspaces:
        """One workspace's bot token: `team()` is its workspace, None while Slack cannot be
        asked which it is."""
        return cls(
            hint=team,
            installed=lambda team_id: bool(team_id) and team_id == team(),
            gone=lambda team_id: team() not in (None, team_id),
        )

    @classmethod
    def only(cls, team_id: str) -> Workspaces:
        return cls.single(lambda: team_id)

    @classmethod
    def any_installed(cls, is_installed: Callable[[str], bool]) -> Workspaces:
        """Installed from /slack/install in any number of workspaces."""
        return cls(
            hint=lambda: None,
            installed=is_installed,
            gone=lambda team_id: not is_installed(team_id),
        )


def workspaces() -> Workspaces:
    return cast(Workspaces, current_app.extensions["workspaces"])


def services() -> Services:
    return cast(Services, current_app.extensions["library"])


def person() -> Person:
    """The signed-in person (views behind `signed_in` only)."""
    found = g.get("person")
    if found is None:
        abort(401)
    return cast(Person, found)


def signed_in(view: F) -> F:
    """Send whoever is not signed in to the sign-in page, coming back here afterwards."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if g.get("person") is None:
            if request.method != "GET" or request.accept_mimetypes.best == "application/json":
                abort(401)
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return cast(F, guarded)


def admins_only(view: F) -> F:
    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not person().is_admin:
            abort(404)  # the admin pages do not exist for anyone else
        return view(*args, **kwargs)

    return cast(F, signed_in(guarded))
