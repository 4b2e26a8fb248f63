"""Create, read, update, delete and list each resource through the API, with the services' checks."""

from __future__ import annotations

import json

from tests.factories import db_state, sql_value, unique
from tests.tenants.api.conftest import error_of
from tests.tenants.customers.conftest import in_tenant


def test_companies_crud(app, crm, api):
    owner = api("owner")
    name = unique("Api Co ")
    resp = owner.post(
        "companies", {"name": name, "tags": ["api"], "phones": ["+66 2 123 4567"], "size": "11-50"}
    )
    assert resp.status_code == 201, resp.get_json()
    company = resp.get_json()
    assert company["name"] == name and company["owner_id"] == crm.people["owner"][0]
    assert company["lifecycle_stage"] == "lead" and company["tags"] == ["api"]
    assert resp.headers["Location"] == f"/api/v1/{crm.slug}/companies/{company['id']}"
    assert owner.get(f"companies/{company['id']}").get_json() == company

    resp = owner.patch(f"companies/{company['id']}", {"industry": "Tea", "lifecycle_stage": "customer"})
    assert resp.status_code == 200
    changed = resp.get_json()
    assert (changed["industry"], changed["lifecycle_stage"], changed["name"]) == ("Tea", "customer", name)
    # The stage change went into history and the timeline, as on the pages.
    entries = owner.get(f"activities?company_id={company['id']}").get_json()["data"]
    assert [e["kind"] for e in entries][:1] == ["stage_change"]
    # null owner: nobody.
    assert owner.patch(f"companies/{company['id']}", {"owner_id": None}).get_json()["owner_id"] is None

    assert owner.delete(f"companies/{company['id']}").status_code == 204
    assert owner.get(f"companies/{company['id']}").status_code == 404
    # Audited with the token's user as the actor.
    assert (
        sql_value(
            app,
            f"select count(*) from {crm.schema}.audit_log where entity = 'companies' and entity_id = :id"
            " and user_id = :uid",
            id=str(company["id"]),
            uid=crm.people["owner"][0],
        )
        >= 3
    )


def test_contacts_crud_with_company_and_custom_field(app, crm, api):
    from tenants.customers import fields

    key = unique("score").lower()
    with in_tenant(app, crm):
        fields.create_field("contact", "Score", "number", [], key=key)
    owner = api("owner")
    company = owner.post("companies", {"name": unique("Parent ")}).get_json()
    resp = owner.post(
        "contacts",
        {
            "first_name": "伟",
            "last_name": "张",
            "email": "Zhang.Wei@Example.com",
            "company_id": company["id"],
            "birthday": "1990-05-01",
            "consent_email": True,
            "consent_email_how": "web form",
            "custom": {key: 42},
        },
    )
    assert resp.status_code == 201, resp.get_json()
    contact = resp.get_json()
    assert contact["full_name"] == "张伟" and contact["email"] == "zhang.wei@example.com"
    assert contact["company_id"] == company["id"] and contact["birthday"] == "1990-05-01"
    assert contact["custom"] == {key: 42} and contact["consent_email_at"]

    listed = owner.get(f"contacts?cf_{key}__gte=40&company_id={company['id']}").get_json()
    assert [c["id"] for c in listed["data"]] == [contact["id"]]
    assert owner.get(f"contacts?cf_{key}__gte=43&company_id={company['id']}").get_json()["data"] == []

    resp = owner.patch(f"contacts/{contact['id']}", {"company_id": None, "job_title": "CEO"})
    assert resp.get_json()["company_id"] is None and resp.get_json()["job_title"] == "CEO"
    resp = owner.patch(f"contacts/{contact['id']}", {"custom": {key: "many"}})
    assert resp.status_code == 422
    assert list(error_of(resp)["fields"]) == [f"custom.{key}"]
    assert owner.delete(f"contacts/{contact['id']}").status_code == 204
    assert owner.get(f"contacts/{contact['id']}").status_code == 404


def test_activities_log_list_delete(app, crm, api):
    owner = api("owner")
    company = owner.post("companies", {"name": unique("Timeline Co ")}).get_json()
    contact = owner.post("contacts", {"first_name": "Tim", "company_id": company["id"]}).get_json()
    resp = owner.post(
        "activities",
        {
            "kind": "call",
            "subject": "Intro",
            "contact_id": contact["id"],
            "meta": {"duration_min": 15, "direction": "out"},
        },
    )
    assert resp.status_code == 201, resp.get_json()
    call = resp.get_json()
    assert call["contact_id"] == contact["id"] and call["company_id"] == company["id"]
    assert call["meta"] == {"duration_min": 15, "direction": "out"}
    note = owner.post(
        "activities",
        {
            "kind": "note",
            "body": "<p>Hi <script>alert(1)</script><b>there</b></p>",
            "company_id": company["id"],
        },
    ).get_json()
    assert "<script" not in note["body"] and "<b>there</b>" in note["body"]
    assert note["body_text"].startswith("Hi") and "there" in note["body_text"]

    on_company = owner.get(f"activities?company_id={company['id']}").get_json()["data"]
    assert {note["id"], call["id"]} <= {e["id"] for e in on_company}
    on_contact = owner.get(f"activities?contact_id={contact['id']}&kind=call").get_json()["data"]
    assert [e["id"] for e in on_contact] == [call["id"]]
    assert owner.get(f"activities/{call['id']}").get_json() == call

    resp = owner.patch(f"activities/{call['id']}", {"subject": "x"})
    assert resp.status_code == 405 and error_of(resp)["code"] == "method_not_allowed"
    assert owner.delete(f"activities/{call['id']}").status_code == 204
    assert owner.get(f"activities/{call['id']}").status_code == 404
    # A stage change is history: 409.
    stage = next(e for e in on_company if e["kind"] == "stage_change")
    resp = owner.delete(f"activities/{stage['id']}")
    assert resp.status_code == 409 and error_of(resp)["code"] == "conflict"
    # A timeline needs its record.
    resp = owner.get("activities")
    assert resp.status_code == 422 and "company_id" in error_of(resp)["fields"]


def test_tasks_crud(app, crm, api):
    owner = api("owner")
    contact = owner.post("contacts", {"first_name": unique("Task ")}).get_json()
    resp = owner.post(
        "tasks",
        {
            "title": "Call back",
            "due_at": "2031-01-02T09:00:00Z",
            "contact_id": contact["id"],
            "notes": "<i>x</i>",
        },
    )
    assert resp.status_code == 201, resp.get_json()
    task = resp.get_json()
    assert task["assignee_id"] == crm.people["owner"][0] and task["contact_id"] == contact["id"]
    assert task["due_at"].startswith("2031-01-02T09:00") and task["done"] is False
    assert task["id"] in [t["id"] for t in owner.get("tasks?limit=200").get_json()["data"]]

    done = owner.patch(f"tasks/{task['id']}", {"done": True, "title": "Called back"}).get_json()
    assert done["done"] is True and done["done_at"] and done["title"] == "Called back"
    assert task["id"] not in [t["id"] for t in owner.get("tasks?limit=200").get_json()["data"]]
    assert task["id"] in [t["id"] for t in owner.get("tasks?status=done&limit=200").get_json()["data"]]
    resp = owner.patch(f"tasks/{task['id']}", {"contact_id": 1})
    assert resp.status_code == 422 and "contact_id" in error_of(resp)["fields"]
    resp = owner.patch(f"tasks/{task['id']}", {"reminder_at": "2031-02-01T00:00:00Z"})
    assert resp.status_code == 422 and "reminder_at" in error_of(resp)["fields"]
    assert owner.delete(f"tasks/{task['id']}").status_code == 204
    assert owner.get(f"tasks/{task['id']}").status_code == 404


def test_validation_errors_are_json_and_write_nothing(app, crm, api):
    owner = api("owner")
    owner.get("companies")  # the token's use is noted (once a minute): not part of what follows
    before = db_state(app, "public", crm.schema)
    cases = [
        (owner.post("companies", {"industry": "Tea"}), 422, {"name"}),
        (owner.post("companies", {"name": "x", "size": "huge"}), 422, {"size"}),
        (owner.post("companies", {"name": "x", "website": "javascript:alert(1)"}), 422, {"website"}),
        (owner.post("companies", {"name": "x", "id": 5, "nonsense": 1}), 422, {"id", "nonsense"}),
        (owner.post("companies", {"name": ["x"]}), 422, {"name"}),
        (owner.post("companies", {"name": "x", "owner_id": "12"}), 422, {"owner_id"}),
        (owner.post("companies", {"name": "x", "owner_id": 999999999}), 422, {"owner_id"}),
        (owner.post("contacts", {"email": "not-an-email", "first_name": "A"}), 422, {"email"}),
        (owner.post("contacts", {"job_title": "CEO"}), 422, {"first_name"}),
        (owner.post("tasks", {"title": "t", "due_at": "tomorrow"}), 422, {"due_at"}),
        (owner.post("companies", [1, 2]), 400, set()),
        (owner.call("POST", "companies", data="{not json", content_type="application/json"), 400, set()),
        (
            owner.call("POST", "companies", data="name=x", content_type="application/x-www-form-urlencoded"),
            415,
            set(),
        ),
        (owner.get("companies?created_at__from=yesterday"), 400, set()),
    ]
    for resp, status, fields in cases:
        assert resp.status_code == status, (resp.status_code, resp.get_json())
        err = error_of(resp)
        assert set(err["fields"]) == fields, err
        assert err["message"]
    assert "Name is required." in error_of(cases[0][0])["message"]
    assert db_state(app, "public", crm.schema) == before


def test_unknown_api_path_and_method_are_json(app, crm, api):
    owner = api("owner")
    for resp, status in (
        (owner.get("nosuch"), 404),
        (owner.call("PUT", "companies"), 405),
        (app.test_client().get("/api/v1/"), 404),
    ):
        assert resp.status_code == status
        assert error_of(resp)["code"] in ("not_found", "method_not_allowed")


def test_script_in_text_fields_comes_back_as_inert_json(app, crm, api, login):
    owner = api("owner")
    script = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    resp = owner.post("companies", {"name": script, "industry": script, "tags": [script[:40]]})
    assert resp.status_code == 201
    raw = resp.get_data(as_text=True)
    assert "<script" not in raw and "<img" not in raw  # escaped as \u003c in the JSON text
    assert resp.mimetype == "application/json" and resp.headers["X-Content-Type-Options"] == "nosniff"
    company = json.loads(raw)
    assert company["name"] == script and company["industry"] == script  # the text itself, unchanged
    listed = owner.get(f"companies?name={script[:20]}").get_data(as_text=True)
    assert "<script" not in listed and json.loads(listed)["data"][0]["name"] == script
    # The page shows it as text too.
    page = login("owner").get(f"/{crm.slug}/customers/companies/{company['id']}").get_data(as_text=True)
    assert "<script>alert" not in page and "&lt;script&gt;" in page
