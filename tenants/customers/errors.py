"""The refusals of the customer services."""

from __future__ import annotations


class CustomerError(ValueError):
    """A refusal to show the person as it is (already translated); `field` names the form field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(LookupError):
    """No such record in the bound tenant, or not one this viewer may see: the page says 404."""
