"""Files posted in Slack: the library's `bot.ports.FileSource`, fetching the bytes with the
bot token, safely.

Two traps shape this module. Slack answers a download that lacks the token (or the
`files:read` scope) with 200 and an HTML login page, so the content type and the first bytes
are checked. And redirects can cross hosts: the token must only ever go to Slack (or the
configured API host, which tests point at the emulator), so redirects are followed by hand.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

from slack_sdk.errors import SlackApiError

from bot.domain import PostedFile
from bot.ports import Downloaded, DownloadError
from handlers.slack.gateway import SlackGateway

log = logging.getLogger(__name__)

SLACK_FILE_HOSTS = ("slack.com", "slack-edge.com", "slack-files.com")
MAX_REDIRECTS = 3
CHUNK = 256 * 1024


class SlackFiles:
    """The bytes of posted files, for the ingest (`bot.ports.FileSource`)."""

    def __init__(self, gateway: SlackGateway, *, api_host: str | None) -> None:
        self._gateway = gateway
        self._api_host = api_host  # tests point the API at the emulator: it may get the token

    def resolve(self, team_id: str, file_id: str) -> PostedFile:
        """Full details of a file whose event carried a stub (Slack Connect)."""
        self._token(team_id)
        try:
            response = self._gateway.client(team_id).files_info(file=file_id)
        except SlackApiError as exc:
            error = exc.response.get("error", "unknown_error")
            if error in ("file_not_found", "file_deleted"):
                raise DownloadError(
                    "the file was deleted from Slack before it could be saved", retryable=False
                ) from None
            raise DownloadError(f"Slack answered {error} to files.info", retryable=True) from None
        return posted_file_from_slack(response["file"])

    def fetch(self, team_id: str, url: str, *, dest_dir: Path, max_bytes: int) -> Downloaded:
        return download(
            url,
            token=self._token(team_id),
            api_host=self._api_host,
            dest_dir=dest_dir,
            max_bytes=max_bytes,
        )

    def _token(self, team_id: str) -> str:
        token = self._gateway.token_for(team_id)
        if not token:
            raise DownloadError("the app is not installed in this workspace", retryable=False)
        return token


def token_allowed_for(url: str, *, api_host: str | None) -> bool:
    """True when `url` is on a Slack host (or the configured API host) over a sane scheme."""
    parsed = urlparse(url)
    host = (parsed.hostname or "").lower()
    on_slack = any(host == base or host.endswith("." + base) for base in SLACK_FILE_HOSTS)
    if api_host and host == api_host.lower() and not on_slack:
        return parsed.scheme in ("http", "https")  # a test or proxy host, configured on purpose
    if parsed.scheme != "https":
        return False
    return any(host == base or host.endswith("." + base) for base in SLACK_FILE_HOSTS)


def download(
    url: str,
    *,
    token: str,
    api_host: str | None,
    dest_dir: Path,
    max_bytes: int,
    timeout: float = 30.0,
) -> Downloaded:
    """Stream `url` into a temporary file in `dest_dir`, hashing as it goes.

    The caller owns (and must delete) the returned file."""
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        parsed = urlparse(current)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise DownloadError("the file link is not a web address", retryable=False)
        headers = {"User-Agent": "image-library/1.0"}
        if token_allowed_for(current, api_host=api_host):
            headers["Authorization"] = f"Bearer {token}"
        elif current == url:
            raise DownloadError(
                f"the file is hosted on {parsed.hostname}, not Slack; it was not fetched",
                retryable=False,
            )
        conn_cls = (
            http.client.HTTPSConnection if parsed.scheme == "https" else http.client.HTTPConnection
        )
        conn = conn_cls(parsed.hostname, parsed.port, timeout=timeout)
        try:
            path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
            try:
                conn.request("GET", path or "/", headers=headers)
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise DownloadError(
                    f"could not reach Slack to fetch the file ({type(exc).__name__})",
                    retryable=True,
                ) from None
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise DownloadError("Slack redirected without a location", retryable=True)
                current = urljoin(current, location)
                continue
            return _receive(response, dest_dir=dest_dir, max_bytes=max_bytes)
        finally:
            conn.close()
    raise DownloadError("too many redirects while fetching the file", retryable=False)


def _receive(response: http.client.HTTPResponse, *, dest_dir: Path, max_bytes: int) -> Downloaded:
    status = response.status
    if status in (404, 410):
        raise DownloadError(
            "the file was deleted from Slack before it could be saved", retryable=False
        )
    if status in (401, 403):
        raise DownloadError(
            "Slack refused the download: the app needs the files:read scope", retryable=False
        )
    if status == 429 or status >= 500:
        raise DownloadError(f"Slack answered {status} to the download; will retry", retryable=True)
    if status != 200:
        raise DownloadError(f"Slack answered {status} to the download", retryable=False)
    content_type = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
    if content_type == "text/html":
        raise DownloadError(
            "Slack sent its login page instead of the file: the app is missing the "
            "files:read scope or the token was not accepted",
            retryable=False,
        )
    declared = response.getheader("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise DownloadError(_too_big(max_bytes), retryable=False)

    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest_dir, suffix=".download")
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (OSError, http.client.HTTPException):
                    raise DownloadError(
                        "the download from Slack broke off; will retry", retryable=True
                    ) from None
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise DownloadError(_too_big(max_bytes), retryable=False)
                digest.update(chunk)
                out.write(chunk)
        if declared and declared.isdigit() and int(declared) != size:
            raise DownloadError("the download from Slack was cut short; will retry", retryable=True)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Downloaded(
        path=Path(name), size=size, sha256=digest.hexdigest(), content_type=content_type
    )


def _too_big(max_bytes: int) -> str:
    return f"the file is over {max_bytes // (1024 * 1024)} MB, the limit for the library"


def posted_file_from_slack(file: dict[str, Any]) -> PostedFile:
    """Slack's file object -> the library's view of it."""
    return PostedFile(
        file_id=str(file["id"]),
        name=str(file.get("name") or ""),
        title=str(file.get("title") or ""),
        mimetype=str(file.get("mimetype") or ""),
        filetype=str(file.get("filetype") or ""),
        size=file.get("size") if isinstance(file.get("size"), int) else None,
        download_url=file.get("url_private_download") or file.get("url_private"),
        permalink=file.get("permalink"),
        is_stub=file.get("file_access") == "check_file_info",
    )
