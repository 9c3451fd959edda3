"""Logging setup with a last line of defence: tokens and secrets are redacted from every
record, whatever library wrote it (slack_sdk logs request headers at DEBUG)."""

from __future__ import annotations

import logging
import re
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


_active_filter = RedactSecrets([])


def configure_logging(level: str, *, secrets: list[str]) -> None:
    global _active_filter  # noqa: PLW0603 - one filter per process, shared by every handler
    _active_filter = RedactSecrets(secrets)
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
    )
    handler.addFilter(_active_filter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class RedactingGunicornLogger(GunicornLogger):  # type: ignore[misc]
    """gunicorn's error and access loggers write through handlers of their own (they do not
    propagate to the root logger), so its messages, such as "Invalid request from ...: <the
    request line>", would bypass the filter on ours."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                if _active_filter not in handler.filters:
                    handler.addFilter(_active_filter)
