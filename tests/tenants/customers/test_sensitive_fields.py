"""Sensitive custom fields: encrypted at rest, shown decrypted, found by exact value through a blind index.

Every path that writes custom values (the forms, the API) goes through tenants.customers.fields, so
each is checked against the raw rows: the plaintext must not be in the database at all.
"""

from __future__ import annotations

import html
import json
import re

import pytest
from cryptography.fernet import Fernet

from tests.factories import field_errors, sql_value, unique
from tests.tenants.api.conftest import Api, make_token
from tests.tenants.customers.conftest import in_tenant

NATIONAL_ID = "AB 123 456 C"


@pytest.fixture(scope="module")
def fields(app, crm):
    """Sensitive fields on contacts: a text (national ID) and a number (salary); and a plain one."""
    from tenants.customers import fields as custom_fields

    with in_tenant(app, crm):
        custom_fields.create_field("contact", "National ID", "text", [], "national_id", sensitive=True)
        custom_fields.create_field("contact", "Salary", "number", [], "salary", sensitive=True)
        custom_fields.create_field("contact", "Nickname", "text", [], "nickname")
    return crm


def _raw_custom(app, info, contact_id: int) -> str:
    return sql_value(app, f'select custom::text from "{info.schema}".contacts where id = :id', id=contact_id)


def _new_contact(client, info, **custom: str) -> int:  # noqa: ANN001
    data = {
        "first_name": unique("Somchai "),
        "last_name": "Jaidee",
        "email": f"{unique('s')}@example.com",
        "owner_id": str(info.people["owner"][0]),
        "lifecycle_stage": "lead",
        **{f"cf_{k}": v for k, v in custom.items()},
    }
    resp = client.form(f"/{info.slug}/customers/contacts/new", data)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    return int(re.search(r"/contacts/(\d+)$", resp.headers["Location"]).group(1))


def test_admins_mark_a_field_sensitive_when_they_define_it(crm, login):
    client = login("owner")
    base = f"/{crm.slug}/customers"
    resp = client.form(
        f"{base}/fields/new",
        {"record_type": "company", "label": "Tax number", "field_type": "text", "sensitive": "y"},
    )
    assert resp.status_code == 302
    bad = client.form(
        f"{base}/fields/new",
        {
            "record_type": "company",
            "label": "Secret tier",
            "field_type": "select",
            "options": "A\nB",
            "sensitive": "y",
        },
    )
    assert bad.status_code == 422
    assert field_errors(bad.get_data(as_text=True), "sensitive") == [
        "Only text, number and date fields can be sensitive."
    ]
    page = client.get(f"{base}/fields").get_data(as_text=True)
    row = page[page.index("Tax number") : page.index("tax_number")]
    assert 'data-testid="sensitive-badge"' in row
    assert page.count('data-testid="sensitive-badge"') == 1  # "Secret tier" was not made


def test_values_are_encrypted_in_the_database_and_decrypted_on_the_page(app, fields, login):
    client = login("owner")
    contact_id = _new_contact(client, fields, national_id=NATIONAL_ID, salary="52,000", nickname="Chai")
    raw = _raw_custom(app, fields, contact_id)
    assert NATIONAL_ID not in raw and "AB123456C" not in raw.upper() and "52000" not in raw
    assert '"nickname": "Chai"' in raw  # a field that is not sensitive stays as it was
    token = sql_value(
        app,
        f"select custom->'national_id'->>'enc' from \"{fields.schema}\".contacts where id = :id",
        id=contact_id,
    )
    assert token.startswith("gAAAA")  # a Fernet token
    # Nor is it in the audit log, which records the record's before/after.
    audit = sql_value(app, f"select string_agg(changes::text, ' ') from \"{fields.schema}\".audit_log")
    assert NATIONAL_ID not in audit and "52000" not in audit

    page = client.get(f"/{fields.slug}/customers/contacts/{contact_id}").get_data(as_text=True)
    assert NATIONAL_ID in page and "52,000" in page and token not in page
    form = client.get(f"/{fields.slug}/customers/contacts/{contact_id}/edit").get_data(as_text=True)
    assert f'value="{NATIONAL_ID}"' in form and 'value="52000"' in form

    # Saving the form unchanged keeps the stored token: nothing is re-encrypted for no reason.
    data = {
        "first_name": "Somchai",
        "last_name": "Jaidee",
        "email": f"{unique('s')}@example.com",
        "owner_id": str(fields.people["owner"][0]),
        "lifecycle_stage": "lead",
        "cf_national_id": NATIONAL_ID,
        "cf_salary": "52000",
        "cf_nickname": "Chai",
    }
    assert client.form(f"/{fields.slug}/customers/contacts/{contact_id}/edit", data).status_code == 302
    assert token in _raw_custom(app, fields, contact_id)
    data["cf_national_id"] = "ZZ 999"
    assert client.form(f"/{fields.slug}/customers/contacts/{contact_id}/edit", data).status_code == 302
    raw = _raw_custom(app, fields, contact_id)
    assert token not in raw and "ZZ 999" not in raw
    assert "ZZ 999" in client.get(f"/{fields.slug}/customers/contacts/{contact_id}").get_data(as_text=True)
    history = client.get(f"/{fields.slug}/admin/audit").get_data(as_text=True)
    assert "(encrypted)" in history and "gAAAA" not in history


def test_exact_value_filter_finds_the_record_a_partial_value_does_not(app, fields, login):
    client = login("owner")
    phone_id = _new_contact(client, fields, national_id="+66 81 234 5678", salary="1,000")
    other_id = _new_contact(client, fields, national_id="66 81 234 0000")
    base = f"/{fields.slug}/customers/contacts"

    def found(query: str) -> set[int]:
        html = client.get(f"{base}?{query}").get_data(as_text=True)
        return {int(i) for i in re.findall(r"/customers/contacts/(\d+)\"", html)}

    assert phone_id in found("cf_national_id=%2B66+81+234+5678")
    # Exact value up to case, spaces and punctuation: the form a phone number is typed in varies.
    assert phone_id in found("cf_national_id=66812345678")
    assert phone_id not in found("cf_national_id=812345678")  # a part of it finds nothing
    assert phone_id not in found("cf_national_id=%2B66+81")
    assert other_id not in found("cf_national_id=66812345678")
    # A number is matched as the field cleans it: 1000 finds "1,000".
    assert phone_id in found("cf_salary=1000") and other_id not in found("cf_salary=1000")
    # "is" is the only operator, and the list cannot be sorted on it.
    assert phone_id in found("cf_national_id__contains=812")  # ignored: not an operator of this field
    page = client.get(base).get_data(as_text=True)
    choices = json.loads(html.unescape(re.search(r"data-fields='([^']*)'", page).group(1)))
    offered = {c["key"]: [op for op, _label in c["ops"]] for c in choices}
    assert offered["cf_national_id"] == ["eq"] and "contains" in offered["cf_nickname"]
    sort_box = page[page.index('id="q-sort"') : page.index("</select>", page.index('id="q-sort"'))]
    assert 'value="cf_nickname"' in sort_box and 'value="cf_national_id"' not in sort_box


def test_the_api_writes_encrypted_reads_decrypted_and_filters_by_exact_value(app, fields):
    from tests.factories import CsrfClient

    app.test_client_class = CsrfClient
    api = Api(app.test_client(), fields.slug, make_token(app, fields, "owner"))
    resp = api.post(
        "contacts",
        {"first_name": "Api", "email": f"{unique('api')}@example.com", "custom": {"national_id": "API-4242"}},
    )
    assert resp.status_code == 201, resp.get_json()
    contact_id = resp.get_json()["id"]
    assert resp.get_json()["custom"] == {"national_id": "API-4242"}
    assert "4242" not in _raw_custom(app, fields, contact_id)
    assert api.get(f"contacts/{contact_id}").get_json()["custom"]["national_id"] == "API-4242"
    listed = api.get("contacts?cf_national_id=api4242").get_json()
    assert [c["id"] for c in listed["data"]] == [contact_id]
    assert api.get("contacts?cf_national_id=4242").get_json()["data"] == []
    resp = api.patch(f"contacts/{contact_id}", {"custom": {"national_id": "API-5555"}})
    assert resp.status_code == 200 and resp.get_json()["custom"]["national_id"] == "API-5555"
    assert "5555" not in _raw_custom(app, fields, contact_id)


def test_export_decrypts_for_those_allowed_to_export(app, fields, login):
    client = login("owner")
    contact_id = _new_contact(client, fields, national_id="EXP 777")
    csv_text = client.get(
        f"/{fields.slug}/customers/contacts/export?format=csv&cf_national_id=exp777"
    ).get_data(as_text=True)
    assert "National ID" in csv_text.splitlines()[0] and "EXP 777" in csv_text
    assert str(contact_id) in csv_text and len(csv_text.strip().splitlines()) == 2
    assert login("sales").get(f"/{fields.slug}/customers/contacts/export?format=csv").status_code == 403


def test_a_value_no_key_reads_is_a_clear_error_never_garbage(app, fields, login, monkeypatch):
    client = login("owner")
    contact_id = _new_contact(client, fields, national_id="LOST 1")
    # Another key than the one the value was made with:
    monkeypatch.setitem(app.config, "CRM_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    page = client.get(f"/{fields.slug}/customers/contacts/{contact_id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "(cannot be decrypted)" in html and "gAAAA" not in html
    form = client.get(f"/{fields.slug}/customers/contacts/{contact_id}/edit")
    assert form.status_code == 500
    assert "an encryption key is missing or wrong" in form.get_data(as_text=True)
    api = Api(app.test_client(), fields.slug, make_token(app, fields, "owner"))
    resp = api.get(f"contacts/{contact_id}")
    assert resp.status_code == 500 and "encryption key" in resp.get_json()["error"]["message"]
