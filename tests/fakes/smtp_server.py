"""A tiny SMTP server for tests (stdlib socketserver): EHLO, AUTH PLAIN / LOGIN with one
user, MAIL, RCPT, DATA, RSET, NOOP, QUIT. It offers no STARTTLS, so a client that speaks
STARTTLS only when offered sends in the clear here. Every accepted message is kept, parsed."""

from __future__ import annotations

import base64
import email
import email.policy
import socketserver
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from types import TracebackType


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    user: str | None

    @property
    def body(self) -> str:
        part = self.message.get_body(("plain",))
        return str(part.get_content()) if part is not None else ""


@dataclass
class _State:
    user: str
    password: str
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def read(self) -> str:
        return self.rfile.readline(65536).decode("utf-8", "replace").rstrip("\r\n")

    def handle(self) -> None:
        state = self.server.state
        self.reply("220 fake-smtp ready")
        sender, recipients, user = "", [], None
        while True:
            line = self.read()
            if not line:  # the client hung up
                return
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.wfile.write(b"250-fake-smtp\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
            elif verb == "AUTH":
                user = self._auth(line, state)
                if user is None:
                    self.reply("535 5.7.8 authentication failed")
                else:
                    self.reply("235 2.7.0 accepted")
            elif verb == "MAIL":
                if user is None:
                    self.reply("530 5.7.0 authentication required")
                    continue
                sender, recipients = line.split(":", 1)[1].strip().strip("<>"), []
                self.reply("250 ok")
            elif verb == "RCPT":
                recipients.append(line.split(":", 1)[1].strip().strip("<>"))
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 end with .")
                lines = []
                while (data := self.read()) != ".":
                    lines.append(data[1:] if data.startswith("..") else data)
                parsed = email.message_from_string(
                    "\r\n".join(lines) + "\r\n", policy=email.policy.default
                )
                assert isinstance(parsed, EmailMessage)
                with state.lock:
                    state.received.append(Received(sender, recipients, parsed, user))
                self.reply("250 queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 ok")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")

    def _auth(self, line: str, state: _State) -> str | None:
        parts = line.split()
        mechanism = parts[1].upper() if len(parts) > 1 else ""
        if mechanism == "PLAIN":
            if len(parts) > 2:
                blob = parts[2]
            else:
                self.reply("334 ")
                blob = self.read()
            _, user, password = base64.b64decode(blob).decode().split("\0")
        elif mechanism == "LOGIN":
            self.reply("334 " + base64.b64encode(b"Username:").decode())
            user = base64.b64decode(self.read()).decode()
            self.reply("334 " + base64.b64encode(b"Password:").decode())
            password = base64.b64decode(self.read()).decode()
        else:
            return None
        return user if (user, password) == (state.user, state.password) else None


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: _State) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


class FakeSmtpServer:
    """`with FakeSmtpServer() as smtp:` then SMTP_URL=smtp.url; `smtp.wait_for(n)`."""

    def __init__(self, *, user: str = "mailer", password: str = "s3cret-Pa55word") -> None:  # noqa: S107 - a test server
        self.user, self.password = user, password
        self._state = _State(user, password)
        self._server = _Server(self._state)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"smtp://{self.user}:{self.password}@127.0.0.1:{self.port}"

    @property
    def received(self) -> list[Received]:
        with self._state.lock:
            return list(self._state.received)

    def wait_for(self, count: int = 1, *, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.received) >= count:
                return self.received
            time.sleep(0.05)
        raise AssertionError(f"expected {count} e-mails, got {len(self.received)}")

    def __enter__(self) -> FakeSmtpServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
