"""Base for tenant-schema models: declared in the placeholder schema "tenant"."""

from __future__ import annotations

from sqlalchemy import BigInteger, Identity
from sqlalchemy.orm import Mapped, mapped_column

from saas.tenancy import PLACEHOLDER

TENANT = {"schema": PLACEHOLDER}


def id_column() -> Mapped[int]:
    return mapped_column(BigInteger, Identity(), primary_key=True)
