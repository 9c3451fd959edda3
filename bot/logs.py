"""Logging setup with a last line of defence: tokens and secrets are redacted from every
record, whatever library wrote it (slack_sdk logs request headers at DEBUG).

Lines are text by default, or one JSON object per line with LOG_FORMAT=json (for a log
service to index). Either way a line written while a Slack request or an ingest job is being
handled carries its team, event id and image id (`about`), so one image's story can be
found across threads and processes.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from gunicorn.glogging import Logger as GunicornLogger

SECRET_PATTERNS = (
    re.compile(r"xox[abposr]-[A-Za-z0-9-]+"),
    re.compile(r"xapp-[A-Za-z0-9-]+"),
    re.compile(r"(?i)(bearer\s+)[^\s'\"]+"),
    re.compile(r"cloudinary://[^@\s]+@"),
    re.compile(r"\bil_[A-Za-z0-9_-]{20,}"),  # API tokens (bot.tokens)
    # Review and upload links are credentials in a path (debug request logs, errors).
    re.compile(r"(/(?:review|u)/)[A-Za-z0-9_-]{32,64}"),
)


class RedactSecrets(logging.Filter):
    def __init__(self, extra_secrets: list[str]) -> None:
        super().__init__()
        self._extra = [s for s in extra_secrets if len(s) >= 8]

    def redact(self, text: str) -> str:
        for secret in self._extra:
            text = text.replace(secret, "[redacted]")
        for pattern in SECRET_PATTERNS:
            text = pattern.sub(lambda m: (m.group(1) if m.re.groups else "") + "[redacted]", text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


# What the code running now is about: set where a Slack request is handled (the Bolt
# middleware in handlers/slack/telemetry.py) and where an ingest job runs (bot.ingestor).
CONTEXT_FIELDS = ("team", "event_id", "image_id")
_about: ContextVar[dict[str, str]] = ContextVar("log_about", default={})  # noqa: B039 - never mutated


def _known(fields: dict[str, object]) -> dict[str, str]:
    return {k: str(v) for k, v in fields.items() if v is not None and k in CONTEXT_FIELDS}


@contextmanager
def about(**fields: object) -> Iterator[None]:
    """Every line logged inside this block (in this thread, and in work it hands to an
    executor that copies the context) names these fields too; None values are left out."""
    token = _about.set({**_about.get(), **_known(fields)})
    try:
        yield
    finally:
        _about.reset(token)


def name_the_work(**fields: object) -> None:
    """From now on in this context, lines name these fields (and no others): for code that
    cannot wrap the work in `about`, run where each unit of work has a context of its own."""
    _about.set(_known(fields))


class ContextFilter(logging.Filter):
    """Copies the fields of `about` onto each record, for the JSON lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _about.get()
        for name in CONTEXT_FIELDS:
            setattr(record, name, fields.get(name))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the fields of
    `about` when set, and the traceback (already redacted by RedactSecrets) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "thread": record.threadName,
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"

_active_filter = RedactSecrets([])
_json_lines = False


def configure_logging(level: str, *, secrets: list[str], json_lines: bool = False) -> None:
    """Log to stderr, as text or (with `json_lines`) JSON, every line redacted."""
    global _active_filter, _json_lines  # one setup per process, shared by every handler
    _active_filter, _json_lines = RedactSecrets(secrets), json_lines
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(_active_filter)
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # libvips logs its own progress at INFO (two or three lines an image, "threadpool
    # completed with 1 workers") and every property read at DEBUG: its warnings are enough.
    logging.getLogger("pyvips").setLevel(logging.WARNING)


class RedactingGunicornLogger(GunicornLogger):  # type: ignore[misc]
    """gunicorn's error and access loggers write through handlers of their own (they do not
    propagate to the root logger), so its messages, such as "Invalid request from ...: <the
    request line>", would bypass the filter on ours; and they would be text among JSON lines."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                if _active_filter not in handler.filters:
                    handler.addFilter(_active_filter)
                if _json_lines:
                    handler.addFilter(ContextFilter())
                    handler.setFormatter(JsonFormatter())
