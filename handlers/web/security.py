"""The web door's protections: the session key, response headers (OWASP's secure headers),
CSRF tokens on every state-changing request, local-only `next=` targets, and a limit on
sign-in attempts."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import deque
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, Response, request

from bot.config import Settings
from bot.services import kept_key

# Images come from our own routes, which may redirect to Cloudinary's delivery host.
CSP = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data: https://res.cloudinary.com",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)


def secret_key(settings: Settings) -> bytes:
    """SECRET_KEY when set; else derived from the signing secret (every web process of an
    HTTP deployment has it, whatever its disk); else one generated once and kept in the
    data directory, so the embedded default needs nothing and sessions survive restarts."""
    if settings.secret_key:
        return settings.secret_key.encode()
    if settings.slack_signing_secret:
        return hmac.new(
            settings.slack_signing_secret.encode(), b"image-library web sessions", hashlib.sha256
        ).digest()
    return kept_key(settings.media_dir.parent / ".secret-key")


def add_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers.setdefault("Referrer-Policy", "same-origin")
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if request.is_secure:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    if response.mimetype == "text/html":
        headers["Cache-Control"] = "no-store"  # pages show what this person may see
    return response


def media_headers(response: Response) -> Response:
    """For image bytes: a sandbox, should a browser ever take one for a document, and no
    use by other sites."""
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return response


def local_path(target: str | None, default: str = "/") -> str:
    """`next=` only to a path on this site: never another host, scheme or `//host`."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(c) < 32 for c in target):
        return default
    return target


class RateLimit:
    """At most `limit` attempts per `window` seconds per key (a client address, a token)."""

    def __init__(self, limit: int, window: float) -> None:
        self._limit = limit
        self._window = window
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        return self.wait(key) == 0.0

    def wait(self, key: str) -> float:
        """0.0 when `key` may go ahead now (the attempt is counted); otherwise the seconds
        until it may (for `Retry-After`), and the attempt is not counted."""
        now = time.monotonic()
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen.clear()
            hits = self._seen.setdefault(key, deque())
            while hits and hits[0] <= now - self._window:
                hits.popleft()
            if len(hits) >= self._limit:
                return max(hits[0] + self._window - now, 0.001)
            hits.append(now)
            return 0.0


def asset_versions(app: Flask) -> dict[str, str]:
    """Content hashes of the static files: their URLs change when they do, so browsers may
    keep them for a year."""
    folder = Path(app.static_folder or "")
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        for path in folder.iterdir()
        if path.is_file()
    }
