"""The one WSGI app: the web library's pages, Slack's requests (Bolt's Flask adapter at
`/slack/events`), `/healthz` and signed `/media/...` links."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask, g, render_template, request, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect
from slack_bolt import App
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from bot.services import Services
from handlers.web import (
    admin,
    api,
    approvals,
    auth,
    operations,
    pages,
    review,
    system,
    tokens,
    upload,
    upload_link,
)
from handlers.web.context import Workspaces
from handlers.web.security import add_headers, asset_versions, secret_key

UPLOAD_OVERHEAD = 64 * 1024  # multipart headers and the form fields beside the file

MESSAGES = {
    400: "That request was not understood.",
    401: "Sign in to continue.",
    403: "You cannot do that.",
    404: "There is nothing here, or you cannot see it.",
    405: "That page does not take this kind of request.",
    413: "That file is too large for the library.",
    429: "Too many attempts. Wait a minute and try again.",
}


def create_web(services: Services, *, bolt_app: App | None, workspaces: Workspaces) -> Flask:
    """The web app on the library `services`; `workspaces` says whose members may sign in
    with Slack and use the API."""
    settings = services.settings
    app = Flask(__name__)
    app.extensions["library"] = services
    app.extensions["workspaces"] = workspaces
    app.extensions["bolt"] = bolt_app
    app.config.update(
        SECRET_KEY=secret_key(settings),
        SESSION_COOKIE_NAME="imglib_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(
            settings.public_base_url and settings.public_base_url.startswith("https://")
        ),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        MAX_CONTENT_LENGTH=settings.max_image_bytes + UPLOAD_OVERHEAD,
        WTF_CSRF_TIME_LIMIT=None,  # tied to the session, which expires
        SEND_FILE_MAX_AGE_DEFAULT=timedelta(days=365),
    )
    csrf = CSRFProtect(app)
    for blueprint in (
        system.bp,
        auth.bp,
        pages.bp,
        upload.bp,
        approvals.bp,
        admin.bp,
        tokens.bp,
        upload_link.bp,
        review.bp,
    ):
        app.register_blueprint(blueprint)
    csrf.exempt(system.slack_events)  # Slack signs its requests instead
    # A link's own token, in the address, is what authorises these posts: a page elsewhere
    # cannot forge one without it. And Flask-WTF's check insists, over https, on a Referer
    # that these pages never send (they must not leak the token).
    csrf.exempt(review.decide)
    csrf.exempt(upload_link.take_file)
    api.init_api(app, csrf)
    operations.init(app)
    versions = asset_versions(app)

    def asset(name: str) -> str:
        return url_for("static", filename=name, v=versions.get(name, "0"))

    @app.context_processor
    def page_context() -> dict[str, Any]:
        return {"asset": asset, "me": g.get("person"), "my_name": g.get("person_name", "")}

    app.before_request(auth.load_person)
    app.after_request(_cache_static)
    app.after_request(add_headers)

    @app.errorhandler(CSRFError)
    def csrf_failed(error: CSRFError) -> tuple[str, int]:
        return _error_page(400, "This form has expired. Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        code = error.code or 500
        if code in (301, 302, 303, 307, 308):
            return error
        if api.is_api_request():
            return api.problem_response(error)
        return _error_page(code, MESSAGES.get(code, error.description or "Something went wrong."))

    # Behind proxies (Heroku's router: TRUSTED_PROXIES=1), the browser's address and scheme
    # are in their X-Forwarded-* headers; believed only from that many proxies.
    if settings.trusted_proxies:
        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    return app


def _error_page(code: int, message: str) -> tuple[Any, int]:
    if request.path.startswith(("/slack/", "/healthz", "/media/")) or (
        request.accept_mimetypes.best == "application/json"
    ):
        return {"error": message}, code
    return render_template("error.html", code=code, message=message), code


def _cache_static(response: Any) -> Any:
    if request.endpoint == "static" and request.args.get("v"):
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    elif request.endpoint == "static":
        response.headers["Cache-Control"] = "no-cache"
    return response
