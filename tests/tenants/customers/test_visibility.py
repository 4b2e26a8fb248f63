"""Record visibility own / team / all, applied in the query: lists, 360 pages, services, and writes."""

from __future__ import annotations

import pytest

from tests.factories import db_state
from tests.tenants.customers.conftest import in_tenant, viewer_of


@pytest.fixture(scope="module")
def records(app, crm):
    """One company and contact owned by each of: sales, manager, support, nobody. Sales and manager share a team."""
    from tenants.customers import services, teams

    made: dict[str, tuple[int, int]] = {}
    with in_tenant(app, crm):
        owner = viewer_of(crm, "owner")
        team = teams.create_team("North")
        teams.add_member(team.id, crm.people["manager"][0])
        teams.add_member(team.id, crm.people["sales"][0])
        for who in ("sales", "manager", "support", "nobody"):
            owner_id = "" if who == "nobody" else crm.people[who][0]
            company = services.create_company(owner, {"name": f"Vis {who} Company", "owner_id": owner_id})
            contact = services.create_contact(
                owner,
                {
                    "first_name": f"Vis {who}",
                    "last_name": "Person",
                    "owner_id": owner_id,
                    "company_id": company.id,
                },
            )
            made[who] = (company.id, contact.id)
    return made


SEES = {
    "sales": {"sales"},  # own
    "manager": {"sales", "manager"},  # team (North: manager + sales)
    "support": {"sales", "manager", "support", "nobody"},  # all
    "owner": {"sales", "manager", "support", "nobody"},
    "read_only": {"sales", "manager", "support", "nobody"},
}


@pytest.mark.parametrize("role", list(SEES))
def test_lists_show_only_visible_records(crm, login, records, role):
    client = login(role)
    for kind, label in (("companies", "Company"), ("contacts", "Person")):
        html = client.get(f"/{crm.slug}/customers/{kind}?name=Vis&limit=200").get_data(as_text=True)
        shown = {who for who in records if f"Vis {who} {label}" in html}
        assert shown == SEES[role], (kind, role)


@pytest.mark.parametrize("role", list(SEES))
def test_record_pages_404_when_not_visible(crm, login, records, role):
    client = login(role)
    for who, (company_id, contact_id) in records.items():
        expected = 200 if who in SEES[role] else 404
        assert client.get(f"/{crm.slug}/customers/companies/{company_id}").status_code == expected
        assert client.get(f"/{crm.slug}/customers/contacts/{contact_id}").status_code == expected
        assert client.get(f"/{crm.slug}/customers/companies/{company_id}/timeline").status_code == expected


def test_writes_on_invisible_records_are_404_and_change_nothing(app, crm, login, records):
    client = login("sales")
    company_id, contact_id = records["support"]
    base = f"/{crm.slug}/customers"
    before = db_state(app, crm.schema)
    for url, data in [
        (f"{base}/companies/{company_id}/edit", {"name": "Hijacked"}),
        (f"{base}/companies/{company_id}/stage", {"stage": "churned"}),
        (f"{base}/companies/{company_id}/activities", {"kind": "note", "body": "sneaky"}),
        (f"{base}/companies/{company_id}/tasks", {"title": "sneaky"}),
        (f"{base}/contacts/{contact_id}/edit", {"first_name": "Hijacked"}),
        (f"{base}/contacts/{contact_id}/activities", {"kind": "call", "subject": "sneaky"}),
        (
            f"{base}/contacts/new",
            {"first_name": "Linked", "company_id": str(company_id), "company": "Vis support Company"},
        ),
    ]:
        resp = client.form(url, data)
        if url.endswith(
            "/contacts/new"
        ):  # an invisible company cannot be linked: a refusal next to the field
            assert resp.status_code == 422 and "No company is called Vis support Company" in resp.get_data(
                as_text=True
            )
        else:
            assert resp.status_code == 404, url
    assert db_state(app, crm.schema) == before


def test_contact_list_hides_the_name_of_an_invisible_company(app, crm, login):
    from tenants.customers import services

    with in_tenant(app, crm):
        owner = viewer_of(crm, "owner")
        secret = services.create_company(
            owner, {"name": "Secret Holdings", "owner_id": crm.people["support"][0]}
        )
        services.create_contact(
            owner,
            {
                "first_name": "Visible",
                "last_name": "Employee",
                "owner_id": crm.people["sales"][0],
                "company_id": secret.id,
            },
        )
    html = login("sales").get(f"/{crm.slug}/customers/contacts?name=Visible+Employee").get_data(as_text=True)
    assert "Visible Employee" in html and "Secret Holdings" not in html


def test_services_apply_the_same_rule(app, crm, records):
    from tenants.customers import listing, services
    from tenants.customers.errors import NotFound

    with in_tenant(app, crm):
        for role, sees in SEES.items():
            v = viewer_of(crm, role)
            page = listing.companies_page(v, listing.company_spec([]), {"name": "Vis ", "limit": "200"})
            assert {c.name.split()[1] for c in page.items} == sees
            for who, (company_id, _contact_id) in records.items():
                if who in sees:
                    assert services.get_company(v, company_id).id == company_id
                else:
                    with pytest.raises(NotFound):
                        services.get_company(v, company_id)
        # Unknown visibility settings fail closed: own records only.
        odd = viewer_of(crm, "sales").__class__(crm.people["support"][0], "everything")
        assert {
            c.name for c in listing.companies_page(odd, listing.company_spec([]), {"name": "Vis "}).items
        } == {"Vis support Company"}


def test_leaving_a_team_hides_the_teammates_records(app, crm, records):
    from tenants.customers import services, teams
    from tenants.customers.errors import NotFound

    with in_tenant(app, crm):
        north = next(t for t, _m in teams.teams() if t.name == "North")
        manager = viewer_of(crm, "manager")
        assert services.get_company(manager, records["sales"][0])
        teams.remove_member(north.id, crm.people["sales"][0])
        try:
            with pytest.raises(NotFound):
                services.get_company(manager, records["sales"][0])
        finally:
            teams.add_member(north.id, crm.people["sales"][0])
