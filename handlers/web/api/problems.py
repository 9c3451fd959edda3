"""Every error the API answers is an RFC 9457 problem (`application/problem+json`): the
same shape for a bad field, a missing image, a wrong method or a rate limit, so a client
needs one error path. A hidden image and a missing one get the same 404, byte for byte."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, NoReturn

import marshmallow as ma
from flask import Response
from flask_smorest import abort
from werkzeug.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"

DETAILS = {
    400: "The request could not be read.",
    401: "Send a valid API token: `Authorization: Bearer <token>`.",
    403: "Your token's person may not do that.",
    404: "There is nothing here, or your token cannot see it.",
    405: "This resource does not take that method.",
    409: "That conflicts with the resource's current state.",
    413: "The request is larger than the library takes.",
    415: "Send this request as the content type the API documents.",
    422: "Some fields are not valid; see `errors`.",
    429: "Too many requests. Wait for the seconds in `Retry-After`, then try again.",
    500: "Something went wrong on our side. Try again later.",
}


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem; `errors` maps each invalid field to what to fix."""

    type = ma.fields.String(required=True, metadata={"example": "about:blank"})
    title = ma.fields.String(required=True, metadata={"example": "Not Found"})
    status = ma.fields.Integer(required=True, metadata={"example": 404})
    detail = ma.fields.String(required=True)
    errors = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())


def fail(
    status: int,
    detail: str | None = None,
    *,
    errors: Mapping[str, str] | None = None,
    kind: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> NoReturn:
    """Stop the request with a problem (`kind` names a problem type in the docs)."""
    data: dict[str, Any] = {"message": detail or DETAILS.get(status, "")}
    if errors:
        data["errors"] = dict(errors)
    if kind:
        data["kind"] = kind
    if headers:
        data["headers"] = dict(headers)
    abort(status, **data)
    raise AssertionError("unreachable")  # abort raises; this tells the type checker


def problem_response(error: HTTPException) -> Response:
    """The problem for any HTTP error on /api (ours, webargs', werkzeug's routing)."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    detail = data.get("message") or DETAILS.get(status) or error.description or ""
    body: dict[str, Any] = {
        "type": f"/api/docs#problem-{data['kind']}" if data.get("kind") else "about:blank",
        "title": _phrase(status),
        "status": status,
        "detail": str(detail),
    }
    errors = data.get("errors") or _flatten(data.get("messages"))
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in error.get_headers():
        if name.lower() in ("allow", "retry-after"):
            response.headers[name] = value
    for name, value in dict(data.get("headers") or {}).items():
        response.headers[name] = value
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="image library"'
    return response


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _flatten(messages: Any, prefix: str = "") -> dict[str, str]:
    """webargs' {"json": {"tags": {0: ["..."]}}} -> {"tags.0": "..."}: one message a field,
    named as the client sent it (the location is dropped)."""
    if not isinstance(messages, Mapping):
        return {}
    flat: dict[str, str] = {}
    for key, value in messages.items():
        name = str(key) if prefix or key not in _LOCATIONS else ""
        path = f"{prefix}.{name}" if prefix and name else (name or prefix)
        if isinstance(value, Mapping):
            flat.update(_flatten(value, path))
        elif isinstance(value, list | tuple):
            texts = [str(v) for v in value if not isinstance(v, Mapping)]
            for nested in (v for v in value if isinstance(v, Mapping)):
                flat.update(_flatten(nested, path))
            if texts:
                flat[path or "body"] = " ".join(texts)
        else:
            flat[path or "body"] = str(value)
    return flat


_LOCATIONS = ("json", "query", "querystring", "form", "files", "headers", "view_args")
