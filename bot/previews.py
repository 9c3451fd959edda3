"""How to show an image in Slack: a thumbnail URL Slack can fetch, else Slack's own copy of
the file, else only its name (every list, card and prompt that shows images)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.domain import WEB_FILE_PREFIX
from storage.media import MediaStore


@dataclass(frozen=True)
class Preview:
    """How to show an image: a URL Slack can fetch, else the original Slack file."""

    alt: str
    image_url: str | None = None
    slack_file_id: str | None = None
    link: str | None = None  # to open the original, when we have one


class Showable(Protocol):
    """What a preview reads of an image: an `Image`, or a row of those columns."""

    @property
    def title(self) -> str: ...
    @property
    def file_name(self) -> str: ...
    @property
    def storage_key(self) -> str | None: ...
    @property
    def slack_file_id(self) -> str: ...
    @property
    def format(self) -> str | None: ...


def preview_for(
    image: Showable, media: MediaStore, *, width: int = 360, height: int = 240
) -> Preview:
    alt = image.title or image.file_name or "image"
    if image.storage_key:
        url = media.thumbnail_url(image.storage_key, width=width, height=height)
        if url:
            return Preview(alt=alt, image_url=url, link=media.original_url(image.storage_key))
    # Slack can show its own copy of a png/jpg/gif the bot can see (not of a web upload).
    from_slack = not image.slack_file_id.startswith(WEB_FILE_PREFIX)
    if from_slack and (image.format or "").upper() in ("JPEG", "PNG", "GIF"):
        return Preview(alt=alt, slack_file_id=image.slack_file_id)
    return Preview(alt=alt)
