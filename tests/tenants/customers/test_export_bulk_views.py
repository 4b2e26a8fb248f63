"""Lists: CSV/XLSX export, bulk actions with undo, saved views (tenants/customers/views_lists.py)."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select, text

from tests.factories import db_state, unique
from tests.tenants.customers.conftest import in_tenant, viewer_of

FORMULAS = ("=SUM(1,2)", "+41 79", "-2+3", "@cmd", "\tTab", "\rCR")


@pytest.fixture(scope="module")
def data(app, crm):
    """Contacts owned by sales (in the manager's team) and by support (outside it), some with formulas."""
    from tenants.customers import fields as custom_fields
    from tenants.customers import services, teams

    tag = unique("exp").replace(" ", "")
    made: dict[str, object] = {"tag": tag}
    with in_tenant(app, crm):
        owner = viewer_of(crm, "owner")
        team = teams.create_team(unique("Export team "))
        teams.add_member(team.id, crm.people["manager"][0])
        teams.add_member(team.id, crm.people["sales"][0])
        sales_id, support_id = crm.people["sales"][0], crm.people["support"][0]
        field = custom_fields.create_field("contact", unique("Score "), "text", [])
        contacts = []
        for i, first in enumerate(FORMULAS):
            contact = services.create_contact(
                owner,
                {"first_name": first, "last_name": tag, "owner_id": sales_id, "job_title": f"=cmd|{i}"},
            )
            contact.custom = {field.key: f'=HYPERLINK("http://x","{i}")'}
            if first[0] in "\t\r":  # the services strip these; an import or the API might not
                contact.street = first
            contacts.append(contact.id)
        chinese = services.create_contact(
            owner, {"first_name": "张伟", "last_name": tag, "owner_id": sales_id, "city": "สมชาย"}
        )
        hidden = services.create_contact(
            owner, {"first_name": "Hidden", "last_name": tag, "owner_id": support_id}
        )
        made.update(formula_ids=contacts, chinese=chinese.id, hidden=hidden.id)
    return made


def _export(client, crm, kind: str, fmt: str, **args):
    query = "&".join(f"{k}={v}" for k, v in args.items())
    return client.get(f"/{crm.slug}/customers/{kind}/export?format={fmt}&{query}")


def _csv_rows(resp) -> list[list[str]]:
    body = resp.get_data()
    assert body.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


# Export -------------------------------------------------------------------------------------


def test_csv_export_neutralises_formulas_and_keeps_unicode(app, crm, login, data, monkeypatch):
    from tenants.customers import exports

    monkeypatch.setattr(exports, "BATCH", 2)  # several pages, all of them in the file
    resp = _export(login("owner"), crm, "contacts", "csv", name=data["tag"], sort="-created_at")
    assert resp.status_code == 200
    assert resp.mimetype == "text/csv" and "attachment" in resp.headers["Content-Disposition"]
    rows = _csv_rows(resp)
    header, body = rows[0], rows[1:]
    assert len(body) == len(FORMULAS) + 2
    first = header.index("First name")
    names = [r[first] for r in body]
    # Sorted newest first, as the list asked.
    assert names[0] == "Hidden" and names[1] == "张伟"
    streets = [r[header.index("Street")] for r in body]
    for value in FORMULAS:
        assert "'" + value in names + streets, value
    for row in body:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert "สมชาย" in body[1]
    assert {r[header.index("Job title")] for r in body} >= {"'=cmd|0"}
    custom = {r[-1] for r in body}  # the custom field is the last column
    assert '\'=HYPERLINK("http://x","0")' in custom


def test_xlsx_export_neutralises_formulas(app, crm, login, data):
    from openpyxl import load_workbook

    resp = _export(login("owner"), crm, "contacts", "xlsx", name=data["tag"])
    assert resp.status_code == 200
    assert resp.mimetype.endswith("spreadsheetml.sheet")
    book = load_workbook(io.BytesIO(resp.get_data()))
    sheet = book.active
    rows = list(sheet.iter_rows())
    header = [c.value for c in rows[0]]
    first = header.index("First name")
    names = [r[first].value for r in rows[1:]]
    assert "张伟" in names and "'=SUM(1,2)" in names and "'@cmd" in names
    streets = [r[header.index("Street")].value for r in rows[1:]]
    assert "'\tTab" in streets, streets
    assert "'\rCR" in streets or "'\nCR" in streets  # XML keeps no bare CR
    for row in rows[1:]:
        for cell in row:
            assert cell.data_type != "f", cell.value
            if isinstance(cell.value, str):
                assert not cell.value.startswith(("=", "+", "-", "@", "\t", "\r")), cell.value


@pytest.mark.parametrize("role", ["sales", "support", "read_only"])
def test_export_refused_without_the_export_permission(crm, login, data, role):
    for kind in ("contacts", "companies"):
        for fmt in ("csv", "xlsx"):
            resp = _export(login(role), crm, kind, fmt, name=data["tag"])
            assert resp.status_code == 403, (role, kind, fmt)


def test_export_obeys_visibility(app, crm, login, data):
    rows = _csv_rows(_export(login("manager"), crm, "contacts", "csv", name=data["tag"]))
    ids = {int(r[0]) for r in rows[1:]}
    assert data["chinese"] in ids and set(data["formula_ids"]) <= ids
    assert data["hidden"] not in ids
    everyone = _csv_rows(_export(login("marketing"), crm, "contacts", "csv", name=data["tag"]))
    assert data["hidden"] in {int(r[0]) for r in everyone[1:]}


def test_export_is_audited(app, crm, login, data):
    _export(login("owner"), crm, "companies", "csv", name=data["tag"])
    with in_tenant(app, crm):
        from saas.extensions import db
        from saas.tenancy import qualified

        count = db.session.execute(
            text(
                f"select count(*) from {qualified('audit_log')} where action = 'export' and entity = 'companies'"
            )
        ).scalar_one()
    assert count >= 1


# Bulk actions ---------------------------------------------------------------------------------


def _row_json(app, crm, table: str, row_id: int):
    from saas.extensions import db
    from saas.tenancy import qualified

    with in_tenant(app, crm):
        return db.session.execute(
            text(f"select to_jsonb(t) from {qualified(table)} t where id = :id"), {"id": row_id}
        ).scalar_one_or_none()


def _bulk(client, crm, kind: str, **form):
    return client.form(f"/{crm.slug}/customers/{kind}/bulk", form)


def _last_batch(app, crm, role: str, record_type: str) -> int:
    from tenants.customers import bulk

    with in_tenant(app, crm):
        return bulk.last_batch(viewer_of(crm, role), record_type).id


def _new_contacts(app, crm, n: int, owner_role: str = "sales", tags=("keep",)) -> list[int]:
    from tenants.customers import services

    with in_tenant(app, crm):
        owner = viewer_of(crm, "owner")
        return [
            services.create_contact(
                owner,
                {
                    "first_name": unique("Bulk "),
                    "owner_id": crm.people[owner_role][0],
                    "tags": list(tags),
                },
            ).id
            for _ in range(n)
        ]


def test_bulk_tag_and_undo_restore_exactly(app, crm, login, data):
    ids = _new_contacts(app, crm, 3)
    before = {i: _row_json(app, crm, "contacts", i) for i in ids}
    client = login("owner")
    resp = _bulk(client, crm, "contacts", action="tag_add", tag="vip", ids=[str(i) for i in ids])
    assert resp.status_code == 302
    assert all(_row_json(app, crm, "contacts", i)["tags"] == ["keep", "vip"] for i in ids)
    batch = _last_batch(app, crm, "owner", "contact")
    html = client.get(f"/{crm.slug}/customers/contacts").get_data(as_text=True)
    assert "undo-bar" in html
    assert client.form(f"/{crm.slug}/customers/contacts/bulk/undo", {"batch_id": batch}).status_code == 302
    for i in ids:
        after = _row_json(app, crm, "contacts", i)
        assert after["tags"] == before[i]["tags"]
    # Once only.
    client.form(f"/{crm.slug}/customers/contacts/bulk/undo", {"batch_id": batch})
    resp = _bulk(client, crm, "contacts", action="tag_remove", tag="keep", ids=[str(i) for i in ids])
    assert all(_row_json(app, crm, "contacts", i)["tags"] == [] for i in ids)
    client.form(
        f"/{crm.slug}/customers/contacts/bulk/undo", {"batch_id": _last_batch(app, crm, "owner", "contact")}
    )
    assert all(_row_json(app, crm, "contacts", i)["tags"] == ["keep"] for i in ids)


def test_bulk_assign_and_undo(app, crm, login, data):
    ids = _new_contacts(app, crm, 2)
    client = login("owner")
    new_owner = crm.people["support"][0]
    _bulk(client, crm, "contacts", action="assign", owner_id=str(new_owner), ids=[str(i) for i in ids])
    assert all(_row_json(app, crm, "contacts", i)["owner_id"] == new_owner for i in ids)
    batch = _last_batch(app, crm, "owner", "contact")
    # Someone else cannot undo it.
    login("manager").form(f"/{crm.slug}/customers/contacts/bulk/undo", {"batch_id": batch})
    assert all(_row_json(app, crm, "contacts", i)["owner_id"] == new_owner for i in ids)
    client.form(f"/{crm.slug}/customers/contacts/bulk/undo", {"batch_id": batch})
    assert all(_row_json(app, crm, "contacts", i)["owner_id"] == crm.people["sales"][0] for i in ids)


def test_bulk_assign_refuses_a_non_member(app, crm, login, data):
    ids = _new_contacts(app, crm, 1)
    _bulk(login("owner"), crm, "contacts", action="assign", owner_id="999999999", ids=[str(ids[0])])
    assert _row_json(app, crm, "contacts", ids[0])["owner_id"] == crm.people["sales"][0]


def test_bulk_delete_and_undo_restore_exactly(app, crm, login, data):
    from saas.extensions import db
    from tenants.customers import search, services, tasks, timeline
    from tenants.customers.models import Activity, Contact, Task

    name = unique("Deletable ")
    with in_tenant(app, crm):
        owner = viewer_of(crm, "owner")
        company = services.create_company(
            owner, {"name": name, "owner_id": crm.people["sales"][0], "tags": ["a", "b"]}
        )
        services.change_stage(owner, "company", company.id, "customer")
        contact = services.create_contact(owner, {"first_name": "Linked", "company_id": company.id})
        company_id, contact_id = company.id, contact.id
    with in_tenant(app, crm):
        timeline.log_activity(owner, "company", company_id, "note", body="<p>about it</p>")
        tasks.create_task(owner, {"title": "Call it"}, company_id=company_id)
    snapshot = {
        "company": _row_json(app, crm, "companies", company_id),
    }
    with in_tenant(app, crm):
        stages = len(services.stage_history("company", company_id))
        snapshot["activities"] = sorted(
            db.session.scalars(select(Activity.id).where(Activity.company_id == company_id))
        )
        snapshot["tasks"] = sorted(db.session.scalars(select(Task.id).where(Task.company_id == company_id)))
    assert snapshot["activities"] and snapshot["tasks"]

    client = login("owner")
    resp = _bulk(client, crm, "companies", action="delete", ids=[str(company_id)])
    assert resp.status_code == 302
    assert _row_json(app, crm, "companies", company_id) is None
    with in_tenant(app, crm):
        assert db.session.get(Contact, contact_id).company_id is None
        assert not search.search(viewer_of(crm, "owner"), name).companies

    batch = _last_batch(app, crm, "owner", "company")
    assert client.form(f"/{crm.slug}/customers/companies/bulk/undo", {"batch_id": batch}).status_code == 302
    assert _row_json(app, crm, "companies", company_id) == snapshot["company"]
    with in_tenant(app, crm):
        assert db.session.get(Contact, contact_id).company_id == company_id
        assert (
            sorted(db.session.scalars(select(Activity.id).where(Activity.company_id == company_id)))
            == snapshot["activities"]
        )
        assert (
            sorted(db.session.scalars(select(Task.id).where(Task.company_id == company_id)))
            == snapshot["tasks"]
        )
        assert len(services.stage_history("company", company_id)) == stages
        hits = search.search(viewer_of(crm, "owner"), name).companies
        assert [h.id for h in hits] == [company_id]


def test_bulk_delete_needs_the_delete_permission(app, crm, login, data):
    ids = _new_contacts(app, crm, 1)
    resp = _bulk(login("sales"), crm, "contacts", action="delete", ids=[str(ids[0])])
    assert resp.status_code == 403
    assert _row_json(app, crm, "contacts", ids[0]) is not None
    resp = _bulk(login("marketing"), crm, "contacts", action="tag_add", tag="x", ids=[str(ids[0])])
    assert resp.status_code == 403


def test_bulk_never_touches_invisible_records(app, crm, login, data):
    hidden = _new_contacts(app, crm, 1, owner_role="support")[0]
    seen = _new_contacts(app, crm, 1, owner_role="sales")[0]
    before = _row_json(app, crm, "contacts", hidden)
    client = login("manager")  # team visibility: sees sales, not support
    _bulk(client, crm, "contacts", action="tag_add", tag="mgr", ids=[str(hidden), str(seen), "abc"])
    assert _row_json(app, crm, "contacts", hidden) == before
    assert "mgr" in _row_json(app, crm, "contacts", seen)["tags"]
    _bulk(client, crm, "contacts", action="delete", ids=[str(hidden)])
    assert _row_json(app, crm, "contacts", hidden) == before


def test_forged_ids_of_another_workspace_are_untouched(app, crm, other, login):
    from tenants.customers import services

    with in_tenant(app, other):
        theirs = services.create_company(viewer_of(other, "owner"), {"name": unique("Theirs ")}).id
    before = db_state(app, other.schema)
    client = login("owner")
    for action in ("delete", "tag_add", "assign"):
        resp = _bulk(
            client,
            crm,
            "companies",
            action=action,
            tag="x",
            owner_id=str(crm.people["owner"][0]),
            ids=[str(theirs)],
        )
        assert resp.status_code == 302
    assert db_state(app, other.schema) == before
    assert _row_json(app, other, "companies", theirs) is not None


# Saved views ----------------------------------------------------------------------------------


def _views(app, crm, role: str, record_type: str = "contact"):
    from tenants.customers import saved_views

    with in_tenant(app, crm):
        return [(v.id, v.name, v.query) for v in saved_views.views_for(viewer_of(crm, role), record_type)]


def test_saved_views_are_per_user_unless_shared(app, crm, login, data):
    owner, sales = login("owner"), login("sales")
    mine, ours = unique("Mine "), unique("Ours ")
    resp = owner.form(
        f"/{crm.slug}/customers/contacts/views",
        {"name": mine, "query": "name=ann&after=XYZ&sort=-created_at"},
    )
    assert resp.status_code == 302 and "name=ann" in resp.headers["Location"]
    owner.form(f"/{crm.slug}/customers/contacts/views", {"name": ours, "query": "tags=vip", "shared": "1"})
    owner_views = {name: (vid, query) for vid, name, query in _views(app, crm, "owner")}
    assert owner_views[mine][1] == "name=ann&sort=-created_at"  # no page cursor
    sales_names = {name for _id, name, _q in _views(app, crm, "sales")}
    assert ours in sales_names and mine not in sales_names
    assert mine not in {name for _id, name, _q in _views(app, crm, "owner", "company")}
    # The dropdown shows them on the list.
    html = owner.get(f"/{crm.slug}/customers/contacts").get_data(as_text=True)
    assert mine in html and ours in html
    html = sales.get(f"/{crm.slug}/customers/contacts").get_data(as_text=True)
    assert ours in html and mine not in html
    # Only the owner deletes a view.
    sales.form(f"/{crm.slug}/customers/contacts/views/delete", {"view_id": owner_views[ours][0]})
    assert ours in {name for _id, name, _q in _views(app, crm, "owner")}
    owner.form(f"/{crm.slug}/customers/contacts/views/delete", {"view_id": owner_views[mine][0]})
    assert mine not in {name for _id, name, _q in _views(app, crm, "owner")}


def test_saving_a_view_needs_a_name(app, crm, login):
    before = len(_views(app, crm, "support"))
    resp = login("support").form(f"/{crm.slug}/customers/contacts/views", {"name": " ", "query": "a=b"})
    assert resp.status_code == 302
    assert len(_views(app, crm, "support")) == before
