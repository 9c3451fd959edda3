from __future__ import annotations

import logging

import pytest

from bot.config import ConfigError, Settings
from bot.logs import RedactSecrets


def settings(**env: str) -> Settings:
    return Settings.from_env(env, dotenv=False)


def test_defaults_are_the_embedded_setup() -> None:
    s = settings()
    assert s.database_url == "sqlite:///data/library.db"
    assert str(s.media_dir) == "data/media"
    assert s.port == 3000
    assert s.slack_mode == "unconfigured"
    assert not s.uses_cloudinary


def test_mode_follows_the_credentials() -> None:
    http = settings(SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s" * 32)
    socket = settings(SLACK_BOT_TOKEN="xoxb-1", SLACK_APP_TOKEN="xapp-1")
    assert (http.slack_mode, socket.slack_mode) == ("http", "socket")
    oauth = settings(SLACK_CLIENT_ID="1.2", SLACK_CLIENT_SECRET="c" * 32, SLACK_SIGNING_SECRET="s")
    assert oauth.slack_mode == "oauth"  # installed in any workspace from /slack/install
    assert oauth.sign_in_with_slack and oauth.serves_slack_over_http
    # A bot token keeps the app in its one workspace: the client values sign people in.
    single = settings(
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_SIGNING_SECRET="s",
        SLACK_CLIENT_ID="1.2",
        SLACK_CLIENT_SECRET="c" * 32,
    )
    assert single.slack_mode == "http"


def test_heroku_postgres_url_is_accepted() -> None:
    s = settings(DATABASE_URL="postgres://u:p@db.example.com:5432/lib")
    assert s.database_url == "postgresql+psycopg2://u:p@db.example.com:5432/lib"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"SLACK_BOT_TOKEN": "xoxp-user-token"}, "SLACK_BOT_TOKEN"),
        ({"SLACK_APP_TOKEN": "xapp-1"}, "SLACK_APP_TOKEN"),
        ({"SLACK_SIGNING_SECRET": "abc"}, "SLACK_SIGNING_SECRET"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"CLOUDINARY_URL": "https://nope"}, "CLOUDINARY_URL"),
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"PUBLIC_BASE_URL": "ftp://x"}, "PUBLIC_BASE_URL"),
        ({"SLACK_ADMIN_IDS": "U1,not an id"}, "SLACK_ADMIN_IDS"),
        ({"SLACK_API_URL": "slack.com"}, "SLACK_API_URL"),
        ({"SLACK_CLIENT_ID": "1.2"}, "SLACK_CLIENT_SECRET"),
        ({"SLACK_SCOPES": "chat:write,<script>"}, "SLACK_SCOPES"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN"),
    ],
)
def test_bad_settings_fail_with_one_line_naming_the_variable(
    env: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(**env)
    message = str(caught.value)
    assert variable in message
    assert "\n" not in message


def test_secrets_never_appear_in_errors_or_repr() -> None:
    secret = "xoxp-super-secret-value"
    with pytest.raises(ConfigError) as caught:
        settings(SLACK_BOT_TOKEN=secret)
    assert secret not in str(caught.value)
    s = settings(
        SLACK_BOT_TOKEN="xoxb-very-secret",
        SLACK_SIGNING_SECRET="signing-very-secret",
        CLOUDINARY_URL="cloudinary://key:cloud-very-secret@demo",
        METRICS_TOKEN="metrics-very-secret",
    )
    shown = repr(s)
    for value in ("xoxb-very-secret", "signing-very-secret", "cloud-very-secret", "metrics-very"):
        assert value not in shown
    assert "metrics-very-secret" in s.secret_values  # redacted from every log line


def test_admin_ids_are_parsed() -> None:
    assert settings(SLACK_ADMIN_IDS=" U1ABC, W2DEF ,").slack_admin_ids == {"U1ABC", "W2DEF"}


def test_log_filter_redacts_tokens_from_any_record() -> None:
    record = logging.LogRecord(
        "slack_sdk",
        logging.DEBUG,
        __file__,
        1,
        "headers: {'Authorization': 'Bearer xoxb-123-456-abc'} secret=%s",
        ("my-signing-secret",),
        None,
    )
    RedactSecrets(["my-signing-secret"]).filter(record)
    shown = record.getMessage()
    assert "xoxb-123" not in shown
    assert "my-signing-secret" not in shown
    assert "[redacted]" in shown


def test_log_filter_redacts_api_tokens_and_the_secrets_in_link_paths() -> None:
    token = "il_" + "a1B2-_" * 7
    link = "Q" * 43
    record = logging.LogRecord(
        "bot",
        logging.INFO,
        __file__,
        1,
        "minted %s; GET /review/%s and POST /u/%s/files failed",
        (token, link, link),
        None,
    )
    RedactSecrets([]).filter(record)
    shown = record.getMessage()
    assert token not in shown and link not in shown
    assert "GET /review/[redacted] and POST /u/[redacted]/files" in shown


def test_database_password_is_neither_in_repr_nor_in_logs() -> None:
    s = settings(DATABASE_URL="postgres://library:db-very-secret@db.example.com:5432/library")
    assert "db-very-secret" not in repr(s)
    assert "library:***@db.example.com" in repr(s)
    assert "db-very-secret" in s.secret_values  # so the log filter redacts it
    record = logging.LogRecord(
        "sqlalchemy", logging.ERROR, __file__, 1, "could not connect: %s", (s.database_url,), None
    )
    RedactSecrets(s.secret_values).filter(record)
    assert "db-very-secret" not in record.getMessage()


def test_smtp_needs_a_sender_and_its_password_is_a_secret() -> None:
    with pytest.raises(ConfigError, match="SMTP_FROM"):
        settings(SMTP_URL="smtp://mailer:pa%40ss-word@mail.example.com:587")
    with pytest.raises(ConfigError, match="SMTP_URL must look like"):
        settings(SMTP_URL="http://mail.example.com", SMTP_FROM="a@example.com")
    s = settings(
        SMTP_URL="smtp://mailer:pa%40ss-word@mail.example.com:587",
        SMTP_FROM="Images <images@example.com>",
    )
    assert "pa%40ss-word" not in repr(s) and "pa@ss-word" in s.secret_values
    record = logging.LogRecord(
        "smtplib", logging.ERROR, __file__, 1, "login failed with %s", ("pa@ss-word",), None
    )
    RedactSecrets(s.secret_values).filter(record)
    assert "pa@ss-word" not in record.getMessage()
    assert settings(SMTP_FROM="a@example.com").smtp_from is None  # no server, no sender
