"""The backup file: one zip holding each table's rows (COPY text format), the tenant's files, and a
signed manifest.json written last.

manifest.json is {"manifest": {...}, "signature": hex}: the HMAC-SHA256, under the backup signing key
(BACKUP_SIGNING_KEY, else SECRET_KEY), of the manifest in canonical JSON. The manifest names every
member with the SHA-256 and length of its content, so one signature covers every byte: a file from
another deployment, an edited manifest or a changed member is refused before anything is restored.
Which tenant and backup it belongs to is in the signed manifest too, so another tenant's file stands
out as well.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from saas.storage import setting

FORMAT = "crm-tenant-backup"
VERSION = 1
MANIFEST = "manifest.json"
# zlib level 1: most of the size win for a fraction of the CPU (dumps are CPU-bound at level 6).
COMPRESSLEVEL = 1
CHUNK = 1 << 20


class BackupRefused(Exception):
    """A backup file that may not be restored (damaged, altered, foreign, or of another schema)."""


def signing_key() -> bytes:
    return str(setting("BACKUP_SIGNING_KEY") or setting("SECRET_KEY")).encode()


def canonical(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign(manifest: dict[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical(manifest), hashlib.sha256).hexdigest()


class _Member:
    """A member being written: counts and hashes what goes through it.

    Compressing, hashing and writing run in a thread of their own (zlib and hashlib let go of the
    GIL), so they overlap with reading the next rows from the database.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream, self.sha256, self.bytes = stream, hashlib.sha256(), 0
        self.error: BaseException | None = None
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self.thread = threading.Thread(target=self._drain, name="backup-writer", daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        while (data := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self.stream.write(data)
                    self.sha256.update(data)
                except BaseException as exc:  # noqa: BLE001 - handed to the writing thread
                    self.error = exc

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.error is not None:
            raise self.error
        data = bytes(data)  # the caller may reuse its buffer
        self.bytes += len(data)
        self.queue.put(data)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error

    def digest(self) -> dict[str, Any]:
        return {"sha256": self.sha256.hexdigest(), "bytes": self.bytes}


class Writer:
    """Writes the zip member by member, straight to disk (nothing is held in memory)."""

    def __init__(self, path: Path) -> None:
        self.zip = zipfile.ZipFile(
            path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESSLEVEL, allowZip64=True
        )

    @contextmanager
    def member(self, name: str) -> Iterator[_Member]:
        with self.zip.open(name, "w", force_zip64=True) as stream:
            member = _Member(stream)
            try:
                yield member
            finally:
                member.close()

    def finish(self, manifest: dict[str, Any], key: bytes) -> None:
        body = {"manifest": manifest, "signature": sign(manifest, key)}
        self.zip.writestr(MANIFEST, json.dumps(body, indent=1, sort_keys=True))
        self.zip.close()

    def abort(self) -> None:
        self.zip.close()


def members(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every data member the manifest vouches for: name -> {"sha256", "bytes"}."""
    found = {t["member"]: t for t in manifest.get("tables", {}).values()}
    found.update({f["member"]: f for f in manifest.get("files", [])})
    return found


def damaged() -> BackupRefused:
    return BackupRefused("The backup file is damaged (it cannot be read as a whole): it is refused.")


def read_checked(
    path: Path, tenant_id: int | None = None, backup_id: int | None = None
) -> tuple[zipfile.ZipFile, dict[str, Any]]:
    """Open a backup file and check all of it: signature, format, whose it is, and every member's bytes.

    Returns the open zip and its manifest, or raises BackupRefused saying why.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise damaged() from exc
    try:
        manifest = _checked_manifest(archive)
        if tenant_id is not None and manifest.get("tenant_id") != tenant_id:
            raise BackupRefused(
                f"This backup file holds another workspace's data (workspace {manifest.get('tenant_id')}, "
                f"not {tenant_id}): it is refused."
            )
        if backup_id is not None and manifest.get("backup_id") != backup_id:
            raise BackupRefused(
                f"This file belongs to backup #{manifest.get('backup_id')}, not #{backup_id}: it is refused."
            )
        _check_members(archive, manifest)
    except BaseException:
        archive.close()
        raise
    return archive, manifest


def _checked_manifest(archive: zipfile.ZipFile) -> dict[str, Any]:
    try:
        body = json.loads(archive.read(MANIFEST))
        manifest, signature = body["manifest"], body["signature"]
    except KeyError as exc:
        raise BackupRefused("This is not a backup of this CRM (it has no manifest): it is refused.") from exc
    except (zipfile.BadZipFile, zlib.error, ValueError, TypeError, OSError, EOFError) as exc:
        raise damaged() from exc
    if not isinstance(manifest, dict) or not isinstance(signature, str):
        raise damaged()
    if not hmac.compare_digest(sign(manifest, signing_key()), signature):
        raise BackupRefused(
            "The backup's signature does not match: the file was altered, or made by another "
            "installation. It is refused."
        )
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise BackupRefused("This backup was written in a format this release cannot read: it is refused.")
    return manifest


def _check_members(archive: zipfile.ZipFile, manifest: dict[str, Any]) -> None:
    expected = members(manifest)
    names = set(archive.namelist()) - {MANIFEST}
    if names != set(expected):
        raise BackupRefused(
            "The backup file's contents differ from its manifest: it was altered. It is refused."
        )
    for name, want in expected.items():
        digest, size = hashlib.sha256(), 0
        try:
            with archive.open(name) as stream:
                while chunk := stream.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:  # CRC, inflate
            raise damaged() from exc
        if digest.hexdigest() != want.get("sha256") or size != want.get("bytes"):
            raise BackupRefused(
                f"Part of the backup file ({name}) does not match its manifest: it was altered or damaged. "
                "It is refused."
            )
