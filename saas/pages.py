"""The one page convention: htmx requests get the partial, everything else the full page."""

from __future__ import annotations

from typing import Any

from flask import render_template, request


def wants_partial() -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request and not htmx.boosted


def render(template: str, partial: str | None = None, status: int = 200, **ctx: Any) -> tuple[str, int]:
    """Render `template` as a full page, or `partial` alone for an htmx request."""
    if partial and wants_partial():
        return render_template(partial, **ctx), status
    return render_template(template, **ctx), status


def form_errors(form: Any, error: Exception) -> None:
    """Put a service's refusal next to the field it names (or at the top of the form)."""
    field_name = getattr(error, "field", None)
    field = getattr(form, field_name, None) if field_name else None
    if field is not None:
        field.errors = [*list(field.errors or []), str(error)]
    else:
        form.form_errors.append(str(error))
