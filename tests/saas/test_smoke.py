"""The landing and sign-up pages, and a sign-up all the way to the dashboard."""

from __future__ import annotations

from tests.factories import PASSWORD, unique


def test_landing_and_healthz(client):
    assert client.get("/").status_code == 200
    health = client.get("/healthz").get_json()
    assert health["status"] == "ok"
    assert health["database"]["ok"] and health["redis"]["ok"]


def test_signup_lands_on_dashboard(client):
    slug = unique("acme")
    resp = client.form(
        "/signup",
        {
            "company": "Acme Ltd",
            "slug": slug,
            "name": "Ann",
            "email": f"{slug}@example.com",
            "password": PASSWORD,
        },
    )
    assert resp.status_code == 302
    assert resp.headers["Location"] == f"/{slug}/"
    page = client.get(f"/{slug}/")
    assert page.status_code == 200
    assert "Acme Ltd" in page.get_data(as_text=True)
