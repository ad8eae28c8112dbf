"""Real receivers on 127.0.0.1 for the alert tests: an HTTP server and an SMTP server."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from pg_monitoring.alerts.senders import SIGNATURE_HEADER, verify_signature


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_valid: bool | None

    def json(self) -> Any:
        return json.loads(self.body)


class HttpReceiver:
    """Records every whole POST (one whose body was cut off is only counted, in `truncated`).
    `statuses` are answered in turn, then 200 (or `status` forever);
    `delay` seconds pass before each answer; with `secret`, signatures are checked."""

    def __init__(
        self,
        *,
        statuses: list[int] | None = None,
        status: int = 200,
        delay: float = 0.0,
        secret: str | None = None,
    ) -> None:
        self.statuses = list(statuses or [])
        self.status = status
        self.delay = delay
        self.secret = secret
        self.requests: list[Request] = []
        self.started = 0
        self.truncated = 0
        self.answers: list[int] = []
        self._lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if len(body) < length:
                    # The sender died mid-request (a test kills a worker): nothing was
                    # delivered, as a real server would refuse a cut-off body.
                    with receiver._lock:
                        receiver.truncated += 1
                    return
                with receiver._lock:
                    receiver.started += 1
                    receiver._lock.notify_all()
                time.sleep(receiver.delay)
                valid = None
                if receiver.secret is not None:
                    valid = verify_signature(
                        receiver.secret, self.headers.get(SIGNATURE_HEADER, ""), body
                    )
                with receiver._lock:
                    code = receiver.statuses.pop(0) if receiver.statuses else receiver.status
                    receiver.requests.append(
                        Request(self.path, dict(self.headers.items()), body, valid)
                    )
                    receiver.answers.append(code)
                    receiver._lock.notify_all()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"status": "ok"}' if code < 300 else b"receiver says no")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, predicate: Callable[[HttpReceiver], bool], timeout: float = 20) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: predicate(self), timeout=timeout)

    def received(self, path: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def http_receiver(**options: Any) -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(**options)
    try:
        yield receiver
    finally:
        receiver.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Collector:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        self.arrived.set()
        return "250 OK"


@contextmanager
def smtp_server(tls: ssl.SSLContext | None = None) -> Iterator[tuple[int, _Collector]]:
    """aiosmtpd on 127.0.0.1; it offers STARTTLS only when given a server TLS context."""
    collector = _Collector()
    extra: dict[str, Any] = {} if tls is None else {"tls_context": tls, "require_starttls": True}
    controller = Controller(collector, hostname="127.0.0.1", port=free_port(), **extra)
    controller.start()
    try:
        yield controller.port, collector
    finally:
        controller.stop()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no system trusts, and its key (openssl)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key
