"""Lists through the API: the pages' filters, sort and keyset cursor; visibility own / team / all."""

from __future__ import annotations

import pytest

from tests.factories import add_tenant_row, db_state, unique
from tests.tenants.api.conftest import error_of


def test_pages_follow_the_cursor_in_order(app, crm, api):
    owner = api("owner")
    tag = unique("page")
    names = [f"{tag} {n:02d}" for n in range(7)]
    for name in reversed(names):
        assert owner.post("companies", {"name": name, "tags": [tag]}).status_code == 201
    seen, cursor, pages = [], None, 0
    while True:
        resp = owner.get(f"companies?tags={tag}&sort=name&limit=3" + (f"&after={cursor}" if cursor else ""))
        body = resp.get_json()
        assert set(body) == {"data", "next_cursor"}
        seen += [c["name"] for c in body["data"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == names and pages == 3
    desc = owner.get(f"companies?tags={tag}&sort=-name&limit=50").get_json()
    assert [c["name"] for c in desc["data"]] == names[::-1] and desc["next_cursor"] is None
    stage = owner.get(f"companies?tags={tag}&lifecycle_stage=customer").get_json()
    assert stage["data"] == []
    starts = owner.get(f"companies?name__starts={tag} 0&sort=-name&limit=2").get_json()
    assert [c["name"] for c in starts["data"]] == [names[6], names[5]]


@pytest.fixture(scope="module")
def owned(app, crm):
    """Companies owned by sales (in a team with manager), by marketing (alone), and by nobody."""
    from saas import tenancy
    from saas.extensions import db
    from tenants.customers.models import Team, TeamMember

    with app.app_context(), tenancy.bound(crm.id, crm.schema, crm.slug):
        team = Team(name=unique("Api team "))
        db.session.add(team)
        db.session.flush()
        for role in ("sales", "manager"):
            db.session.add(TeamMember(team_id=team.id, user_id=crm.people[role][0]))
        db.session.commit()
        db.session.remove()
    tag = unique("vis")
    made = {}
    for who in ("sales", "marketing", None):
        owner_id = crm.people[who][0] if who else None
        made[who] = add_tenant_row(
            app, crm, "tenants.customers.models:Company", name=unique("Vis "), owner_id=owner_id, tags=[tag]
        )
    return tag, made


@pytest.mark.parametrize(
    "role, sees",
    [("sales", {"sales"}), ("manager", {"sales"}), ("read_only", {"sales", "marketing", None})],
)
def test_visibility_applies_in_lists_and_reads(app, crm, api, owned, role, sees):
    tag, made = owned
    client = api(role)
    listed = {c["id"] for c in client.get(f"companies?tags={tag}").get_json()["data"]}
    assert listed == {made[w] for w in sees}
    for who, company_id in made.items():
        resp = client.get(f"companies/{company_id}")
        assert resp.status_code == (200 if who in sees else 404)
    hidden = [made[w] for w in made if w not in sees]
    client.get("companies")  # the token's use is noted before the state is taken
    before = db_state(app, "public", crm.schema)
    for company_id in hidden:
        for resp in (
            client.patch(f"companies/{company_id}", {"name": "taken"}),
            client.post("activities", {"kind": "note", "body": "x", "company_id": company_id}),
            client.post("tasks", {"title": "x", "company_id": company_id}),
            client.get(f"activities?company_id={company_id}"),
        ):
            assert resp.status_code in (403, 404), resp.status_code
            error_of(resp)
    assert db_state(app, "public", crm.schema) == before
