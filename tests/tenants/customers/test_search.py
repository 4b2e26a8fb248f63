"""Global search: any part of a Chinese or Thai name, Latin without case, email, phone digits, company
name; the index follows updates and deletes; visibility and tenant isolation; htmx partial vs page."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.tenants.customers.conftest import in_tenant, viewer_of


@pytest.fixture(scope="module")
def people(app, crm):
    """Records of `crm`, owned by its owner unless said otherwise: name -> id."""
    from tenants.customers import services

    made: dict[str, int] = {}
    with in_tenant(app, crm):
        owner = viewer_of(crm, "owner")
        acme = services.create_company(
            owner,
            {"name": "Zyxwv Trading Ltd", "website": "zyxwv-trading.example", "phones": "+1 (415) 555-0199"},
        )
        made["company"] = acme.id
        rows = {
            "zhang": {"first_name": "伟", "last_name": "张", "email": "zhang.wei@example.cn"},
            "chan": {"first_name": "大文", "last_name": "陳", "phones": "+852 9123 4567"},
            "somchai": {"first_name": "สมชาย", "last_name": "ใจดี", "email": "somchai@example.co.th"},
            "latin": {
                "first_name": "Quentin",
                "last_name": "O'Xavierson",
                "email": "Q.Xavierson@Mailbox-Example.org",
                "phones": "020 7946-0958",
                "company_id": acme.id,
            },
            "script": {"first_name": "<script>alert(1)</script>", "last_name": "Qwerty"},
            "sales_own": {"first_name": "Plumbago", "last_name": "Own", "owner_id": crm.people["sales"][0]},
            "others": {"first_name": "Plumbago", "last_name": "Theirs"},
        }
        for key, data in rows.items():
            made[key] = services.create_contact(owner, data).id
    return made


def _search(app, info, query, role="owner", limit=8):
    from tenants.customers import search

    with in_tenant(app, info):
        results = search.search(viewer_of(info, role), query, limit=limit)
        return {hit.id for hit in results.contacts}, {hit.id for hit in results.companies}


@pytest.mark.parametrize(
    ("query", "who"),
    [
        ("张伟", "zhang"),
        ("伟", "zhang"),
        ("张", "zhang"),
        ("陳大文", "chan"),
        ("大文", "chan"),
        ("陳", "chan"),
        ("สมชาย", "somchai"),
        ("มชา", "somchai"),
        ("ใจดี", "somchai"),
        ("สมชาย ใจดี", "somchai"),
    ],
)
def test_finds_chinese_and_thai_names_by_any_part(app, crm, people, query, who):
    contacts, _ = _search(app, crm, query)
    assert people[who] in contacts


@pytest.mark.parametrize(
    "query", ["quentin", "QUENTIN", "xavierson", "Xavier", "quentin o'xav", "o'xavierson quen"]
)
def test_latin_names_without_case_and_in_any_word_order(app, crm, people, query):
    contacts, _ = _search(app, crm, query)
    assert people["latin"] in contacts


@pytest.mark.parametrize("query", ["q.xavierson@mailbox", "MAILBOX-EXAMPLE.ORG", "zhang.wei@"])
def test_email_without_case(app, crm, people, query):
    contacts, _ = _search(app, crm, query)
    assert contacts & {people["latin"], people["zhang"]}


@pytest.mark.parametrize("query", ["02079460958", "020 7946 0958", "(020) 7946-0958", "7946-09", "9460"])
def test_phone_by_digits_whatever_the_format(app, crm, people, query):
    contacts, _ = _search(app, crm, query)
    assert people["latin"] in contacts


def test_company_by_name_domain_and_phone_and_its_contacts_by_company_name(app, crm, people):
    for query in ("zyxwv", "ZYXWV trading", "zyxwv-trading.example", "415 555 0199"):
        _, companies = _search(app, crm, query)
        assert people["company"] in companies, query
    contacts, _ = _search(app, crm, "Zyxwv Trading")
    assert people["latin"] in contacts  # a contact found through its company's name


def test_no_false_hits_and_short_queries(app, crm, people):
    from tenants.customers import search

    assert _search(app, crm, "伟张") == (set(), set())  # both characters there, not in this order
    assert _search(app, crm, "quentinx") == (set(), set())
    with in_tenant(app, crm):
        assert search.search(viewer_of(crm, "owner"), "q").too_short
        assert not search.search(viewer_of(crm, "owner"), "   ")


def test_index_follows_updates_and_deletes(app, crm):
    from tenants.customers import services

    with in_tenant(app, crm):
        owner = viewer_of(crm, "owner")
        contact_id = services.create_contact(
            owner, {"first_name": "Marmaduke", "email": "mm@old-host.example"}
        ).id
        company_id = services.create_company(owner, {"name": "Quillfeather Ltd"}).id
    assert contact_id in _search(app, crm, "marmaduke")[0]
    with in_tenant(app, crm):
        services.update_contact(
            owner, contact_id, {"first_name": "Bartholomew", "email": "bb@new-host.example"}
        )
        services.update_company(owner, company_id, {"name": "Inkwell Ltd"})
    assert contact_id not in _search(app, crm, "marmaduke")[0]
    assert contact_id not in _search(app, crm, "old-host")[0]
    assert contact_id in _search(app, crm, "bartholomew")[0]
    assert contact_id in _search(app, crm, "new-host")[0]
    assert company_id not in _search(app, crm, "quillfeather")[1]
    assert company_id in _search(app, crm, "inkwell")[1]
    with in_tenant(app, crm):
        from saas.extensions import db
        from tenants.customers.models import Contact

        # The old grams went with the old text: only the new text's grams are left.
        grams = set(db.session.scalar(select(Contact.search_grams).where(Contact.id == contact_id)))
        assert "ma" not in grams and "ba" in grams
        services.delete_contact(owner, contact_id)
        services.delete_company(owner, company_id)
    assert contact_id not in _search(app, crm, "bartholomew")[0]


def test_reindex_all_equals_the_services_index(app, crm, people):
    from saas.extensions import db
    from tenants.customers import search
    from tenants.customers.models import Company, Contact

    def derived() -> set:
        return {
            (kind, row.id, row.search_text, tuple(row.search_grams))
            for kind, model in (("company", Company), ("contact", Contact))
            for row in db.session.execute(select(model.id, model.search_text, model.search_grams))
        }

    with in_tenant(app, crm):
        before = derived()
        assert any(grams for *_r, grams in before)
        search.reindex_all()
        after = derived()
        # (rolled back by in_tenant)
    assert before == after


def test_derive_one_rule_for_index_and_query():
    from tenants.customers import search

    text_, grams = search.derive(
        "contact",
        {
            "full_name": "张伟 Ｑuentin",
            "email": "Q.X@Example.org",
            "emails": [],
            "phones": ["+66 (2) 555-01"],
        },
    )
    assert text_ == "张伟 quentin q.x@example.org 66255501"  # NFKC folds the full-width Ｑ
    assert {"张伟", "张", "伟", "qu", "@e", "66", "01"} <= set(grams)
    assert search.query_grams(search.words_of(search.normalise("伟"))) == ["伟"]
    assert search.query_grams(search.words_of(search.normalise("q"))) == []
    assert search.words_of("+66 2 555") == ["662555"]


def test_visibility_own_does_not_find_others_records(app, crm, people):
    sales, _ = _search(app, crm, "plumbago", role="sales")
    assert sales == {people["sales_own"]}
    everyone, _ = _search(app, crm, "plumbago", role="owner")
    assert {people["sales_own"], people["others"]} <= everyone
    assert _search(app, crm, "张伟", role="sales") == (set(), set())


def test_tenant_isolation(app, crm, other, people, login):
    from tenants.customers import search, services

    with in_tenant(app, other):
        services.create_contact(viewer_of(other, "owner"), {"first_name": "Isolato", "last_name": "张伟"})
        assert [h.name for h in search.search(viewer_of(other, "owner"), "isolato").contacts] == [
            "张伟Isolato"
        ]
    with in_tenant(app, crm):
        names = {h.name for h in search.search(viewer_of(crm, "owner"), "张伟").contacts}
        assert names == {"张伟"}  # never the other workspace's 张伟Isolato
        assert not search.search(viewer_of(crm, "owner"), "isolato")
    html = login("owner").get(f"/{crm.slug}/customers/search?q=isolato").get_data(as_text=True)
    assert "Isolato" not in html.replace('value="isolato"', "")
    # Another workspace's search page is not there for this login.
    assert login("owner").get(f"/{other.slug}/customers/search?q=isolato").status_code == 404


def test_page_and_htmx_partial_escape_script(crm, people, login):
    client = login("owner")
    url = f"/{crm.slug}/customers/search?q=qwerty"
    page = client.get(url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<html" in html and 'data-testid="search-page-results"' in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert page.headers.get("Vary") and "HX-Request" in page.headers["Vary"]
    part = client.get(url, headers={"HX-Request": "true"})
    body = part.get_data(as_text=True)
    assert part.status_code == 200 and "<html" not in body and 'data-testid="search-results"' in body
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body
    assert f"/contacts/{people['script']}" in body


def test_top_bar_has_the_search_box(crm, login):
    html = login("sales").get(f"/{crm.slug}/customers/contacts").get_data(as_text=True)
    assert 'hx-trigger="input changed delay:200ms, search"' in html
    assert f'action="/{crm.slug}/customers/search"' in html


def test_sales_page_does_not_show_others_records(crm, people, login):
    html = login("sales").get(f"/{crm.slug}/customers/search?q=plumbago").get_data(as_text=True)
    assert f"/contacts/{people['sales_own']}" in html
    assert f"/contacts/{people['others']}" not in html
