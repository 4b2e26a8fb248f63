"""A real SMTP server (aiosmtpd) on 127.0.0.1 for the tests that follow mail out of the app."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from argon2 import PasswordHasher


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Inbox:
    """aiosmtpd handler: keep every message delivered to it."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802 - aiosmtpd's hook
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(msg)
        return "250 Message accepted for delivery"


class SmtpServer:
    """An SMTP server on a free local port; stop() and start() again on the same port."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.inbox = _Inbox()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        with self.inbox.lock:
            return list(self.inbox.messages)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


# Argon2id at its smallest cost: the same hashing and verifying code, without ~0.2 s of CPU
# per hash (every factory tenant and every sign-in hashes or verifies at least once).
_QUICK_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
_QUICK_DUMMY = _QUICK_HASHER.hash("not-a-real-password")


@pytest.fixture(autouse=True)
def production_hasher(monkeypatch) -> PasswordHasher:
    """Swap in the quick hasher for this test; returns the one the app really uses."""
    from saas import accounts

    strong = accounts._hasher
    monkeypatch.setattr(accounts, "_hasher", _QUICK_HASHER)
    monkeypatch.setattr(accounts, "_DUMMY_HASH", _QUICK_DUMMY)  # checked when the email is unknown
    return strong


@pytest.fixture
def smtp(app, monkeypatch):
    """A running SMTP server, with the app's SMTP_URL pointing at it."""
    server = SmtpServer()
    server.start()
    monkeypatch.setitem(app.config, "SMTP_URL", server.url)
    yield server
    server.stop()
