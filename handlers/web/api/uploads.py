"""Uploading through the API: one or many files in one multipart request, through the same
ingest as the web page and Slack (same checks, same refusal reasons), answered per file.
With an `Idempotency-Key`, a retried request gets the first answer and stores nothing
twice."""

from __future__ import annotations

import hashlib
from typing import Any

import marshmallow as ma
from flask import Request, request
from flask_smorest import Blueprint
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import FileStorage, MultiDict

from bot import idempotency
from bot.uploads import Audience, UploadRefused, audience_for, receive
from handlers.web.api import schemas
from handlers.web.api.guard import api_blueprint, person
from handlers.web.api.problems import fail
from handlers.web.context import services
from handlers.web.upload import spool


class _MultipartParser(FlaskParser):
    """The files and the form fields beside them, as one schema: one request body in the
    OpenAPI document (flask-smorest documents one location per body)."""

    def load_files(self, req: Request, schema: ma.Schema) -> Any:
        fields = MultiDict(req.form)
        fields.poplist("file")  # text is never a file
        for name, file in req.files.items(multi=True):
            fields.add(name, file)
        return self._makeproxy(fields, schema)


class _UploadBlueprint(Blueprint):  # type: ignore[misc]
    ARGUMENTS_PARSER = _MultipartParser()


bp = api_blueprint("uploads", "Add images to the library.", _UploadBlueprint)

MAX_FILES = 20
IDEMPOTENCY_HEADER = {
    "Idempotency-Key": {
        "description": "Any unique string (a UUID): a retry with the same key and the same "
        "request gets the first answer again; kept for 24 hours.",
        "schema": {"type": "string", "maxLength": idempotency.MAX_KEY_LENGTH},
        "required": False,
    }
}


@bp.before_request
def _room_for_files() -> None:
    """Several images in one request: the app's cap is one image's size."""
    limit = services().settings.max_image_bytes
    request.max_content_length = MAX_FILES * limit + 64 * 1024


@bp.post("/images")
@bp.arguments(schemas.UploadArgs, location="files")
@bp.response(200, schemas.UploadAnswerSchema)
@bp.alt_response(409, response="CONFLICT")
@bp.doc(
    parameters=[{"in": "header", "name": name, **spec} for name, spec in IDEMPOTENCY_HEADER.items()]
)
def upload(form: dict[str, Any]) -> Any:
    """Upload images (`file`, repeated), shared with `audience`: the whole workspace (not
    guests) or one conversation you are in. Each file is answered: stored, queued (a retry
    will finish it) or failed, with the reason."""
    chosen: list[FileStorage] = [f for f in form["file"] if f.filename is not None]
    if not chosen:
        fail(422, errors={"file": "Send at least one image as `file`."})
    if len(chosen) > MAX_FILES:
        fail(422, errors={"file": f"Send at most {MAX_FILES} images in one request."})
    key = request.headers.get("Idempotency-Key", "")
    if not key:
        return _upload(form["audience"], chosen)
    if len(key) > idempotency.MAX_KEY_LENGTH or "\x00" in key:
        fail(422, errors={"Idempotency-Key": "Use at most 255 characters."})
    me, library = person(), services()
    owner = {"team_id": me.team_id, "user_id": me.user_id, "key": key}
    try:
        stored = idempotency.claim(
            library,
            **owner,
            request_hash=_fingerprint(form["audience"], chosen),
            now=library.clock(),
        )
    except idempotency.KeyReused:
        fail(
            422,
            "This Idempotency-Key was used with a different request; use a new key.",
            kind="idempotency-key-reused",
        )
    except idempotency.StillWorking:
        fail(
            409,
            "A request with this Idempotency-Key is still being answered; retry shortly.",
            kind="idempotency-key-in-use",
            headers={"Retry-After": "2"},
        )
    if stored is not None:
        return stored.body, stored.status, {"Idempotent-Replayed": "true"}
    try:
        body = _upload(form["audience"], chosen)
    except Exception:
        idempotency.release(library, **owner)
        raise
    idempotency.complete(library, **owner, status=200, body=body)
    return body


def _fingerprint(audience: str, files: list[FileStorage]) -> str:
    digest = hashlib.sha256(f"{audience}\n".encode())
    for file in files:
        digest.update(f"{file.filename}\n".encode("utf-8", "surrogateescape"))
        file.stream.seek(0)
        while chunk := file.stream.read(1024 * 1024):
            digest.update(chunk)
        file.stream.seek(0)
        digest.update(b"\n--\n")
    return digest.hexdigest()


def _upload(choice: str, files: list[FileStorage]) -> dict[str, Any]:
    try:
        audience = audience_for(services(), person(), choice)
    except UploadRefused as exc:
        fail(422, errors={"audience": str(exc)})
    return {"items": [_take(file, audience) for file in files]}


def _take(file: FileStorage, audience: Audience) -> dict[str, Any]:
    """Keep one file, then ingest it."""
    library = services()
    path, name = spool(file)
    try:
        result = receive(
            library,
            person(),
            path=path,
            name=name,
            content_type=file.mimetype or "",
            audience=audience,
        )
    except UploadRefused as exc:
        path.unlink(missing_ok=True)
        return {
            "name": name,
            "state": "failed",
            "image_id": None,
            "title": None,
            "reason": str(exc),
            "duplicate_of": None,
        }
    return {
        "name": name,
        "state": result.state,
        "image_id": result.image_id,
        "title": result.title,
        "reason": result.reason,
        "duplicate_of": result.duplicate_of,
    }
