"""Global search: the top bar's results as you type (htmx partial) and the full results page."""

from __future__ import annotations

from typing import Any

from flask import request

from saas.pages import render, wants_partial
from saas.permissions import require
from tenants.customers import search as search_service
from tenants.customers.views import bp, viewer

DROPDOWN_LIMIT = 6
PAGE_LIMIT = 50


@bp.get("/search")
@require("customers", "view")
def search() -> Any:
    """Full page without JS (or on Enter); the dropdown partial for the top bar's htmx requests."""
    query = request.args.get("q", "")
    limit = DROPDOWN_LIMIT if wants_partial() else PAGE_LIMIT
    results = search_service.search(viewer(), query, limit=limit)
    return render("customers/search.html", "customers/_search_results.html", results=results, limit=limit)
