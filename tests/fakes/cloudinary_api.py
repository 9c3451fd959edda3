"""A local emulator of the Cloudinary Upload API, for tests.

The real ``cloudinary`` SDK talks to it unchanged. Point the SDK at it either per call, with
``cloudinary.uploader.upload(data, timeout=5, **emulator.sdk_options)``, or globally, with
``CLOUDINARY_URL=emulator.cloudinary_url`` in the environment followed by
``cloudinary.reset_config()``.

What the SDK (1.46) sends, and what the emulator therefore checks:

* ``POST {upload_prefix}/v1_1/{cloud}/{resource_type}/{action}`` as multipart/form-data, with
  ``action`` one of ``upload``, ``destroy``, ``tags``.
* Every parameter is a form field; lists are sent as repeated ``name[]`` fields and are signed
  joined with commas. The file is the ``file`` field: a file part for bytes/streams/paths, a
  plain field for a URL or a data URI.
* ``signature`` = SHA-1 (or SHA-256) hex of ``api_string_to_sign(params) + api_secret`` over
  every field except ``file``, ``api_key``, ``resource_type``, ``cloud_name`` and
  ``signature`` (signature version 2: ``&`` in values becomes ``%26``). The ``tags`` and
  ``context`` endpoints also leave ``notification_url`` and ``batch_id`` out.
* Booleans arrive as ``"1"`` / ``"0"``; ``tags`` as ``"a,b"``; ``context`` as ``"k=v|k2=v2"``
  with ``=`` and ``|`` escaped by a backslash.

Delivery types, as the real API treats them: ``type`` is ``upload`` (public, the default),
``private`` or ``authenticated``; anything else is refused with 400. An asset is found by
destroy only with its own type. ``delivery_status(url)`` answers what res.cloudinary.com would
for a delivery URL: an ``authenticated`` asset needs the URL signature (``s--XXXXXXXX--``,
the first 8 URL-safe base64 characters of SHA-1 over ``<transformation>/<public_id>.<ext>``
plus the API secret), so an edited URL (another transformation, the original) is a 401.

Fault injection (``inject``) applies to upload requests only, one fault per request, in the
order injected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import json
import re
import secrets
import string
import sys
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from cloudinary.utils import (
    SIGNATURE_SHA1,
    SIGNATURE_SHA256,
    api_sign_request,
    api_string_to_sign,
)
from PIL import Image

__all__ = ["FAULT_KINDS", "CloudinaryEmulator", "Upload"]

Params = dict[str, str | list[str]]

# kind -> (HTTP status, content type, body). "slow" and "disconnect" are handled separately.
_FAULT_RESPONSES: dict[str, tuple[int, str, bytes]] = {
    "server_error": (500, "application/json", b'{"error": {"message": "General Error"}}'),
    "server_error_no_body": (
        502,
        "text/html",
        b"<html><head><title>502 Bad Gateway</title></head>"
        b"<body><center><h1>502 Bad Gateway</h1></center></body></html>",
    ),
    "bad_gateway_json": (502, "application/json", b'{"error": {"message": "Bad Gateway"}}'),
    "unavailable": (503, "application/json", b'{"error": {"message": "Service Unavailable"}}'),
    "no_error_key": (500, "application/json", b'{"message": "Internal Server Error"}'),
    "rate_limited": (420, "application/json", b'{"error": {"message": "Rate Limit Exceeded"}}'),
    "too_large": (
        400,
        "application/json",
        b'{"error": {"message": "File size too large. Got 12345678. Maximum is 10485760."}}',
    ),
    "bad_request": (400, "application/json", b'{"error": {"message": "Invalid image file"}}'),
    "unauthorized": (
        401,
        "application/json",
        b'{"error": {"message": "Invalid Signature 0000000000000000000000000000000000000000. '
        b"String to sign - 'timestamp=0'.\"}}",
    ),
}
FAULT_KINDS: frozenset[str] = frozenset({*_FAULT_RESPONSES, "slow", "disconnect"})

# Fields that never take part in the signature.
_UNSIGNED_FIELDS = frozenset({"file", "api_key", "resource_type", "cloud_name", "signature"})
# The SDK sends these to the tags/context endpoints but leaves them out of the signature.
_NON_SIGNABLE_NOTIFICATION = frozenset({"notification_url", "batch_id"})
_SIGNATURE_MAX_AGE = 3600  # seconds
_PUBLIC_ID_ALPHABET = string.ascii_lowercase + string.digits
_DATA_URI_RE = re.compile(r"data:([\w-]+/[\w.+-]+)?(;[\w-]+=[\w-]+)*;base64,(.*)", re.DOTALL)
_REMOTE_URL_RE = re.compile(r"(ftp|https?|s3|gs):", re.IGNORECASE)
_PATH_RE = re.compile(r"/v1_1/([^/]+)/([^/]+)/([^/]+)/?")
_PING_RE = re.compile(r"/v1_1/([^/]+)/ping/?")
_HEADER_PARAM_RE = re.compile(r';\s*([\w*-]+)="([^"]*)"')
_FORMAT_NAMES = {"JPEG": "jpg", "MPO": "jpg", "TIFF": "tiff"}
DELIVERY_TYPES = frozenset({"upload", "private", "authenticated"})
_DELIVERY_RE = re.compile(r"https?://res\.cloudinary\.com/([^/]+)/image/([^/]+)/(.*)")
_TRANSFORMATION_RE = re.compile(r"[a-z]{1,3}_[^/,]*(,[a-z]{1,3}_[^/,]*)*")


@dataclass
class Upload:
    """One stored image, as the emulator holds it."""

    public_id: str  # full public id, folder included
    folder: str | None
    version: int
    data: bytes
    params: dict[str, str]  # the upload's form fields, file excluded, lists joined with commas
    tags: list[str]
    context: dict[str, str]
    format: str
    width: int | None
    height: int | None
    original_filename: str = "file"
    type: str = "upload"  # the delivery type: upload (public), private or authenticated
    asset_id: str = ""
    version_id: str = ""
    created_at: str = ""
    etag: str = ""

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class _Request:
    path: str
    cloud: str | None
    resource_type: str | None
    action: str | None
    params: Params
    file: bytes | str | None = None
    filename: str | None = None
    signature_ok: bool | None = None


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    disconnect: bool = False


@dataclass
class _Fault:
    kind: str
    delay: float = 0.0


class _ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json_reply(status: int, payload: dict[str, Any]) -> _Reply:
    return _Reply(status, json.dumps(payload).encode())


def _random_id(length: int = 20) -> str:
    return "".join(secrets.choice(_PUBLIC_ID_ALPHABET) for _ in range(length))


def _truthy(value: str | list[str] | None, *, default: bool) -> bool:
    if value is None or isinstance(value, list):
        return default
    return value.strip().lower() not in {"0", "false", ""}


def _unescape_header_value(value: str) -> str:
    # urllib3 2.x follows the WHATWG rules: '"', CR and LF are percent encoded.
    return value.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")


def _parse_multipart(
    body: bytes, content_type: str
) -> tuple[Params, bytes | str | None, str | None]:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise _ApiError(400, "Malformed multipart body: no boundary")
    delimiter = b"--" + match.group(1).encode("latin-1")
    params: Params = {}
    file: bytes | str | None = None
    filename: str | None = None
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        part = chunk.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            raise _ApiError(400, "Malformed multipart body: part without headers")
        disposition = ""
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-disposition":
                disposition = value.strip()
        header_params = {
            k.lower(): _unescape_header_value(v) for k, v in _HEADER_PARAM_RE.findall(disposition)
        }
        name = header_params.get("name")
        if name is None:
            raise _ApiError(400, "Malformed multipart body: part without a name")
        if name == "file":
            if "filename" in header_params:
                file, filename = content, header_params["filename"]
            else:
                file = content.decode("utf-8", "replace")
            continue
        _add_param(params, name, content.decode("utf-8", "replace"))
    return params, file, filename


def _parse_urlencoded(body: bytes) -> tuple[Params, str | None]:
    params: Params = {}
    file: str | None = None
    for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        if name == "file":
            file = value
        else:
            _add_param(params, name, value)
    return params, file


def _add_param(params: Params, name: str, value: str) -> None:
    if name.endswith("[]"):
        existing = params.setdefault(name[:-2], [])
        if isinstance(existing, list):
            existing.append(value)
        else:
            params[name[:-2]] = [existing, value]
    else:
        params[name] = value


def _split_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else value.split(",")
    return [item.strip() for item in items if item.strip()]


def _parse_context(value: str | list[str] | None) -> dict[str, str]:
    """Decode ``k=v|k2=v2`` where ``\\=`` and ``\\|`` are literal characters."""
    if not value or isinstance(value, list):
        return {}
    pairs: dict[str, str] = {}
    key: list[str] = []
    current: list[str] = []
    in_value = False
    chars = iter(value)
    for char in chars:
        if char == "\\":
            current.append(next(chars, ""))
        elif char == "=" and not in_value:
            key, current, in_value = current, [], True
        elif char == "|":
            if in_value:
                pairs["".join(key)] = "".join(current)
            key, current, in_value = [], [], False
        else:
            current.append(char)
    if in_value:
        pairs["".join(key)] = "".join(current)
    return pairs


def _decode_file(file: bytes | str | None) -> bytes:
    if file is None or file in {b"", ""}:
        raise _ApiError(400, "Missing required parameter - file")
    if isinstance(file, bytes):
        return file
    data_uri = _DATA_URI_RE.fullmatch(file.strip())
    if data_uri:
        try:
            return base64.b64decode(data_uri.group(3), validate=False)
        except (binascii.Error, ValueError) as exc:
            raise _ApiError(400, "Invalid image file") from exc
    if _REMOTE_URL_RE.match(file):
        raise _ApiError(400, f"Remote URLs are not supported by the emulator: {file[:100]}")
    return file.encode("utf-8")


def _probe_image(data: bytes) -> tuple[str, int, int]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                image_format = image.format or "unknown"
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise _ApiError(400, "Invalid image file") from exc
    return _FORMAT_NAMES.get(image_format, image_format.lower()), width, height


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: CloudinaryEmulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (read timeout) makes the late answer fail with a broken pipe:
        # expected, so keep it off stderr but remember it.
        self.emulator.errors.append(repr(sys.exc_info()[1]))


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # seconds a client may take to send its request
    server_version = "cloudinary-emulator"

    def do_POST(self) -> None:
        self.server.emulator._handle(self)

    def do_GET(self) -> None:
        self.server.emulator._handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class CloudinaryEmulator:
    """An in-process Cloudinary Upload API: upload, destroy, tags."""

    def __init__(
        self,
        *,
        cloud_name: str = "demo-cloud",
        api_key: str = "123456789012345",
        api_secret: str = "emulator-secret",  # noqa: S107 - a test fixture's secret
        max_bytes: int = 10 * 1024 * 1024,
    ) -> None:
        self.cloud_name = cloud_name
        self.api_key = api_key
        self.api_secret = api_secret
        self.max_bytes = max_bytes
        self.uploads: dict[str, Upload] = {}
        self.calls: list[dict[str, Any]] = []
        self.stored: list[Upload] = []  # every upload that stored bytes, overwrites included
        self.errors: list[str] = []  # exceptions raised while answering (e.g. broken pipes)
        self._faults: deque[_Fault] = deque()
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._last_version = 0

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> CloudinaryEmulator:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="cloudinary-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # wakes up "slow" requests
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The ``upload_prefix``: ``http://127.0.0.1:PORT``."""
        if self._server is None:
            raise RuntimeError("CloudinaryEmulator is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def cloudinary_url(self) -> str:
        return (
            f"cloudinary://{self.api_key}:{self.api_secret}@{self.cloud_name}"
            f"?upload_prefix={self.url}"
        )

    @property
    def sdk_options(self) -> dict[str, str]:
        """Per-call SDK options that point one call at the emulator without global config."""
        return {
            "cloud_name": self.cloud_name,
            "api_key": self.api_key,
            "api_secret": self.api_secret,
            "upload_prefix": self.url,
        }

    # -- test controls ------------------------------------------------------------------------

    def inject(self, kind: str, *, times: int = 1, delay: float = 0.0) -> None:
        """Queue ``times`` faults of ``kind`` for the next upload requests."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        with self._cond:
            self._faults.extend(_Fault(kind, delay) for _ in range(times))

    def clear_faults(self) -> None:
        """Drop the faults not yet used: a fault window (bench/soak.py) ends now."""
        with self._cond:
            self._faults.clear()

    def pending_faults(self) -> list[str]:
        with self._cond:
            return [fault.kind for fault in self._faults]

    def wait_for_uploads(self, count: int, timeout: float = 10.0) -> list[Upload]:
        """Wait until ``count`` uploads stored bytes (overwrites count); return all of them."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.stored) >= count, timeout):
                raise TimeoutError(
                    f"expected {count} stored uploads within {timeout}s, got "
                    f"{len(self.stored)}; calls: {[(c['path'], c['status']) for c in self.calls]}"
                )
            return list(self.stored)

    # -- delivery -----------------------------------------------------------------------------

    def delivery_status(self, url: str) -> int:
        """What res.cloudinary.com answers to a GET of `url` (the emulator serves no bytes):
        200, 401 for an authenticated asset without a valid signature, 404 otherwise."""
        match = _DELIVERY_RE.fullmatch(url.split("?", 1)[0])
        if not match or match.group(1) != self.cloud_name:
            return 404
        delivery_type, rest = match.group(2), match.group(3)
        parts = rest.split("/")
        signature = parts.pop(0) if parts and re.fullmatch(r"s--[\w-]{8,32}--", parts[0]) else None
        transformations: list[str] = []
        while parts and _TRANSFORMATION_RE.fullmatch(parts[0]):
            transformations.append(parts.pop(0))
        if parts and re.fullmatch(r"v\d+", parts[0]):
            parts.pop(0)  # the version is not signed
        source = "/".join(parts)
        public_id = source.rsplit(".", 1)[0] if "." in source.rsplit("/", 1)[-1] else source
        with self._cond:
            upload = self.uploads.get(public_id)
        if upload is None or upload.type != delivery_type or delivery_type == "private":
            return 404
        if delivery_type == "authenticated":
            to_sign = "/".join([*transformations, source])
            if signature is None or not hmac.compare_digest(
                signature, self._url_signature(to_sign)
            ):
                return 401
        return 200

    def _url_signature(self, to_sign: str) -> str:
        digest = hashlib.sha1((to_sign + self.api_secret).encode(), usedforsecurity=False)
        return "s--" + base64.urlsafe_b64encode(digest.digest()).decode()[:8] + "--"

    # -- request handling ---------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        reply, request, fault = self._answer(handler)
        with self._cond:
            self.calls.append(
                {
                    "path": request.path,
                    "action": request.action,
                    "params": request.params,
                    "file_bytes": len(request.file) if request.file is not None else None,
                    "status": reply.status,
                    "signature_ok": request.signature_ok,
                    "fault": fault,
                }
            )
            self._cond.notify_all()
        if reply.disconnect:
            handler.close_connection = True
            return
        handler.send_response(reply.status)
        handler.send_header("Content-Type", reply.content_type)
        handler.send_header("Content-Length", str(len(reply.body)))
        handler.send_header("X-Request-Id", secrets.token_hex(16))
        handler.end_headers()
        handler.wfile.write(reply.body)

    def _answer(self, handler: _Handler) -> tuple[_Reply, _Request, str | None]:
        path = urlsplit(handler.path).path
        ping = _PING_RE.fullmatch(path)
        if ping is not None and handler.command == "GET":
            request = _Request(path, ping.group(1), resource_type=None, action="ping", params={})
            return self._ping(request, handler.headers.get("Authorization") or ""), request, None
        match = _PATH_RE.fullmatch(path)
        request = _Request(
            path=path,
            cloud=match.group(1) if match else None,
            resource_type=match.group(2) if match else None,
            action=match.group(3) if match else None,
            params={},
        )
        try:
            length = int(handler.headers.get("Content-Length") or 0)
            body = handler.rfile.read(length) if length > 0 else b""
            content_type = handler.headers.get("Content-Type") or ""
            if content_type.startswith("multipart/form-data"):
                request.params, request.file, request.filename = _parse_multipart(
                    body, content_type
                )
            elif body:
                request.params, request.file = _parse_urlencoded(body)
            if "signature" in request.params:
                request.signature_ok = self._signature_matches(request)
        except _ApiError as exc:
            return _json_reply(exc.status, {"error": {"message": exc.message}}), request, None

        fault = self._take_fault() if request.action == "upload" else None
        if fault is not None and fault.kind in _FAULT_RESPONSES:
            status, content_type, body = _FAULT_RESPONSES[fault.kind]
            return _Reply(status, body, content_type), request, fault.kind
        if fault is not None and fault.kind == "disconnect":
            return _Reply(0, disconnect=True), request, fault.kind
        if fault is not None and fault.kind == "slow":
            self._stopping.wait(fault.delay)

        try:
            reply = self._dispatch(handler.command, request)
        except _ApiError as exc:
            reply = _json_reply(exc.status, {"error": {"message": exc.message}})
        return reply, request, fault.kind if fault else None

    def _ping(self, request: _Request, authorization: str) -> _Reply:
        """The Admin API's ping (GET, HTTP basic auth with the API key and secret)."""
        expected = base64.b64encode(f"{self.api_key}:{self.api_secret}".encode()).decode()
        if request.cloud != self.cloud_name or not hmac.compare_digest(
            authorization, f"Basic {expected}"
        ):
            return _json_reply(401, {"error": {"message": "Invalid credentials"}})
        return _json_reply(200, {"status": "ok"})

    def _take_fault(self) -> _Fault | None:
        with self._cond:
            return self._faults.popleft() if self._faults else None

    def _dispatch(self, method: str, request: _Request) -> _Reply:
        if method != "POST" or request.action is None:
            raise _ApiError(404, f"Resource not found - {request.path}")
        if request.cloud != self.cloud_name:
            raise _ApiError(401, f"Invalid cloud_name {request.cloud}")
        if request.resource_type not in {"image", "auto"}:
            raise _ApiError(
                400, f"Emulator supports only image assets, not {request.resource_type}"
            )
        self._authenticate(request)
        handlers = {"upload": self._upload, "destroy": self._destroy, "tags": self._tags}
        action = handlers.get(request.action)
        if action is None:
            raise _ApiError(404, f"Unsupported action in emulator - {request.action}")
        return _json_reply(200, action(request))

    # -- signing ------------------------------------------------------------------------------

    def _params_to_sign(self, request: _Request) -> Params:
        excluded = set(_UNSIGNED_FIELDS)
        if request.action in {"tags", "context"}:
            excluded |= _NON_SIGNABLE_NOTIFICATION
        return {k: v for k, v in request.params.items() if k not in excluded}

    def _expected_signature(self, request: _Request, signature: str) -> str:
        algorithm = SIGNATURE_SHA256 if len(signature) == 64 else SIGNATURE_SHA1
        return api_sign_request(self._params_to_sign(request), self.api_secret, algorithm)

    def _signature_matches(self, request: _Request) -> bool:
        signature = request.params.get("signature")
        if not isinstance(signature, str):
            return False
        expected = self._expected_signature(request, signature)
        return hmac.compare_digest(expected.encode(), signature.encode())

    def _authenticate(self, request: _Request) -> None:
        params = request.params
        api_key = params.get("api_key")
        if not api_key:
            raise _ApiError(401, "Must supply api_key")
        if api_key != self.api_key:
            raise _ApiError(401, f"Unknown API key {api_key}")
        timestamp = params.get("timestamp")
        if not isinstance(timestamp, str) or not timestamp:
            raise _ApiError(400, "Missing required parameter - timestamp")
        try:
            reported = int(timestamp)
        except ValueError as exc:
            raise _ApiError(400, f"Invalid timestamp {timestamp}") from exc
        if reported < time.time() - _SIGNATURE_MAX_AGE:
            when = datetime.fromtimestamp(reported, UTC).strftime("%Y-%m-%d %H:%M:%S +0000")
            raise _ApiError(
                400, f"Stale request - reported time is {when} which is more than 1 hour ago"
            )
        signature = params.get("signature")
        if not isinstance(signature, str) or not signature:
            raise _ApiError(401, "Missing required parameter - signature")
        if not request.signature_ok:
            to_sign = api_string_to_sign(self._params_to_sign(request))
            raise _ApiError(401, f"Invalid Signature {signature}. String to sign - '{to_sign}'.")

    # -- actions ------------------------------------------------------------------------------

    def _upload(self, request: _Request) -> dict[str, Any]:
        params = request.params
        data = _decode_file(request.file)
        if len(data) > self.max_bytes:
            raise _ApiError(
                400, f"File size too large. Got {len(data)}. Maximum is {self.max_bytes}."
            )
        delivery_type = params.get("type") or "upload"
        if not isinstance(delivery_type, str) or delivery_type not in DELIVERY_TYPES:
            raise _ApiError(400, f"Invalid type parameter - {delivery_type}")
        image_format, width, height = _probe_image(data)
        forced_format = params.get("format")
        if isinstance(forced_format, str) and forced_format:
            image_format = forced_format.lower()

        folder_param = params.get("folder")
        folder = folder_param.strip("/") if isinstance(folder_param, str) else ""
        original_filename = (request.filename or "file").rsplit("/", 1)[-1].rsplit(".", 1)[0]
        public_id = self._public_id(params, folder, original_filename)

        with self._cond:
            existing = self.uploads.get(public_id)
            if existing is not None and existing.type != delivery_type:
                existing = None  # another asset: the same public id under another type
            if existing is not None and not _truthy(params.get("overwrite"), default=True):
                return self._resource_json(existing, existing=True)
            version = max(int(time.time()), self._last_version + 1)
            self._last_version = version
            upload = Upload(
                public_id=public_id,
                folder=folder or None,
                version=version,
                data=data,
                params={k: ",".join(v) if isinstance(v, list) else v for k, v in params.items()},
                tags=_split_list(params.get("tags")),
                context=_parse_context(params.get("context")),
                format=image_format,
                width=width,
                height=height,
                original_filename=original_filename or "file",
                type=delivery_type,
                asset_id=existing.asset_id if existing else secrets.token_hex(16),
                version_id=secrets.token_hex(16),
                created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                etag=hashlib.md5(data, usedforsecurity=False).hexdigest(),
            )
            self.uploads[public_id] = upload
            self.stored.append(upload)
            self._cond.notify_all()
            return self._resource_json(upload, existing=False)

    def _public_id(self, params: Params, folder: str, original_filename: str) -> str:
        given = params.get("public_id")
        if isinstance(given, str) and given.strip("/"):
            base = given.strip("/")
        elif _truthy(params.get("use_filename"), default=False) and original_filename:
            base = original_filename
            if _truthy(params.get("unique_filename"), default=True):
                base = f"{base}_{_random_id(6)}"
        else:
            base = _random_id()
        return f"{folder}/{base}" if folder else base

    def _resource_json(self, upload: Upload, *, existing: bool) -> dict[str, Any]:
        source = f"{upload.public_id}.{upload.format}"
        signed = f"{self._url_signature(source)}/" if upload.type == "authenticated" else ""
        path = f"image/{upload.type}/{signed}v{upload.version}/{source}"
        result: dict[str, Any] = {
            "asset_id": upload.asset_id,
            "public_id": upload.public_id,
            "version": upload.version,
            "version_id": upload.version_id,
            "signature": api_sign_request(
                {"public_id": upload.public_id, "version": str(upload.version)}, self.api_secret
            ),
            "width": upload.width,
            "height": upload.height,
            "format": upload.format,
            "resource_type": "image",
            "created_at": upload.created_at,
            "tags": list(upload.tags),
            "bytes": upload.size,
            "type": upload.type,
            "etag": upload.etag,
            "placeholder": False,
            "url": f"http://res.cloudinary.com/{self.cloud_name}/{path}",
            "secure_url": f"https://res.cloudinary.com/{self.cloud_name}/{path}",
            "folder": upload.folder or "",
            "original_filename": upload.original_filename,
            "api_key": self.api_key,
            "existing": existing,
        }
        if upload.context:
            result["context"] = {"custom": dict(upload.context)}
        return result

    def _destroy(self, request: _Request) -> dict[str, Any]:
        public_id = request.params.get("public_id")
        if not isinstance(public_id, str) or not public_id:
            raise _ApiError(400, "Missing required parameter - public_id")
        delivery_type = request.params.get("type") or "upload"
        with self._cond:
            found = self.uploads.get(public_id)
            if found is None or found.type != delivery_type:
                return {"result": "not found"}
            del self.uploads[public_id]
        return {"result": "ok"}

    def _tags(self, request: _Request) -> dict[str, Any]:
        params = request.params
        command = params.get("command")
        if command not in {"add", "remove", "replace", "remove_all"}:
            raise _ApiError(400, "Missing required parameter - command")
        tags = _split_list(params.get("tag"))
        if command != "remove_all" and not tags and command != "replace":
            raise _ApiError(400, "Missing required parameter - tag")
        public_ids = _split_list(params.get("public_ids"))
        if not public_ids:
            raise _ApiError(400, "Missing required parameter - public_ids")
        updated: list[str] = []
        with self._cond:
            for public_id in public_ids:
                upload = self.uploads.get(public_id)
                if upload is None:
                    continue
                if command == "add":
                    upload.tags.extend(t for t in tags if t not in upload.tags)
                elif command == "remove":
                    upload.tags[:] = [t for t in upload.tags if t not in tags]
                elif command == "replace":
                    upload.tags[:] = tags
                else:
                    upload.tags.clear()
                updated.append(public_id)
        return {"public_ids": updated}
