"""Settings read once from the environment (and an optional `.env` file), validated at start.

Every problem is reported as one line that names the variable, so a misconfigured deploy
fails loudly at boot instead of half-working. Secret values are never part of an error or
of `repr(settings)`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import unquote, urlparse

DEFAULT_DATABASE_URL = "sqlite:///data/library.db"
DEFAULT_MEDIA_DIR = "data/media"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"


class ConfigError(ValueError):
    """A setting is missing, malformed or contradicts another one. The message names it."""


def _secret(default: str | None = None) -> str | None:
    # `repr=False` keeps secrets out of logs that print the settings object.
    return field(default=default, repr=False)  # type: ignore[return-value]


@dataclass(frozen=True, repr=False)
class Settings:
    """The whole configuration of one deployment. Build it with `Settings.from_env()`."""

    slack_bot_token: str | None = _secret()
    slack_signing_secret: str | None = _secret()
    slack_app_token: str | None = _secret()
    slack_api_url: str = DEFAULT_SLACK_API_URL
    slack_client_id: str | None = None
    slack_client_secret: str | None = _secret()
    # Bot scopes asked for when installing in a workspace (SLACK_SCOPES); empty means the
    # manifest's (handlers.slack.install.BOT_SCOPES).
    slack_scopes: tuple[str, ...] = ()
    secret_key: str | None = _secret()
    slack_admin_ids: frozenset[str] = frozenset()
    # The URL carries the database password: shown only redacted (`database_url_redacted`).
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)
    cloudinary_url: str | None = _secret()
    media_signing_key: str | None = _secret()
    media_dir: Path = Path(DEFAULT_MEDIA_DIR)
    public_base_url: str | None = None
    # The URL carries the mail server's password.
    smtp_url: str | None = _secret()
    smtp_from: str | None = None
    port: int = 3000
    trusted_proxies: int = 0
    max_image_bytes: int = 50 * 1024 * 1024
    max_image_pixels: int = 100_000_000
    ingest_workers: int = 4
    decode_memory_mb: int = 256
    duplicate_max_distance: int = 3
    details_reminder_hours: float = 4.0
    approval_reminder_hours: float = 24.0
    approval_escalate_hours: float = 72.0
    log_level: str = "INFO"
    log_format: str = "text"
    # Lets a scraper from elsewhere read /metrics (otherwise loopback only).
    metrics_token: str | None = _secret()

    @property
    def slack_mode(self) -> str:
        """How this process talks to Slack: `socket` or `http` for one workspace's bot token,
        `oauth` for an app installed in any workspace from /slack/install (HTTP, a token
        per workspace), or `unconfigured`."""
        if self.slack_bot_token and self.slack_app_token:
            return "socket"
        if self.slack_bot_token and self.slack_signing_secret:
            return "http"
        if self.slack_signing_secret and self.slack_client_id and self.slack_client_secret:
            return "oauth"
        return "unconfigured"

    @property
    def serves_slack_over_http(self) -> bool:
        """Slack's requests arrive, signed, at /slack/events."""
        return self.slack_mode in ("http", "oauth")

    @property
    def database_url_redacted(self) -> str:
        """The database URL with its password masked, for logs and repr."""
        # Imported here: gunicorn's master process reads Settings too, and needs none of
        # SQLAlchemy's 28 MB.
        from sqlalchemy.engine import make_url

        return make_url(self.database_url).render_as_string(hide_password=True)

    @property
    def secret_values(self) -> list[str]:
        """Every secret this configuration holds, for the log filter to redact."""
        candidates = (
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.cloudinary_url,
            self.media_signing_key,
            self.slack_client_secret,
            self.secret_key,
            unquote(urlparse(self.database_url).password or ""),
            self.smtp_url,
            self.metrics_token,
            unquote(urlparse(self.smtp_url).password or "") if self.smtp_url else None,
        )
        return [str(value) for value in candidates if value]

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)
        return f"Settings({shown}, database_url={self.database_url_redacted!r})"

    @property
    def sign_in_with_slack(self) -> bool:
        """The web's Sign in with Slack is configured (and a workspace to sign in to)."""
        return bool(self.slack_client_id and self.slack_client_secret) and self.slack_mode in (
            "http",
            "socket",
            "oauth",
        )

    @property
    def uses_cloudinary(self) -> bool:
        return bool(self.cloudinary_url)

    @property
    def is_embedded_database(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, dotenv: bool = True) -> Settings:
        """Read and validate settings. `.env` in the working directory fills unset variables."""
        if environ is None:
            if dotenv:
                from dotenv import load_dotenv

                load_dotenv(Path.cwd() / ".env", override=False)
            environ = os.environ
        env = {k: v.strip() for k, v in environ.items() if v.strip()}

        bot_token = env.get("SLACK_BOT_TOKEN")
        if bot_token and not bot_token.startswith("xoxb-"):
            raise ConfigError("SLACK_BOT_TOKEN must be a bot token starting with 'xoxb-'")
        app_token = env.get("SLACK_APP_TOKEN")
        if app_token and not app_token.startswith("xapp-"):
            raise ConfigError("SLACK_APP_TOKEN must be an app-level token starting with 'xapp-'")
        if app_token and not bot_token:
            raise ConfigError("SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is not: set both")
        signing_secret = env.get("SLACK_SIGNING_SECRET")
        client_id, client_secret = env.get("SLACK_CLIENT_ID"), env.get("SLACK_CLIENT_SECRET")
        if signing_secret and not bot_token and not (client_id and client_secret):
            raise ConfigError(
                "SLACK_SIGNING_SECRET is set but SLACK_BOT_TOKEN is not: set it (one workspace), "
                "or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (install in any workspace)"
            )

        api_url = env.get("SLACK_API_URL", DEFAULT_SLACK_API_URL)
        if urlparse(api_url).scheme not in ("http", "https") or not urlparse(api_url).hostname:
            raise ConfigError("SLACK_API_URL must be an http(s) URL such as https://slack.com/api/")
        if not api_url.endswith("/"):
            api_url += "/"

        cloudinary_url = env.get("CLOUDINARY_URL")
        if cloudinary_url:
            parsed = urlparse(cloudinary_url)
            if parsed.scheme != "cloudinary" or not (
                parsed.username and parsed.password and parsed.hostname
            ):
                raise ConfigError(
                    "CLOUDINARY_URL must look like cloudinary://API_KEY:API_SECRET@CLOUD_NAME"
                )

        media_signing_key = env.get("MEDIA_SIGNING_KEY")
        if media_signing_key is not None and len(media_signing_key) < 32:
            raise ConfigError(
                "MEDIA_SIGNING_KEY must be at least 32 characters (python -c "
                "'import secrets; print(secrets.token_urlsafe(32))' makes one)"
            )

        scopes = _scopes(env)
        secret_key = env.get("SECRET_KEY")
        if secret_key is not None and len(secret_key) < 32:
            raise ConfigError(
                "SECRET_KEY must be at least 32 characters (python -c "
                "'import secrets; print(secrets.token_urlsafe(32))' makes one)"
            )

        public_base_url = env.get("PUBLIC_BASE_URL")
        if public_base_url:
            if urlparse(public_base_url).scheme not in ("http", "https"):
                raise ConfigError("PUBLIC_BASE_URL must be an http(s) URL")
            public_base_url = public_base_url.rstrip("/")

        smtp_url, smtp_from = _smtp(env)

        admin_ids = frozenset(
            part.strip() for part in env.get("SLACK_ADMIN_IDS", "").split(",") if part.strip()
        )
        for admin_id in admin_ids:
            if not admin_id.isalnum() or admin_id[0] not in "UW":
                raise ConfigError(
                    f"SLACK_ADMIN_IDS must be Slack user ids like U012ABCDEF, got {admin_id!r}"
                )

        log_format, metrics_token = _operations(env)
        database_url = normalise_database_url(env.get("DATABASE_URL", DEFAULT_DATABASE_URL))
        # Four ingest threads per process on either database. SQLite has one writer at a
        # time, so more only queue for it ahead of the acks. On Postgres (bench/ack_latency.py,
        # 50 posts/s, 2 cores) 8 threads gave an ack p99 of 63.5 ms and 4 gave 40.5, every
        # image still stored within 0.4 s of the last post: more threads only crowd the
        # database server the acks wait on.
        default_workers = 4
        return cls(
            slack_bot_token=bot_token,
            slack_signing_secret=signing_secret,
            slack_app_token=app_token,
            slack_api_url=api_url,
            slack_client_id=client_id,
            slack_client_secret=client_secret,
            slack_scopes=scopes,
            secret_key=secret_key,
            slack_admin_ids=admin_ids,
            database_url=database_url,
            cloudinary_url=cloudinary_url,
            media_signing_key=media_signing_key,
            media_dir=Path(env.get("MEDIA_DIR", DEFAULT_MEDIA_DIR)),
            public_base_url=public_base_url,
            smtp_url=smtp_url,
            smtp_from=smtp_from,
            port=_int(env, "PORT", 3000, low=1, high=65535),
            trusted_proxies=_int(env, "TRUSTED_PROXIES", 0, low=0, high=5),
            max_image_bytes=_int(env, "MAX_IMAGE_MB", 50, low=1, high=1024) * 1024 * 1024,
            max_image_pixels=_int(env, "MAX_IMAGE_MEGAPIXELS", 100, low=1, high=1000) * 1_000_000,
            ingest_workers=_int(env, "INGEST_WORKERS", default_workers, low=1, high=32),
            decode_memory_mb=_int(env, "DECODE_MEMORY_MB", 256, low=32, high=16384),
            duplicate_max_distance=_int(env, "DUPLICATE_MAX_DISTANCE", 3, low=0, high=3),
            details_reminder_hours=_float(env, "DETAILS_REMINDER_HOURS", 4.0),
            approval_reminder_hours=_float(env, "APPROVAL_REMINDER_HOURS", 24.0),
            approval_escalate_hours=_float(env, "APPROVAL_ESCALATE_HOURS", 72.0),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            log_format=log_format,
            metrics_token=metrics_token,
        )


def _operations(env: Mapping[str, str]) -> tuple[str, str | None]:
    """LOG_FORMAT (text or json) and METRICS_TOKEN (long enough not to be guessed)."""
    log_format = env.get("LOG_FORMAT", "text").lower()
    if log_format not in ("text", "json"):
        raise ConfigError("LOG_FORMAT must be text or json")
    metrics_token = env.get("METRICS_TOKEN")
    if metrics_token is not None and len(metrics_token) < 16:
        raise ConfigError("METRICS_TOKEN must be at least 16 characters")
    return log_format, metrics_token


def normalise_database_url(url: str) -> str:
    """Accept Heroku's `postgres://` and pick the psycopg2 driver explicitly."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url[len("postgresql://") :]
    if not (url.startswith("postgresql+psycopg2://") or url.startswith("sqlite:")):
        raise ConfigError("DATABASE_URL must be a postgres:// or sqlite:/// URL")
    return url


def _scopes(env: Mapping[str, str]) -> tuple[str, ...]:
    """SLACK_SCOPES, checked; the client values it goes with must come as a pair."""
    client_id, client_secret = env.get("SLACK_CLIENT_ID"), env.get("SLACK_CLIENT_SECRET")
    if bool(client_id) != bool(client_secret):
        missing = "SLACK_CLIENT_SECRET" if client_id else "SLACK_CLIENT_ID"
        raise ConfigError(
            f"{missing} is not set: Sign in with Slack and installing need both client values"
        )
    scopes = tuple(s.strip() for s in env.get("SLACK_SCOPES", "").split(",") if s.strip())
    for scope in scopes:
        if not all(ch.isalnum() or ch in ":._" for ch in scope):
            raise ConfigError(
                f"SLACK_SCOPES must be comma-separated bot scopes like chat:write, not {scope!r}"
            )
    return scopes


def _int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of hours, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be more than 0, got {raw!r}")
    return value


def _smtp(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """SMTP_URL and SMTP_FROM, checked together (the sender only matters with a server)."""
    smtp_url, smtp_from = env.get("SMTP_URL"), env.get("SMTP_FROM")
    if smtp_url:
        parsed_smtp = urlparse(smtp_url)
        try:
            parsed_smtp.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise ConfigError("SMTP_URL has a port that is not a number") from None
        if parsed_smtp.scheme not in ("smtp", "smtps") or not parsed_smtp.hostname:
            raise ConfigError(
                "SMTP_URL must look like smtp://USER:PASSWORD@HOST:587 or "
                "smtps://USER:PASSWORD@HOST:465"
            )
        if not smtp_from or "@" not in parseaddr(smtp_from)[1]:
            raise ConfigError(
                "SMTP_FROM must be set to the sender's address when SMTP_URL is set, "
                "e.g. Image library <images@example.com>"
            )
    return smtp_url, smtp_from if smtp_url else None
