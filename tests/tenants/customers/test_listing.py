"""The one list helper: keyset pages over ties and nulls, filters and sorts on custom fields."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import update

from tests.factories import Factory, unique
from tests.tenants.customers.conftest import in_tenant, viewer_of

SORTS = [
    "name",
    "-name",
    "updated_at",
    "-updated_at",
    "cf_score",
    "-cf_score",
    "cf_since",
    "-cf_since",
    "cf_segment",
    "industry",
    "-industry",
]


@pytest.fixture(scope="module")
def shop(app, _quick_hasher):
    """A workspace of its own with 37 companies full of ties: same names, same times, same scores, nulls."""
    from saas.extensions import db
    from tenants.customers import fields, services
    from tenants.customers.models import Company

    info = Factory(app).tenant(roles=("owner",), name=unique("List Co "))
    with in_tenant(app, info):
        v = viewer_of(info, "owner")
        fields.create_field("company", "Score", "number", [], key="score")
        fields.create_field("company", "Since", "date", [], key="since")
        fields.create_field("company", "Segment", "select", ["SMB", "Enterprise"], key="segment")
        fields.create_field("company", "Languages", "multi_select", ["en", "zh", "th"], key="langs")
        fields.create_field("company", "Partner", "checkbox", [], key="partner")
        for i in range(37):
            custom = {"partner": i % 4 == 0, "langs": ["en", "zh"] if i % 3 == 0 else ["th"]}
            if i % 5:
                custom["score"] = (i % 4) * 5 if i % 2 else 2.5 * (i % 3)  # ties, a fraction, zeros
            if i % 6:
                custom["since"] = f"2024-0{1 + i % 3}-1{i % 2}"
            if i % 7:
                custom["segment"] = "SMB" if i % 2 else "Enterprise"
            services.create_company(
                v,
                {
                    "name": ["Same", "same", "SAME", f"Unique {i:02d}", "100% Real"][i % 5],
                    "industry": ["", "Retail", "Retail", "Software"][i % 4],
                    "tags": ["vip"] if i % 4 == 1 else [],
                    "custom": custom,
                },
            )
        # Two groups of rows changed "at the same moment".
        stamp = datetime(2025, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
        db.session.execute(update(Company).where(Company.id % 3 == 0).values(updated_at=stamp))
        db.session.commit()
    return info


def _all_rows(app, info):
    from sqlalchemy import select

    from saas.extensions import db
    from tenants.customers.models import Company

    with in_tenant(app, info):
        return [
            {
                "id": c.id,
                "name": c.name,
                "updated_at": c.updated_at,
                "industry": c.industry,
                "tags": list(c.tags),
                "custom": dict(c.custom),
            }
            for c in db.session.scalars(select(Company))
        ]


def _key(sort: str, row: dict):
    key = sort.lstrip("-")
    if key == "name":
        return row["name"].lower()
    if key == "industry":
        return row["industry"].lower()
    if key == "updated_at":
        return row["updated_at"]
    value = row["custom"].get(key[3:])
    return Decimal(str(value)) if key == "cf_score" and value is not None else value


def _expected(rows: list[dict], sort: str) -> list[int]:
    """Sort value then id, both in the chosen direction; rows without a value last either way."""
    desc = sort.startswith("-")
    present = [r for r in rows if _key(sort, r) is not None]
    missing = [r for r in rows if _key(sort, r) is None]
    present.sort(key=lambda r: (_key(sort, r), r["id"]), reverse=desc)
    missing.sort(key=lambda r: r["id"], reverse=desc)
    return [r["id"] for r in present + missing]


def _walk(app, info, args: dict) -> tuple[list[int], int]:
    from tenants.customers import listing

    ids: list[int] = []
    pages = 0
    cursor = None
    with in_tenant(app, info):
        v = viewer_of(info, "owner")
        spec = listing.company_spec([])
        while True:
            page = listing.companies_page(v, spec, {**args, **({"after": cursor} if cursor else {})})
            ids += [c.id for c in page.items]
            pages += 1
            cursor = page.next_cursor
            assert pages < 100
            if not cursor:
                return ids, pages


@pytest.mark.parametrize("sort", SORTS)
def test_keyset_pages_cover_every_row_once_in_order(app, shop, sort):
    rows = _all_rows(app, shop)
    ids, pages = _walk(app, shop, {"sort": sort, "limit": "4"})
    assert ids == _expected(rows, sort)
    assert pages == -(-len(rows) // 4)


def test_page_size_one_walks_ties_one_by_one(app, shop):
    rows = _all_rows(app, shop)
    ids, _pages = _walk(app, shop, {"sort": "name", "limit": "1", "name": "same"})
    assert ids == _expected([r for r in rows if "same" in r["name"].lower()], "name")
    assert len(ids) == 23  # "Same", "same" and "SAME": ties all (i % 5 in 0, 1, 2 of 0..36)


def _all_three(r: dict) -> bool:
    return (
        (r["custom"].get("score") or 0) >= 5
        and r["custom"].get("segment") == "SMB"
        and "same" in r["name"].lower()
    )


@pytest.mark.parametrize(
    ("args", "keep"),
    [
        (
            {"cf_score__gte": "10"},
            lambda r: r["custom"].get("score") is not None and r["custom"]["score"] >= 10,
        ),
        ({"cf_score__lt": "5"}, lambda r: r["custom"].get("score") is not None and r["custom"]["score"] < 5),
        ({"cf_score": "2.5"}, lambda r: r["custom"].get("score") == 2.5),
        ({"cf_score__empty": "1"}, lambda r: "score" not in r["custom"]),
        ({"cf_segment": "SMB"}, lambda r: r["custom"].get("segment") == "SMB"),
        ({"cf_segment__ne": "SMB"}, lambda r: r["custom"].get("segment") != "SMB"),
        ({"cf_langs": "zh"}, lambda r: "zh" in r["custom"]["langs"]),
        ({"cf_partner": "1"}, lambda r: r["custom"]["partner"]),
        ({"cf_partner": "0"}, lambda r: not r["custom"]["partner"]),
        ({"cf_since__from": "2024-02-01"}, lambda r: r["custom"].get("since", "0") >= "2024-02-01"),
        (
            {"cf_since__to": "2024-01-31"},
            lambda r: "since" in r["custom"] and r["custom"]["since"] <= "2024-01-31",
        ),
        ({"name": "100%"}, lambda r: "100%" in r["name"]),
        ({"name": "_"}, lambda r: "_" in r["name"]),
        ({"name__eq": "same"}, lambda r: r["name"].lower() == "same"),
        ({"industry__empty": "1"}, lambda r: r["industry"] == ""),
        ({"tags": "vip"}, lambda r: "vip" in r["tags"]),
        ({"cf_score__gte": "5", "cf_segment": "SMB", "name": "same"}, lambda r: _all_three(r)),
    ],
)
def test_filters(app, shop, args, keep):
    rows = _all_rows(app, shop)
    ids, _pages = _walk(app, shop, {**args, "sort": "-cf_score", "limit": "5"})
    expected = _expected([r for r in rows if keep(r)], "-cf_score")
    assert ids == expected
    assert expected or args.get("name") == "_"


def test_bad_filter_values_are_reported_not_applied(app, shop):
    from tenants import listing as generic
    from tenants.customers import listing

    with in_tenant(app, shop):
        spec = listing.company_spec([])
        query = generic.parse_args(
            spec, {"cf_score__gte": "lots", "cf_since": "yesterday", "nosuch": "x", "sort": "nosuch"}
        )
        assert query.filters == []
        assert query.problems == ["Score: enter a number.", "Since: enter a date as YYYY-MM-DD."]
        assert query.sort == "name"
        # "size" is the company's size; the page size is "limit".
        query = generic.parse_args(spec, {"size": "11-50", "limit": "7"})
        assert [(f.field.key, f.value) for f in query.filters] == [("size", "11-50")] and query.size == 7
        assert query.args() == {"size": ["11-50"], "limit": 7}
        # A broken cursor is ignored: the first page.
        page = listing.companies_page(
            viewer_of(shop, "owner"), spec, {"after": "not-a-cursor!!", "limit": "3"}
        )
        assert len(page.items) == 3


def test_list_page_filters_sorts_and_loads_more(app, shop):
    from tests.factories import CsrfClient

    app.test_client_class = CsrfClient
    client = app.test_client()
    client.sign_in(shop.owner_email)
    url = f"/{shop.slug}/customers/companies?cf_score__gte=10&sort=-cf_score&limit=3"
    html = client.get(url).get_data(as_text=True)
    assert "Score at least 10" in html
    assert html.count('href="/' + shop.slug + "/customers/companies/") >= 3
    more = client.get(
        url.replace("limit=3", "limit=3&after=") + _cursor(html), headers={"HX-Request": "true"}
    )
    assert more.status_code == 200
    part = more.get_data(as_text=True)
    assert "<html" not in part and "<tr>" in part
    # The "add a filter" box turns into the list's own arguments.
    resp = client.get(
        f"/{shop.slug}/customers/companies?add_field=cf_segment&add_op=eq&add_value=SMB&sort=name"
    )
    assert resp.status_code == 302
    assert "cf_segment=SMB" in resp.headers["Location"] and "add_field" not in resp.headers["Location"]
    bad = client.get(f"/{shop.slug}/customers/companies?cf_score__gt=abc")
    assert bad.status_code == 200 and "Score: enter a number." in bad.get_data(as_text=True)


def _cursor(html: str) -> str:
    import re
    from html import unescape

    found = re.search(r'data-testid="load-more"', html)
    assert found, "no load-more button"
    href = re.findall(r'href="([^"]*after=[^"]*)"', html)[-1]
    return re.search(r"after=([^&]+)", unescape(href)).group(1)
