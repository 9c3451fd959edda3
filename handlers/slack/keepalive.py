"""Web API calls over kept-alive connections.

slack_sdk's WebClient opens a new connection for every call (urllib's `urlopen`): against
slack.com a TCP and a TLS handshake, two more round trips and the handshake's CPU before
every reaction, message and view. Here each thread keeps one connection per host and sends
its calls over it. A connection the server closed while it sat idle has its end of file
waiting to be read: that is checked before it is reused, and a new one is opened instead,
so no request is ever sent twice on our account. Any other failure is what it was before (a
refused or dropped connection, a status other than 2xx as urllib's HTTPError), for
slack_sdk's retry handlers to judge.
"""

from __future__ import annotations

import http.client
import io
import os
import select
import threading
from ssl import SSLContext
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request

_Key = tuple[str, str, SSLContext | None]  # scheme, host:port, certificate rules
MAX_HOSTS = 4  # connections a thread keeps (one is slack.com's; the rest are tests' emulators)
_pool = threading.local()  # this thread's connections, by _Key


def post(request: Request, *, timeout: float, ssl: SSLContext | None) -> dict[str, Any]:
    """Send `request` (built by slack_sdk) and answer as slack_sdk's own urllib call does:
    status, headers and body (text, or bytes for gzip), or raise HTTPError."""
    url = urlsplit(request.full_url)
    # A connection is reused only by a client that would have opened it the same way: the
    # same host, and the same rules for its certificate.
    key = (url.scheme, url.netloc, ssl)
    connection = _connection(key, timeout=timeout, ssl=ssl)
    path = url.path + (f"?{url.query}" if url.query else "")
    try:
        try:
            connection.request(
                request.get_method(), path, body=request.data, headers=dict(request.header_items())
            )
        except OSError as exc:
            # As urllib: not connected, or the request not sent (slack_sdk retries these).
            raise URLError(exc) from exc
        response = connection.getresponse()
        body = response.read()
    except BaseException:
        _drop(key)
        raise
    if response.will_close:
        _drop(key)
    if not 200 <= response.status < 300:
        raise HTTPError(
            request.full_url, response.status, response.reason, response.msg, io.BytesIO(body)
        )
    headers = response.msg
    if headers.get_content_type() == "application/gzip":
        return {"status": response.status, "headers": headers, "body": body}
    charset = headers.get_content_charset() or "utf-8"
    return {"status": response.status, "headers": headers, "body": body.decode(charset)}


def _connection(key: _Key, *, timeout: float, ssl: SSLContext | None) -> http.client.HTTPConnection:
    connections = _connections()
    connection = connections.pop(key, None)
    if connection is not None and _closed_by_server(connection):
        connection.close()
        connection = None
    if connection is None:
        if len(connections) >= MAX_HOSTS:  # the one used longest ago goes
            _drop(next(iter(connections)))
        scheme, netloc, _ = key
        if scheme == "https":
            connection = http.client.HTTPSConnection(netloc, timeout=timeout, context=ssl)
        else:
            connection = http.client.HTTPConnection(netloc, timeout=timeout)
    connections[key] = connection  # the last used goes last
    connection.timeout = timeout
    if connection.sock is not None:
        connection.sock.settimeout(timeout)
    return connection


def _connections() -> dict[_Key, http.client.HTTPConnection]:
    """This thread's connections. A forked process (gunicorn's worker) starts without its
    parent's: it must never write on their sockets."""
    mine = _pool.__dict__
    if mine.get("pid") != os.getpid():
        mine["pid"], mine["connections"] = os.getpid(), {}
    return mine["connections"]  # type: ignore[no-any-return]


def _closed_by_server(connection: http.client.HTTPConnection) -> bool:
    """An idle connection with something to read has been closed by the server (or holds
    bytes nobody asked for): either way it is not to be reused."""
    if connection.sock is None:
        return False  # not connected yet: http.client connects on the next request
    poller = select.poll()
    poller.register(connection.sock, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def _drop(key: _Key) -> None:
    connection = _connections().pop(key, None)
    if connection is not None:
        connection.close()
