"""Where originals live: Cloudinary in production, the local disk by default.

Both stores are content-addressed by the original's sha256, so storing the same bytes twice
(a retried job, a re-posted photo) writes nothing new and returns the same key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, urlencode, urlparse

from storage.media_errors import MediaError, cloudinary_error

log = logging.getLogger(__name__)

# Extension per Pillow format name, for keys and delivered file names.
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "HEIF": "heic"}
CONTENT_TYPES = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "heic": "image/heic",
}


@dataclass(frozen=True)
class StoredMedia:
    key: str
    url: str
    bytes: int


@dataclass(frozen=True)
class MediaInfo:
    """What the store needs to know about an original besides its bytes."""

    sha256: str
    format: str
    team_id: str
    category: str | None = None
    tags: tuple[str, ...] = ()
    context: tuple[tuple[str, str], ...] = ()


class MediaStore(Protocol):
    name: str

    def put(self, path: Path, info: MediaInfo) -> StoredMedia:
        """Store the file at `path` (the caller keeps ownership of it). Idempotent."""
        ...

    def delete(self, key: str) -> None: ...

    def thumbnail_url(self, key: str, *, width: int, height: int) -> str | None:
        """A URL Slack can fetch for a preview, or None when this store cannot offer one."""
        ...

    def original_url(self, key: str) -> str | None: ...

    def problem(self) -> str | None:
        """Why the store cannot take originals right now (for /healthz), or None."""
        ...


def _slug(text: str | None) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", (text or "").lower()).strip("-")
    return slug[:60] or "uncategorised"


# --------------------------------------------------------------------------------------------
# Local disk


Thumbnailer = Callable[[Path, Path, int, int, bool], None]  # crop: fill the box
"""(original, destination, width, height): write a JPEG preview fitting width x height."""


class LocalStore:
    """Files under `root/originals/<team>/<sha[:2]>/<sha>.<ext>`, written to a temporary file
    and renamed into place, so a reader never sees half a file. Served by the app itself from
    signed, expiring URLs (`/media/...`); thumbnails are made by `thumbnailer` (the app's
    budgeted libvips decode) on first request and kept."""

    name = "local"

    def __init__(
        self,
        root: Path,
        *,
        signing_key: bytes,
        public_base_url: str | None = None,
        thumbnailer: Thumbnailer | None = None,
    ) -> None:
        self.root = root
        self._signing_key = signing_key
        self._public_base_url = public_base_url
        self._thumbnailer = thumbnailer
        # One lock per thumbnail being made: Slack fetches several previews of one image at
        # once, and only the first request should decode.
        self._making: dict[Path, threading.Lock] = {}
        self._making_guard = threading.Lock()
        (root / "originals").mkdir(parents=True, exist_ok=True)
        (root / "thumbs").mkdir(parents=True, exist_ok=True)
        (root / "tmp").mkdir(parents=True, exist_ok=True)

    def put(self, path: Path, info: MediaInfo) -> StoredMedia:
        ext = EXTENSIONS.get(info.format, "bin")
        key = f"{_safe(info.team_id)}/{info.sha256[:2]}/{info.sha256}.{ext}"
        target = self.path_for(key)
        size = path.stat().st_size
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=self.root / "tmp", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as out, path.open("rb") as src:
                    shutil.copyfileobj(src, out, 1024 * 1024)
                    out.flush()
                    os.fsync(out.fileno())
                Path(tmp_name).replace(target)
            except OSError as exc:
                Path(tmp_name).unlink(missing_ok=True)
                raise MediaError(
                    f"could not write the original to disk: {exc}", retryable=True
                ) from None
        return StoredMedia(key=key, url=self.signed_url(key) or "", bytes=size)

    def path_for(self, key: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9_-]+/[0-9a-f]{2}/[0-9a-f]{64}\.[a-z]{3,4}", key):
            raise MediaError("not a media key", retryable=False)
        return self.root / "originals" / key

    def problem(self) -> str | None:
        for folder in ("originals", "tmp"):
            if not os.access(self.root / folder, os.W_OK | os.X_OK):
                return f"cannot write to the media directory ({folder})"
        return None

    def delete(self, key: str) -> None:
        self.path_for(key).unlink(missing_ok=True)
        for thumb in (self.root / "thumbs").glob(f"{Path(key).stem}_*"):
            thumb.unlink(missing_ok=True)

    def thumbnail_path(self, key: str, *, width: int, height: int, crop: bool = False) -> Path:
        """Make (once) and return a JPEG thumbnail fitting in width x height (or, with
        `crop`, filling it, cut from the centre)."""
        cut = "c" if crop else ""
        thumb = self.root / "thumbs" / f"{Path(key).stem}_{width}x{height}{cut}.jpg"
        if thumb.is_file():
            return thumb
        if self._thumbnailer is None:
            raise MediaError("this store makes no thumbnails", retryable=False)
        with self._making_guard:
            lock = self._making.setdefault(thumb, threading.Lock())
        try:
            with lock:
                if thumb.is_file():  # made by the request we waited for
                    return thumb
                original = self.path_for(key)
                if not original.is_file():
                    raise FileNotFoundError(original)
                fd, tmp_name = tempfile.mkstemp(dir=self.root / "tmp", suffix=".jpg")
                os.close(fd)
                try:
                    self._thumbnailer(original, Path(tmp_name), width, height, crop)
                    Path(tmp_name).replace(thumb)
                finally:
                    Path(tmp_name).unlink(missing_ok=True)
        finally:
            with self._making_guard:
                if not lock.locked():
                    self._making.pop(thumb, None)
        return thumb

    def thumbnail_url(self, key: str, *, width: int, height: int) -> str | None:
        return self.signed_url(key, width=width, height=height)

    def original_url(self, key: str) -> str | None:
        return self.signed_url(key)

    def signed_url(
        self,
        key: str,
        *,
        width: int = 0,
        height: int = 0,
        crop: bool = False,
        ttl_seconds: int = 7 * 24 * 3600,
        base_url: str | None = None,
    ) -> str | None:
        """An expiring link to the original (or a thumbnail: fitted in its box, or `crop`ped
        to fill it), or None without PUBLIC_BASE_URL (or `base_url`: the address a request
        for the link came to)."""
        base = self._public_base_url or base_url
        if not base:
            return None
        expires = int(time.time()) + ttl_seconds
        query = {"e": str(expires), "w": str(width), "h": str(height)}
        if crop:
            query["c"] = "1"
        query["s"] = self._signature(key, query)
        return f"{base}/media/{key}?{urlencode(query)}"

    def verify_signed_path(self, path: str, query: str) -> tuple[str, int, int, bool] | None:
        """Check a `/media/<key>?...` request; return (key, width, height, crop) when valid."""
        key = path.removeprefix("/media/")
        params = {k: v[0] for k, v in parse_qs(query).items()}
        try:
            expires, width, height = int(params["e"]), int(params["w"]), int(params["h"])
            self.path_for(key)
        except (KeyError, ValueError, MediaError):
            return None
        signed = {"e": params["e"], "w": params["w"], "h": params["h"]}
        crop = params.get("c") == "1"
        if crop:
            signed["c"] = "1"
        expected = self._signature(key, signed)
        # Bytes, not str: compare_digest raises TypeError on a str with non-ASCII characters,
        # and a mangled link must be a 403 like any other bad link, not a 500.
        given = params.get("s", "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(expected.encode(), given) or expires < time.time():
            return None
        if not (0 <= width <= 2048 and 0 <= height <= 2048):
            return None
        return key, width, height, crop

    def _signature(self, key: str, query: dict[str, str]) -> str:
        # A cropped link signs one more field; links made before crops existed still verify.
        message = f"{key}|{query['e']}|{query['w']}|{query['h']}".encode()
        if query.get("c"):
            message += b"|c"
        digest = hmac.new(self._signing_key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode()


def _safe(team_id: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", team_id):
        raise MediaError("team id has unexpected characters", retryable=False)
    return team_id


# --------------------------------------------------------------------------------------------
# Cloudinary


class CloudinaryStore:
    """Originals in Cloudinary under `library/<team>/<category>/<sha256>`.

    Uploaded as `authenticated`: Cloudinary delivers them (and any transformation of them)
    only from URLs signed with our API secret, so someone who saw one preview URL cannot edit
    it into the original or another size. Every URL we hand out is signed.

    The SDK's configuration is passed on every call (never set globally) so tests and
    several stores in one process cannot leak settings into each other.
    """

    delivery_type = "authenticated"

    name = "cloudinary"

    def __init__(self, cloudinary_url: str, *, timeout: float = 60.0) -> None:
        parsed = urlparse(cloudinary_url)
        query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        self._options: dict[str, str] = {
            "cloud_name": parsed.hostname or "",
            "api_key": parsed.username or "",
            "api_secret": parsed.password or "",
        }
        if "upload_prefix" in query:
            self._options["upload_prefix"] = query["upload_prefix"]
        self._timeout = timeout

    def __repr__(self) -> str:  # never show the secret
        return f"CloudinaryStore(cloud_name={self._options['cloud_name']!r})"

    def put(self, path: Path, info: MediaInfo) -> StoredMedia:
        import cloudinary.uploader

        folder = f"library/{_safe(info.team_id)}/{_slug(info.category)}"
        try:
            result = cloudinary.uploader.upload(
                str(path),
                folder=folder,
                public_id=info.sha256,
                overwrite=False,
                unique_filename=False,
                resource_type="image",
                type=self.delivery_type,
                tags=list(info.tags),
                context=dict(info.context),
                timeout=self._timeout,
                **self._options,
            )
        except Exception as exc:  # the SDK raises its own hierarchy and socket errors
            raise cloudinary_error(exc, operation="upload") from None
        if not isinstance(result, dict) or not result.get("public_id"):
            raise cloudinary_error(None, operation="upload")
        return StoredMedia(
            key=str(result["public_id"]),
            url=str(result.get("secure_url") or result.get("url") or ""),
            bytes=int(result.get("bytes") or path.stat().st_size),
        )

    def delete(self, key: str) -> None:
        import cloudinary.uploader

        try:
            cloudinary.uploader.destroy(
                key,
                type=self.delivery_type,
                invalidate=True,
                timeout=self._timeout,
                **self._options,
            )
        except Exception as exc:
            raise cloudinary_error(exc, operation="destroy") from None

    def problem(self) -> str | None:
        """Asks Cloudinary's Admin API (ping), with a short timeout: it answers a probe."""
        import cloudinary.api

        try:
            cloudinary.api.ping(timeout=5, **self._options)
        except Exception as exc:
            return str(cloudinary_error(exc, operation="ping"))
        return None

    def thumbnail_url(self, key: str, *, width: int, height: int) -> str | None:
        return self._signed_url(
            key, width=width, height=height, crop="fill", quality="auto", fetch_format="auto"
        )

    def rendition_url(
        self, key: str, *, width: int, height: int, crop: bool, download: bool = False
    ) -> str:
        """A ready-made size, made by Cloudinary on first request: fitted within the box
        (`limit`, never enlarged) or filling it from the centre (`fill`); with `download`,
        delivered as an attachment."""
        options: dict[str, str | int] = {"flags": "attachment"} if download else {}
        return self._signed_url(
            key,
            width=width,
            height=height,
            crop="fill" if crop else "limit",
            quality="auto",
            fetch_format="auto",
            **options,
        )

    def signed_original(self, key: str) -> str:
        return self._signed_url(key)

    def download_url(self, key: str) -> str:
        """The original, delivered as an attachment."""
        return self._signed_url(key, flags="attachment")

    def original_url(self, key: str) -> str | None:
        return self._signed_url(key)

    def _signed_url(self, key: str, **transformation: str | int) -> str:
        """Built offline by the SDK: `s--<signature>--` covers the transformation and the
        public id, so changing either breaks the link."""
        from cloudinary import CloudinaryImage

        return str(
            CloudinaryImage(key).build_url(
                type=self.delivery_type,
                sign_url=True,
                secure=True,
                cloud_name=self._options["cloud_name"],
                api_secret=self._options["api_secret"],
                **transformation,
            )
        )
