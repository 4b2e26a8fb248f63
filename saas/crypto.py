"""Encryption at rest of sensitive values, with a key ring that rotates, and blind indexes to find them.

- Keys: `CRM_ENCRYPTION_KEYS`, Fernet keys separated by commas, the newest (primary) first. New values
  are encrypted with the primary key; any key of the ring decrypts. Rotation: put a new key first,
  deploy, run `crm keys rotate` (saas.keys_cli), then drop the old key (docs/OPERATIONS.md).
- Blind index: `CRM_BLIND_INDEX_KEY`, a separate secret for HMAC-SHA256 over a normalised value, so a
  sensitive value can still be found by its exact value without being stored in clear.
- Outside production, with no keys set, both are derived from SECRET_KEY so development and tests
  work with no setup. Production refuses to run without them rather than use a guessable key.

A missing or wrong key raises CryptoError with a message for the operator, never garbage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import unicodedata
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator

MIN_INDEX_KEY = 32  # characters of CRM_BLIND_INDEX_KEY


class CryptoError(RuntimeError):
    """The key ring is missing, malformed, or does not hold the key a value was encrypted with."""


@dataclass(frozen=True)
class KeyRing:
    keys: tuple[Fernet, ...]  # primary first
    multi: MultiFernet
    index_key: bytes
    derived: bool  # development keys made from SECRET_KEY


_rings: dict[tuple[str, str, str, bool], KeyRing] = {}


def generate_key() -> str:
    return Fernet.generate_key().decode()


def _derived(secret: str, purpose: bytes) -> bytes:
    # Development and tests only: a stable key from SECRET_KEY, so nothing needs setting to try the app.
    return hmac.new(secret.encode(), b"crm-dev-key:" + purpose, hashlib.sha256).digest()


def _parse_keys(raw: str) -> tuple[Fernet, ...]:
    keys = []
    for n, part in enumerate((p.strip() for p in raw.split(",")), start=1):
        if not part:
            continue
        try:
            keys.append(Fernet(part))
        except (ValueError, TypeError):
            raise CryptoError(
                f"CRM_ENCRYPTION_KEYS: key number {n} is not a Fernet key (make one with `crm keys generate`)."
            ) from None
    return tuple(keys)


def keyring() -> KeyRing:
    """The key ring of the app's configuration (cached per configuration)."""
    cfg = current_app.config
    raw_keys = str(cfg.get("CRM_ENCRYPTION_KEYS") or "")
    raw_index = str(cfg.get("CRM_BLIND_INDEX_KEY") or "")
    production = cfg.get("ENV_NAME") == "production"
    cache_key = (raw_keys, raw_index, cfg["SECRET_KEY"], production)
    ring = _rings.get(cache_key)
    if ring is not None:
        return ring
    keys = _parse_keys(raw_keys)
    derived = False
    if not keys:
        if production:
            raise CryptoError(
                "CRM_ENCRYPTION_KEYS is not set: sensitive fields cannot be encrypted or read. "
                "Set it to one or more Fernet keys, newest first (make one with `crm keys generate`)."
            )
        keys = (Fernet(base64.urlsafe_b64encode(_derived(cfg["SECRET_KEY"], b"encryption"))),)
        derived = True
    if raw_index:
        if len(raw_index) < MIN_INDEX_KEY:
            raise CryptoError(
                f"CRM_BLIND_INDEX_KEY is too short: use at least {MIN_INDEX_KEY} random characters."
            )
        index_key = raw_index.encode()
    elif production:
        raise CryptoError(
            "CRM_BLIND_INDEX_KEY is not set: sensitive fields cannot be searched. "
            "Set it once to a random secret (e.g. the output of `crm keys generate`) and keep it."
        )
    else:
        index_key = _derived(cfg["SECRET_KEY"], b"blind-index")
    ring = KeyRing(keys, MultiFernet(list(keys)), index_key, derived)
    _rings[cache_key] = ring
    return ring


def encrypt(plaintext: str) -> str:
    """A Fernet token (URL-safe text) of `plaintext` under the primary key."""
    return keyring().multi.encrypt(plaintext.encode("utf-8")).decode("ascii")


def _unreadable() -> CryptoError:
    return CryptoError(
        "An encrypted value could not be decrypted: none of the keys in CRM_ENCRYPTION_KEYS made it "
        "(a key was dropped before `crm keys rotate` finished, or the value was altered)."
    )


def decrypt(token: str) -> str:
    try:
        return keyring().multi.decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError):
        raise _unreadable() from None


def open_token(token: str) -> tuple[str, bool]:
    """The plaintext of `token`, and whether it needs rotation (not made by the primary key)."""
    for n, key in enumerate(keyring().keys):
        try:
            return key.decrypt(token.encode("ascii")).decode("utf-8"), n > 0
        except InvalidToken:
            continue
        except UnicodeError:
            break
    raise _unreadable()


def needs_rotation(token: str) -> bool:
    """Whether `token` was not made by the primary key (it still may be readable by an older one)."""
    try:
        keyring().keys[0].decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeError):
        return True
    return False


def rotate(token: str) -> str:
    """`token` re-encrypted under the primary key (CryptoError if no key of the ring reads it)."""
    try:
        return keyring().multi.rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError):
        raise _unreadable() from None


# Blind indexes --------------------------------------------------------------------------------


def normalise(value: str, kind: str = "text") -> str:
    """The form of a value that its blind index is taken over.

    phone: the digits only; email: trimmed, lower case; text: letters and digits only, case-folded
    (so "AB 12-34" and "ab1234" are the same value, and "+1 (555) 010-1234" is "15550101234").
    """
    text = unicodedata.normalize("NFKC", value)
    if kind == "phone":
        return "".join(ch for ch in text if ch.isdigit())
    if kind == "email":
        return text.strip().lower()
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def blind_index(value: str, purpose: str, kind: str = "text") -> str:
    """HMAC-SHA256 (hex) of the normalised value; `purpose` keeps the indexes of different fields apart."""
    message = purpose.encode("utf-8") + b"\x00" + normalise(value, kind).encode("utf-8")
    return hmac.new(keyring().index_key, message, hashlib.sha256).hexdigest()


# Model columns --------------------------------------------------------------------------------


class EncryptedText(TypeDecorator):
    """A text column stored as a Fernet token: the attribute holds the plaintext, the table the token.

    Equality in SQL means nothing on it (each encryption differs): pair it with a blind index column
    to look values up. The audit hook records that such a column changed, never its value.
    """

    impl = Text
    cache_ok = True
    audit_redacted = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else encrypt(str(value))

    def process_result_value(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else decrypt(value)
