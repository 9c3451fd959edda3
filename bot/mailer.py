"""E-mail through an SMTP server (`SMTP_URL`), with the standard library only.

`smtp://user:pass@host:port` speaks STARTTLS when the server offers it (port 587 unless
given); `smtps://...` is TLS from the first byte (port 465 unless given). The password is
never part of an error or a log line: failures name the server and what went wrong."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import unquote, urlparse

from bot.ports import MailError

TIMEOUT_SECONDS = 15.0


class SmtpMailer:
    def __init__(self, url: str, *, sender: str, timeout: float = TIMEOUT_SECONDS) -> None:
        parsed = urlparse(url)
        self._tls = parsed.scheme == "smtps"
        self._host = parsed.hostname or "localhost"
        self._port = parsed.port or (465 if self._tls else 587)
        self._user = unquote(parsed.username) if parsed.username else None
        self._password = unquote(parsed.password) if parsed.password else ""
        self._sender = sender
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"SmtpMailer({self._host}:{self._port})"

    def send(self, *, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        try:
            message["From"] = self._sender
            message["To"] = to
            message["Subject"] = " ".join(subject.split())  # no line breaks in a header
            message.set_content(body)
        except ValueError as exc:
            raise MailError(f"the message could not be made ({exc})") from None
        context = ssl.create_default_context()
        try:
            if self._tls:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self._host, self._port, timeout=self._timeout, context=context
                )
            else:
                smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
            with smtp:
                smtp.ehlo()
                if not self._tls and smtp.has_extn("starttls"):
                    smtp.starttls(context=context)
                    smtp.ehlo()
                if self._user:
                    smtp.login(self._user, self._password)
                smtp.send_message(message)
        except smtplib.SMTPResponseException as exc:
            raise MailError(
                f"the mail server {self._host}:{self._port} answered {exc.smtp_code}"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise MailError(
                f"could not send through {self._host}:{self._port} ({type(exc).__name__})"
            ) from None
