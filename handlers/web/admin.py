"""The admin page: categories (add, rename, merge, default approvers and policy), watched
channels, and who has which role. Admins only; for anyone else the page does not exist."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for

from bot.admin import (
    AdminError,
    add_category,
    list_categories,
    remove_category,
    rename_category,
    set_approvers,
    unwatch,
    watch,
    watched_channels,
)
from bot.channels import public_conversations
from bot.upload_links import DEFAULT_DAYS, MAX_DAYS, LinkView, list_links
from handlers.web.context import admins_only, person, services

bp = Blueprint("admin", __name__)


@bp.get("/admin")
@admins_only
def admin_page(problem: str = "", status: int = 200, *, created: str = "") -> Any:
    """`created`: a new upload link, shown in this answer only."""
    me, library = person(), services()
    categories = list_categories(library.factory, team_id=me.team_id, viewer=me.viewer)
    everyone = library.people.everyone(me.team_id)
    approvers = {a for c in categories for a in c.default_approvers}
    people = [
        {
            "id": user_id,
            "name": facts.name or user_id,
            "role": library.people.role_of(me.team_id, user_id, facts),
            "approver": user_id in approvers,
        }
        for user_id, facts in everyone
    ]
    mine = library.people.conversations_named(me.team_id, me.user_id)
    public = public_conversations(library.factory, team_id=me.team_id)

    def name_of(channel_id: str) -> str | None:
        """A private channel's name only for its members (Slack shows others none)."""
        if channel_id in mine:
            return mine[channel_id]
        if channel_id in public or library.directory.is_private(me.team_id, channel_id) is False:
            return library.people.conversation_name(me.team_id, channel_id)
        return None

    channels = [
        {"id": w.channel_id, "name": name_of(w.channel_id), "category": w.category}
        for w in watched_channels(library.factory, team_id=me.team_id)
    ]
    watched = {c["id"] for c in channels}
    watchable = sorted((name, c) for c, name in mine.items() if c not in watched)
    return render_template(
        "admin.html",
        watchable=watchable,
        categories=categories,
        people=people,
        channels=channels,
        problem=problem,
        done=request.args.get("done", ""),
        **_upload_links(name_of, mine),
        created_link=created,
    ), status


def _upload_links(name_of: Callable[[str], str | None], mine: dict[str, str]) -> dict[str, Any]:
    """The upload links section: the form's choices and the team's links."""
    me, library = person(), services()
    now = library.clock()
    links = [
        {
            "link": link,
            "state": link.state(now),
            "audience": _audience(link, name_of),
        }
        for link in list_links(library.factory, me)
    ]
    return {
        "upload_links": links,
        "link_conversations": sorted((name, c) for c, name in mine.items()),
        "link_days": (DEFAULT_DAYS, MAX_DAYS),
    }


def _audience(link: LinkView, name_of: Callable[[str], str | None]) -> str:
    if link.for_workspace:
        return "everyone in the workspace"
    name = name_of(link.conversation_id)
    return f"#{name}" if name else "a private channel you are not in"


@bp.post("/admin/categories")
@admins_only
def categories() -> Any:
    me, library = person(), services()
    action, now = request.form.get("action", ""), library.clock()
    name = request.form.get("name", "")
    try:
        if action == "add":
            added = add_category(
                library.factory, team_id=me.team_id, name=name, actor_id=me.user_id, now=now
            )
            done = f"Added {added}."
        elif action == "rename":
            new = rename_category(
                library.factory,
                team_id=me.team_id,
                old=name,
                new=request.form.get("new_name", ""),
                actor_id=me.user_id,
                now=now,
            )
            done = f"Renamed to {new}."
        elif action == "merge":
            into = request.form.get("into", "") or None
            moved = remove_category(
                library.factory,
                team_id=me.team_id,
                name=name,
                move_to=into,
                actor_id=me.user_id,
                now=now,
            )
            done = f"Merged {name} into {into}: {moved} images moved." if into else "Removed."
        elif action == "approvers":
            set_approvers(
                library.factory,
                team_id=me.team_id,
                category=name,
                approvers=request.form.getlist("approvers"),
                policy=request.form.get("policy", "any"),
                actor_id=me.user_id,
                now=now,
            )
            done = f"Saved the approvers of {name}."
        else:
            return admin_page("Unknown action.", 400)
    except AdminError as exc:
        return admin_page(str(exc), 400)
    return redirect(url_for("admin.admin_page", done=done))


@bp.post("/admin/channels/watch")
@admins_only
def watch_channel() -> Any:
    """Watch one of the admin's channels: the app must be in it (Slack sends an app the
    messages of its own channels only)."""
    me, library = person(), services()
    channel_id = request.form.get("channel", "")
    name = library.people.conversations_named(me.team_id, me.user_id).get(channel_id)
    if name is None:
        return admin_page("Choose one of your channels.", 400)
    inside = library.directory.app_is_in(me.team_id, channel_id)
    if inside is None:
        return admin_page("Slack did not say whether I am in that channel. Try again.", 400)
    if not inside:
        return admin_page(
            f"I am not in #{name}, so I would not see its images. Invite me there first "
            "(/invite @Image Library), then watch it.",
            400,
        )
    try:
        watch(
            library.factory,
            team_id=me.team_id,
            channel_id=channel_id,
            category_name=request.form.get("category") or None,
            actor_id=me.user_id,
            now=library.clock(),
        )
    except AdminError as exc:
        return admin_page(str(exc), 400)
    return redirect(url_for("admin.admin_page", done=f"Watching #{name}."))


@bp.post("/admin/channels/<channel_id>/unwatch")
@admins_only
def unwatch_channel(channel_id: str) -> Any:
    me, library = person(), services()
    unwatch(
        library.factory,
        team_id=me.team_id,
        channel_id=channel_id,
        actor_id=me.user_id,
        now=library.clock(),
    )
    return redirect(url_for("admin.admin_page", done="Stopped watching the channel."))
