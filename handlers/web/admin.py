"""The admin page: categories (add, rename, merge, default approvers and policy), watched
channels, and who has which role. Admins only; for anyone else the page does not exist."""

from __future__ import annotations

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
    watched_channels,
)
from bot.channels import public_conversations
from handlers.web.context import admins_only, person, services

bp = Blueprint("admin", __name__)


@bp.get("/admin")
@admins_only
def admin_page(problem: str = "", status: int = 200) -> Any:
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
    public = public_conversations(library.factory, team_id=me.team_id)

    def shown(channel_id: str) -> bool:
        """A private channel's name only for its members (Slack shows others none)."""
        if channel_id in public or channel_id in me.viewer.channels:
            return True
        return library.directory.is_private(me.team_id, channel_id) is False

    channels = [
        {
            "id": w.channel_id,
            "name": library.people.conversation_name(me.team_id, w.channel_id)
            if shown(w.channel_id)
            else None,
            "category": w.category,
        }
        for w in watched_channels(library.factory, team_id=me.team_id)
    ]
    return render_template(
        "admin.html",
        categories=categories,
        people=people,
        channels=channels,
        problem=problem,
        done=request.args.get("done", ""),
    ), status


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
