"""The JSON API under /api/v1 (flask-smorest): its OpenAPI 3.1 document comes from the same
marshmallow schemas that validate requests, and the docs page at /api/docs is rendered from
that document here (the site's CSP allows no CDN and no inline script)."""

from __future__ import annotations

import http
import json
from typing import Any

from flask import Blueprint, Flask, current_app, render_template, request
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from flask_wtf.csrf import CSRFProtect
from markupsafe import Markup, escape
from werkzeug.wrappers import Response

from handlers.web.api import approvals, catalog, images, uploads
from handlers.web.api.guard import PREFIX
from handlers.web.api.problems import PROBLEM_JSON, ProblemSchema, problem_response
from handlers.web.context import services

__all__ = ["init_api", "is_api_request", "problem_response"]

docs = Blueprint("api_docs", __name__)
SECURITY = {"bearer": {"type": "http", "scheme": "bearer", "description": "An API token."}}


class LibraryApi(Api):  # type: ignore[misc]
    """flask-smorest, with problems for errors: documented as `application/problem+json`
    and answered by the web app's own error handler (see `is_api_request`)."""

    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self) -> None:
        """The app's handler answers errors (a problem on /api, a page elsewhere)."""

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        default: dict[str, Any] = {"description": "A problem", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", default, lazy=True)

    def _openapi_json(self) -> Response:
        """The document with this site's address as its server, so a client imported from
        it (Postman: Import -> Link) calls the right host."""
        spec = self.spec.to_dict()
        spec["servers"] = [{"url": site_url()}]
        return Response(json.dumps(spec, indent=2), mimetype="application/json")


def init_api(app: Flask, csrf: CSRFProtect) -> None:
    """Mount the API on the web app. Its blueprints take no cookies, so no CSRF tokens."""
    app.config.update(
        API_TITLE="Image library",
        API_VERSION="v1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX=PREFIX,
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "security": [{"bearer": []}],
            "components": {"securitySchemes": SECURITY},
            "info": {"description": "The image library, for scripts and other tools."},
        },
    )
    api = LibraryApi(app)
    for module in (images, uploads, catalog, approvals):
        api.register_blueprint(module.bp)
        csrf.exempt(module.bp)
    app.extensions["library_api"] = api
    app.register_blueprint(docs)


def is_api_request() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


@docs.get("/api/docs")
def api_docs() -> str:
    """The API's reference, from its OpenAPI document."""
    spec = current_app.extensions["library_api"].spec.to_dict()
    return render_template("api_docs.html", spec=spec, base=site_url())


@docs.app_template_filter("code_spans")
def code_spans(text: str | None) -> Markup:
    """The document's descriptions mark names with backticks, as Markdown does: shown as
    code, everything else escaped."""
    pieces = (text or "").split("`")
    if len(pieces) % 2 == 0:  # an unpaired backtick: the text as it is
        return escape(text or "")
    code = Markup("<code>{}</code>")
    return Markup("").join(code.format(p) if i % 2 else escape(p) for i, p in enumerate(pieces))


def site_url() -> str:
    return services().settings.public_base_url or request.host_url.rstrip("/")
