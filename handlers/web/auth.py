"""Who comes in: Sign in with Slack (OpenID Connect, on the origin of SLACK_API_URL), or a
one-time link (the local owner's, printed by `make run` when no Slack app is configured).
The session cookie carries who signed in; every request rebuilds their `Person` from the
directory, so a deactivated account is out at its next click."""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import (
    Blueprint,
    abort,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from werkzeug.wrappers import Response

from bot.config import Settings
from bot.signin import end_session, redeem, session_of, start_session
from handlers.web.context import services, workspaces
from handlers.web.security import RateLimit, local_path

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)

ISSUER = "https://slack.com"
SCOPES = "openid email profile"
attempts = RateLimit(limit=20, window=60.0)
_jwks: dict[str, Any] = {}  # jwt.PyJWKClient by keys URL


def load_person() -> None:
    """Before every request: who is signed in (a session the server still holds: signing
    out ends it), as the library sees them now."""
    session_id = session.get("sid")
    if not isinstance(session_id, str):
        return
    library = services()
    signed = session_of(library.factory, session_id, now=library.clock())
    if signed is None or workspaces().gone(signed.team_id):
        session.clear()  # signed out, or the app was uninstalled from their workspace
        return
    facts = library.people.facts(signed.team_id, signed.user_id)
    if facts.deleted or facts.is_bot:
        session.clear()
        return
    g.person = library.people.person(signed.team_id, signed.user_id)
    g.person_name = facts.name or signed.user_id


def _sign_in(team_id: str, user_id: str, next_path: str) -> Response:
    """Start a new session (a new cookie and id: nothing from before sign-in carries
    over)."""
    library = services()
    session.clear()
    session.permanent = True
    session["sid"] = start_session(
        library.factory, team_id=team_id, user_id=user_id, now=library.clock()
    )
    return redirect(local_path(next_path))


def _too_many() -> None:
    if not attempts.allow(request.remote_addr or "?"):
        abort(429)


@bp.get("/login")
def login() -> Any:
    settings = services().settings
    next_path = local_path(request.args.get("next"))
    if g.get("person") is not None:
        return redirect(next_path)
    if not settings.sign_in_with_slack or "start" not in request.args:
        return render_template("login.html", settings=settings, next_path=next_path)
    _too_many()
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    session["oidc"] = {"state": state, "nonce": nonce, "next": next_path}
    query = {
        "response_type": "code",
        "scope": SCOPES,
        "client_id": settings.slack_client_id,
        "state": state,
        "nonce": nonce,
        "redirect_uri": _redirect_uri(settings),
    }
    team = workspaces().hint()
    if team:
        query["team"] = team
    return redirect(f"{_slack_origin(settings)}/openid/connect/authorize?{urlencode(query)}")


@bp.get("/login/callback")
def callback() -> Any:
    settings = services().settings
    expected = session.pop("oidc", None)
    if not settings.sign_in_with_slack or not isinstance(expected, dict):
        _too_many()  # (a callback this browser started was counted at its start)
        return _refused("This sign-in link has expired. Start again.")
    given_state = request.args.get("state", "").encode("utf-8", "surrogateescape")
    if not hmac.compare_digest(str(expected["state"]).encode(), given_state):
        return _refused("This sign-in did not start here. Start again.")
    if request.args.get("error"):
        return _refused("Sign-in was cancelled in Slack.")
    code = request.args.get("code", "")
    try:
        claims = _exchange(settings, code, nonce=str(expected["nonce"]))
    except (SlackApiError, NotConfirmed, KeyError, OSError) as exc:
        reason = str(exc) if isinstance(exc, NotConfirmed) else type(exc).__name__
        log.warning("sign in with Slack failed: %s", reason)
        return _refused("Slack did not confirm who you are. Try again.")
    team_id = str(claims.get("https://slack.com/team_id", ""))
    user_id = str(claims.get("https://slack.com/user_id") or claims.get("sub", ""))
    if not workspaces().installed(team_id):
        return _refused("The image library is not installed in that workspace.")
    facts = services().people.facts(team_id, user_id)
    if facts.deleted or facts.is_bot:
        return _refused("Your Slack account cannot use the image library.")
    return _sign_in(team_id, user_id, str(expected.get("next", "/")))


@bp.get("/login/link")
def link() -> Any:
    """The page a one-time link opens: one button, so a link preview cannot use it up."""
    return render_template("link.html", token=request.args.get("token", ""))


@bp.post("/login/link")
def redeem_link() -> Any:
    _too_many()
    signed = redeem(services().factory, request.form.get("token", ""), now=services().clock())
    if signed is None:
        return _refused(
            "This sign-in link was used already or has expired. "
            "Run `python -m bot login-link` for a new one."
        )
    return _sign_in(signed.team_id, signed.user_id, "/")


@bp.post("/logout")
def logout() -> Response:
    session_id = session.get("sid")
    if isinstance(session_id, str):
        end_session(services().factory, session_id, now=services().clock())
    session.clear()
    return redirect(url_for("auth.login"))


def _refused(message: str) -> tuple[str, int]:
    return render_template("login.html", settings=services().settings, problem=message), 400


class NotConfirmed(Exception):
    """The ID token Slack gave is not one we can trust (PyJWT's reason is its cause)."""


def _exchange(settings: Settings, code: str, *, nonce: str) -> dict[str, Any]:
    """Trade the code for an ID token and check it: Slack's signature (its published keys),
    our client id as audience, Slack as issuer, unexpired, and the nonce we sent."""
    import jwt  # with cryptography, 9 MB: only once someone signs in, not in every process

    client = WebClient(base_url=settings.slack_api_url, timeout=10)
    response = client.openid_connect_token(
        client_id=settings.slack_client_id or "",
        client_secret=settings.slack_client_secret or "",
        code=code,
        redirect_uri=_redirect_uri(settings),
    )
    id_token = str(response["id_token"])
    keys_url = f"{_slack_origin(settings)}/openid/connect/keys"
    keys = _jwks.setdefault(keys_url, jwt.PyJWKClient(keys_url, cache_keys=True, timeout=10))
    try:
        claims: dict[str, Any] = jwt.decode(
            id_token,
            keys.get_signing_key_from_jwt(id_token).key,
            algorithms=["RS256"],
            audience=settings.slack_client_id,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "aud", "iss", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise NotConfirmed(type(exc).__name__) from exc
    if not hmac.compare_digest(str(claims.get("nonce", "")).encode(), nonce.encode()):
        raise NotConfirmed("nonce mismatch")
    return claims


def _slack_origin(settings: Settings) -> str:
    parts = urlsplit(settings.slack_api_url)
    return f"{parts.scheme}://{parts.netloc}"


def _redirect_uri(settings: Settings) -> str:
    base = settings.public_base_url or request.host_url.rstrip("/")
    return f"{base}/login/callback"
