"""One object store for every file the platform keeps: attachments, backups, compliance exports.

S3 through boto3 (server-side encrypted) when CRM_S3_BUCKET is set, with CRM_S3_PREFIX and
CRM_S3_ENDPOINT_URL; otherwise a folder under the instance path. Keys are made by our code, never
taken from user input, and checked against KEY_RE all the same.

Expiring download links: S3 presigned URLs, or for the local folder a signed token served by
`site.stored_file` (same lifetime rule: the link stops working after `expires` seconds).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any, BinaryIO

from flask import current_app, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

KEY_RE = re.compile(r"[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-][A-Za-z0-9_.\-]*)*")
LINK_SALT = "stored-file-link"


def setting(name: str, default: Any = None) -> Any:
    """App config first, then the environment (workers and CLI read the same names)."""
    value = current_app.config.get(name)
    if value in (None, ""):
        value = os.environ.get(name, default)
    return value if value != "" else default


def check_key(key: str) -> str:
    if not KEY_RE.fullmatch(key) or ".." in key:
        raise ValueError("bad storage key")
    return key


class LocalStorage:
    def __init__(self, root: Path, area: str = "attachments") -> None:
        self.root, self.area = root, area

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)  # readers never see half a file

    def put_file(self, key: str, source: Path, content_type: str = "application/octet-stream") -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        shutil.copyfile(source, tmp)
        tmp.replace(path)

    def get(self, key: str) -> bytes | None:
        path = self.path(key)
        return path.read_bytes() if path.is_file() else None

    def get_file(self, key: str, target: Path) -> bool:
        path = self.path(key)
        if not path.is_file():
            return False
        shutil.copyfile(path, target)
        return True

    def open(self, key: str) -> BinaryIO | None:
        path = self.path(key)
        return path.open("rb") if path.is_file() else None

    def size(self, key: str) -> int | None:
        path = self.path(key)
        return path.stat().st_size if path.is_file() else None

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def keys(self, prefix: str) -> list[str]:
        base = self.root / check_key(prefix.rstrip("/"))
        if not base.is_dir():
            return []
        return sorted(
            str(p.relative_to(self.root))
            for p in base.rglob("*")
            if p.is_file() and not p.name.endswith(".part")
        )

    def download_url(self, key: str, filename: str, expires: int = 3600) -> str:
        token = _serializer().dumps({"a": self.area, "k": check_key(key), "f": filename, "e": expires})
        return url_for("site.stored_file", token=token, _external=True)


class S3Storage:
    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None) -> None:
        import boto3

        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.client = boto3.client("s3", endpoint_url=endpoint_url or None)

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(
            Bucket=self.bucket,
            Key=self._key(key),
            Body=data,
            ContentType=content_type,
            ServerSideEncryption="AES256",
        )

    def put_file(self, key: str, source: Path, content_type: str = "application/octet-stream") -> None:
        # Multipart for large files; S3 makes the object visible only once every part is in.
        self.client.upload_file(
            str(source),
            self.bucket,
            self._key(key),
            ExtraArgs={"ContentType": content_type, "ServerSideEncryption": "AES256"},
        )

    def get(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def get_file(self, key: str, target: Path) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.download_file(self.bucket, self._key(key), str(target))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey"}:
                return False
            raise
        return True

    def open(self, key: str) -> BinaryIO | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except self.client.exceptions.NoSuchKey:
            return None

    def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"]
        except ClientError:
            return None

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def keys(self, prefix: str) -> list[str]:
        full = self._key(prefix.rstrip("/")) + "/"
        cut = len(self.prefix) + 1 if self.prefix else 0
        found: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
            found.extend(obj["Key"][cut:] for obj in page.get("Contents", []))
        return sorted(found)

    def download_url(self, key: str, filename: str, expires: int = 3600) -> str:
        return self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self._key(key),
                "ResponseContentDisposition": f'attachment; filename="{_ascii(filename)}"',
            },
            ExpiresIn=expires,
        )


def storage(area: str = "attachments") -> LocalStorage | S3Storage:
    """The store; `area` names the local folder (S3 keeps everything under one prefix)."""
    bucket = setting("CRM_S3_BUCKET")
    if bucket:
        return S3Storage(bucket, setting("CRM_S3_PREFIX", "") or "", setting("CRM_S3_ENDPOINT_URL"))
    if not re.fullmatch(r"[a-z_]+", area):
        raise ValueError("bad storage area")
    return LocalStorage(Path(current_app.instance_path) / area, area)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=LINK_SALT)


def _ascii(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._\-]", "_", name) or "download"


def resolve_link(token: str) -> tuple[str, str, str] | None:
    """(area, key, filename) of a valid, unexpired local download token, else None."""
    serializer = _serializer()
    try:
        data = serializer.loads(token)
        serializer.loads(token, max_age=int(data["e"]))  # the lifetime the link was made with
        return data["a"], check_key(data["k"]), str(data["f"])
    except (BadSignature, SignatureExpired, KeyError, TypeError, ValueError):
        return None
