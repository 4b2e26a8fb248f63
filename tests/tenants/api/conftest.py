"""Fixtures of the API tests: the Customer 360 workspace fixtures, tokens per role, a JSON client."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.factories import TenantInfo
from tests.tenants.customers.conftest import _quick_hasher, crm, in_tenant, login, other  # noqa: F401


def make_token(app, info: TenantInfo, role: str = "owner", days: int | None = 90) -> str:
    """A fresh API token of `role`'s member of the workspace; the token itself."""
    from tenants.api import tokens

    with in_tenant(app, info):
        _row, raw = tokens.create(info.people[role][0], f"test {role}", days)
    return raw


class Api:
    """Calls of the API with one token: api.get("companies"), api.post("companies", {...})."""

    def __init__(self, client: Any, slug: str, token: str | None) -> None:
        self.client, self.slug, self.token = client, slug, token

    def url(self, path: str) -> str:
        return f"/api/v1/{self.slug}/{path}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any):  # noqa: ANN201
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs["content_type"] = "application/json"
        return self.client.open(self.url(path), method=method, headers=self.headers(), **kwargs)

    def get(self, path: str, **kwargs: Any):  # noqa: ANN201
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any):  # noqa: ANN201
        return self.call("POST", path, body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any):  # noqa: ANN201
        return self.call("PATCH", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any):  # noqa: ANN201
        return self.call("DELETE", path, **kwargs)


@pytest.fixture(scope="module")
def api(app, crm):  # noqa: F811
    """role -> an Api with a token of that role's member of `crm` (one token per role and module)."""
    cache: dict[tuple[str, str], Api] = {}

    def get(role: str = "owner", info: TenantInfo | None = None) -> Api:
        info = info or crm
        key = (info.slug, role)
        if key not in cache:
            cache[key] = Api(app.test_client(), info.slug, make_token(app, info, role))
        return cache[key]

    return get


def error_of(resp) -> dict[str, Any]:  # noqa: ANN001
    body = resp.get_json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"status", "code", "message", "fields"}, body
    assert body["error"]["status"] == resp.status_code
    return body["error"]
