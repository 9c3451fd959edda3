"""The library's own vocabulary, shared by the use cases and the Slack I/O helpers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

IMAGE_FILETYPES = frozenset({"jpg", "jpeg", "png", "gif", "webp", "heic", "heif"})
WEB_FILE_PREFIX = "web-"  # the file ids of images uploaded on the web (Slack's are F...)


@dataclass(frozen=True)
class PostedFile:
    """A file attached to a Slack message, as far as the library cares."""

    file_id: str
    name: str = ""
    title: str = ""
    mimetype: str = ""
    filetype: str = ""
    size: int | None = None
    download_url: str | None = None
    permalink: str | None = None
    is_stub: bool = False  # Slack Connect: details need a files.info call
    # Uploaded on the web: whatever its label, its bytes decide (and a refusal says why).
    judged_by_bytes: bool = False

    @property
    def looks_like_image(self) -> bool:
        """Slack's own label; the bytes are checked later. Stubs are checked after files.info."""
        return (
            self.is_stub
            or self.judged_by_bytes
            or self.mimetype.startswith("image/")
            or self.filetype.lower() in IMAGE_FILETYPES
        )


@dataclass(frozen=True)
class Post:
    """Where and by whom files were posted."""

    team_id: str
    channel_id: str
    user_id: str
    message_ts: str | None = None
    thread_ts: str | None = None
    # Private channel, group DM or DM: only its members may see the images.
    channel_private: bool = False

    @property
    def posted_at(self) -> datetime | None:
        return slack_ts_time(self.message_ts)


def slack_ts_time(ts: str | None) -> datetime | None:
    """Slack's message ts is seconds since the epoch; None when it is not one."""
    try:
        return datetime.fromtimestamp(float(ts or ""), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None
