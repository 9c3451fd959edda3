"""API tokens: a signed-in person makes personal access tokens for the JSON API (shown once),
sees when each was last used, and revokes them. A token acts as its person."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for

from bot import tokens
from handlers.web.context import person, services, signed_in

bp = Blueprint("tokens", __name__)

EXPIRY_CHOICES = {"30": 30, "90": 90, "365": 365, "never": None}


@bp.get("/tokens")
@signed_in
def tokens_page(new_token: str = "", problem: str = "", status: int = 200) -> Any:
    me, library = person(), services()
    mine = tokens.tokens_of(library.factory, team_id=me.team_id, user_id=me.user_id)
    return render_template(
        "tokens.html",
        tokens=mine,
        now=library.clock(),
        new_token=new_token,
        problem=problem,
        done=request.args.get("done", ""),
        base_url=request.host_url.rstrip("/"),
    ), status


@bp.post("/tokens")
@signed_in
def create() -> Any:
    me, library = person(), services()
    now = library.clock()
    choice = request.form.get("expires", "90")
    if choice not in EXPIRY_CHOICES:
        return tokens_page(problem="Choose when the token expires.", status=400)
    days = EXPIRY_CHOICES[choice]
    try:
        _, token = tokens.create(
            library.factory,
            team_id=me.team_id,
            user_id=me.user_id,
            name=request.form.get("name", ""),
            now=now,
            expires_at=now + timedelta(days=days) if days else None,
        )
    except tokens.TokenError as exc:
        return tokens_page(problem=str(exc), status=400)
    # Rendered in this answer (never stored, never in a URL), so it is shown exactly once.
    return tokens_page(new_token=token)


@bp.post("/tokens/<int:token_id>/revoke")
@signed_in
def revoke(token_id: int) -> Any:
    me, library = person(), services()
    if not tokens.revoke(
        library.factory,
        team_id=me.team_id,
        user_id=me.user_id,
        token_id=token_id,
        now=library.clock(),
    ):
        return tokens_page(problem="That token is already revoked, or not yours.", status=404)
    return redirect(url_for("tokens.tokens_page", done="Token revoked."), code=303)
