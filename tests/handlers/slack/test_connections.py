"""Web API calls reuse one connection per thread (handlers.slack.keepalive), against the
emulator over real HTTP/1.1, as slack.com keeps connections open."""

from __future__ import annotations

import http.server
import ipaddress
import json
import multiprocessing
import socket
import ssl
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.error import URLError

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler
from slack_sdk.http_retry.state import RetryState

from handlers.slack import keepalive
from handlers.slack.gateway import SlackClient, SlackGateway
from tests.conftest import PUBLIC_CHANNEL, SlackEmulator, workspace
from tests.live import wait_until


def gateway(slack: SlackEmulator) -> SlackGateway:
    return SlackGateway(api_url=slack.api_url, token=slack.bot_token)


def test_calls_from_one_thread_share_one_connection(slack: SlackEmulator) -> None:
    slack_gateway = gateway(slack)
    for n in range(5):
        # A new client each time, as the app makes one per call.
        slack_gateway.client().chat_postMessage(channel=PUBLIC_CHANNEL, text=f"hello {n}")

    posted = slack.calls_to("chat.postMessage")
    assert [call.params["text"] for call in posted] == [f"hello {n}" for n in range(5)]
    assert len({call.connection for call in posted}) == 1
    assert all(call.token == slack.bot_token for call in posted)


def test_each_thread_has_its_own_connection(slack: SlackEmulator) -> None:
    slack_gateway = gateway(slack)
    start = threading.Barrier(3)

    def post(n: int) -> None:
        start.wait(timeout=10)
        for m in range(3):
            slack_gateway.client().chat_postMessage(channel=PUBLIC_CHANNEL, text=f"{n}.{m}")

    threads = [threading.Thread(target=post, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    posted = slack.calls_to("chat.postMessage")
    assert sorted(call.params["text"] for call in posted) == [
        f"{n}.{m}" for n in range(3) for m in range(3)
    ]
    by_connection: dict[str | None, set[str]] = {}
    for call in posted:
        by_connection.setdefault(call.connection, set()).add(call.params["text"].split(".")[0])
    assert len(by_connection) == 3  # one per thread, never one shared by two threads
    assert all(len(threads_on_it) == 1 for threads_on_it in by_connection.values())


def test_a_connection_slack_closed_while_idle_is_replaced_and_nothing_is_sent_twice(
    slack: SlackEmulator,
) -> None:
    # No retries: the closed connection must be noticed before the call, not retried after.
    client = SlackClient(token=slack.bot_token, base_url=slack.api_url, retry_handlers=[])
    client.chat_postMessage(channel=PUBLIC_CHANNEL, text="before")
    slack.drop_connections()  # as Slack does with a connection left idle

    client.chat_postMessage(channel=PUBLIC_CHANNEL, text="after")

    posted = slack.calls_to("chat.postMessage")
    assert [call.params["text"] for call in posted] == ["before", "after"]
    assert posted[0].connection != posted[1].connection


def test_errors_come_back_as_before_and_a_dropped_call_is_retried_once(
    slack: SlackEmulator,
) -> None:
    client = gateway(slack).client()
    slack.inject("chat.postMessage", "server_error", status=503)
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel=PUBLIC_CHANNEL, text="refused")
    assert refused.value.response.status_code == 503

    slack.inject("chat.postMessage", "error:channel_not_found")
    with pytest.raises(SlackApiError) as not_found:
        client.chat_postMessage(channel=PUBLIC_CHANNEL, text="nowhere")
    assert not_found.value.response["error"] == "channel_not_found"

    # Slack drops the connection without an answer: slack_sdk's connection-error handler
    # sends the call again, on a new connection.
    slack.inject("chat.postMessage", "connection_reset")
    client.chat_postMessage(channel=PUBLIC_CHANNEL, text="after a reset")

    calls = slack.calls_to("chat.postMessage")
    assert [(call.params["text"], call.status, call.fault) for call in calls] == [
        ("refused", 503, "server_error"),
        ("nowhere", 200, "error:channel_not_found"),
        ("after a reset", 0, "connection_reset"),
        ("after a reset", 200, None),
    ]
    # The answered errors left the connection open for the next call; the reset did not.
    assert calls[0].connection == calls[1].connection == calls[2].connection
    assert calls[3].connection != calls[2].connection


def test_a_forked_process_opens_its_own_connection(slack: SlackEmulator) -> None:
    """gunicorn forks its workers: a child writing on its parent's socket would mix up the
    two processes' answers."""
    slack_gateway = gateway(slack)
    slack_gateway.client().chat_postMessage(channel=PUBLIC_CHANNEL, text="parent")

    child = multiprocessing.get_context("fork").Process(
        target=lambda: slack_gateway.client().chat_postMessage(channel=PUBLIC_CHANNEL, text="child")
    )
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0
    slack_gateway.client().chat_postMessage(channel=PUBLIC_CHANNEL, text="parent again")

    connection = {c.params["text"]: c.connection for c in slack.calls_to("chat.postMessage")}
    assert connection["child"] != connection["parent"] == connection["parent again"]


def test_a_thread_keeps_few_connections_open() -> None:
    emulators = [workspace().start() for _ in range(keepalive.MAX_HOSTS + 1)]
    try:
        for emulator in emulators:
            gateway(emulator).client().auth_test()
        # The first host's connection was closed to make room for the last one's.
        wait_until(lambda: emulators[0].open_connections() == 0, what="the oldest closed")
        assert [emulator.open_connections() for emulator in emulators[1:]] == [1] * (
            keepalive.MAX_HOSTS
        )
    finally:
        for emulator in emulators:
            emulator.stop()


class _TlsSlack(http.server.BaseHTTPRequestHandler):
    """auth.test over TLS, as slack.com answers it; each answer names its connection."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"ok": True, "team_id": "T0TLS", "url": str(self.client_address[1])})
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: object) -> None:
        return


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_over_tls_calls_share_one_connection_and_certificates_are_checked(
    tmp_path: Path,
) -> None:
    cert_path, key_path = self_signed(tmp_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TlsSlack)
    server.daemon_threads = True
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_path, key_path)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base_url = f"https://127.0.0.1:{server.server_address[1]}/api/"
    try:
        trusting = ssl.create_default_context(cafile=str(cert_path))
        ports = [
            SlackClient(token="xoxb-tls", base_url=base_url, ssl=trusting).auth_test()["url"]
            for _ in range(3)
        ]
        assert len(set(ports)) == 1  # one TLS handshake for the three calls

        # A certificate nobody vouched for is refused, as urllib refused it, even with a
        # trusted connection to the same host open in this thread.
        with pytest.raises(URLError) as refused:
            SlackClient(token="xoxb-tls", base_url=base_url, retry_handlers=[]).auth_test()
        assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)
    finally:
        server.shutdown()
        server.server_close()


def test_a_refused_connection_is_the_error_slack_sdk_retries() -> None:
    """urllib wraps a failure to connect or send in URLError, which slack_sdk's
    ConnectionErrorRetryHandler (the gateway's) retries: so does a kept-alive client."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    client = SlackClient(
        token="xoxb-x", base_url=f"http://127.0.0.1:{port}/api/", retry_handlers=[]
    )
    with pytest.raises(URLError) as refused:
        client.auth_test()
    assert isinstance(refused.value.reason, ConnectionRefusedError)
    assert ConnectionErrorRetryHandler().can_retry(
        state=RetryState(), request=None, response=None, error=refused.value
    )
