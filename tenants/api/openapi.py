"""The OpenAPI 3.1 document of the API, made from the same description as the routes (RESOURCES)."""

from __future__ import annotations

import re
from typing import Any

from tenants.api.errors import CODES, MESSAGES
from tenants.api.resources import Resource, routes

PREFIX = "/api/v1"
ERROR_STATUSES = {
    "list": (400, 401, 403, 404, 429),
    "get": (401, 403, 404, 429),
    "create": (400, 401, 403, 404, 409, 415, 422, 429),
    "update": (400, 401, 403, 404, 409, 415, 422, 429),
    "delete": (401, 403, 404, 409, 429),
}
SUMMARIES = {
    "list": "List {name}",
    "get": "Read one of {name}",
    "create": "Create one of {name}",
    "update": "Change one of {name} (only the fields sent)",
    "delete": "Delete one of {name}",
}


def openapi_path(rule: str) -> str:
    """A Flask rule below /api/v1 as an OpenAPI path: <int:id> -> {id}."""
    return PREFIX + re.sub(r"<(?:[^:<>]+:)?(\w+)>", r"{\1}", rule)


def _schemas(r: Resource) -> dict[str, Any]:
    read = {}
    for p in r.props:
        schema = dict(p.schema)
        if p.description:
            schema["description"] = p.description
        if p.write == "no":
            schema["readOnly"] = True
        read[p.name] = schema
    out: dict[str, Any] = {
        r.title: {"type": "object", "description": r.description, "properties": read},
    }
    for op, suffix in (("create", "Create"), ("update", "Update")):
        if op not in r.operations:
            continue
        props = r.writable(op)
        schema: dict[str, Any] = {
            "type": "object",
            "additionalProperties": False,
            "properties": {k: read[k] for k in props},
        }
        required = [k for k, p in props.items() if p.required and op == "create"]
        if required:
            schema["required"] = required
        out[r.title + suffix] = schema
    return out


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation(r: Resource, op: str) -> dict[str, Any]:
    module, action = r.permissions[op]
    params: list[dict[str, Any]] = [{"$ref": "#/components/parameters/slug"}]
    if op in ("get", "update", "delete"):
        params.append({"$ref": "#/components/parameters/id"})
    if op == "list":
        params += [
            {
                "name": p.name,
                "in": "query",
                "required": False,
                "schema": p.schema,
                "description": str(p.description),
            }
            for p in r.list_params()
        ]
    responses: dict[str, Any] = {
        str(s): {"$ref": f"#/components/responses/{CODES[s]}"} for s in ERROR_STATUSES[op]
    }
    if op == "list":
        page = {
            "type": "object",
            "required": ["data", "next_cursor"],
            "properties": {
                "data": {"type": "array", "items": _ref(r.title)},
                "next_cursor": {
                    "type": ["string", "null"],
                    "description": "Pass as ?after= for the next page.",
                },
            },
        }
        responses["200"] = {
            "description": "A page of records, in the order asked for.",
            "content": _json(page),
        }
    elif op == "delete":
        responses["204"] = {"description": "Deleted."}
    else:
        status = "201" if op == "create" else "200"
        responses[status] = {"description": r.title, "content": _json(_ref(r.title))}
    operation: dict[str, Any] = {
        "operationId": f"{r.name}_{op}",
        "tags": [r.name],
        "summary": SUMMARIES[op].format(name=r.name),
        "description": f"Needs the permission {module}: {action}. Record visibility (own / team / all) applies.",
        "parameters": params,
        "responses": responses,
    }
    if op in ("create", "update"):
        suffix = "Create" if op == "create" else "Update"
        operation["requestBody"] = {"required": True, "content": _json(_ref(r.title + suffix))}
    return operation


def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for r, op, rule, method in routes():
        paths.setdefault(openapi_path(rule), {})[method.lower()] = _operation(r, op)
        schemas.update(_schemas(r))
    paths[PREFIX + "/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {"description": "The OpenAPI document.", "content": _json({"type": "object"})}
            },
        }
    }
    schemas["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["status", "code", "message", "fields"],
                "properties": {
                    "status": {"type": "integer"},
                    "code": {"type": "string", "enum": sorted(set(CODES.values()))},
                    "message": {"type": "string"},
                    "fields": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                        "description": "Field name -> what is wrong with it.",
                    },
                },
            }
        },
    }
    responses = {
        code: {"description": str(MESSAGES[status]), "content": _json(_ref("Error"))}
        for status, code in CODES.items()
    }
    responses["rate_limited"]["headers"] = {
        "Retry-After": {"description": "Seconds until the limit resets.", "schema": {"type": "integer"}}
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "CRM API",
            "version": "1",
            "description": (
                "Companies, contacts, timeline entries and tasks of one workspace, whose slug is in the path. "
                "Authenticate with a personal API token (made on the workspace's API tokens page) as "
                "Authorization: Bearer <token>; the token's user's role and record visibility apply. "
                "Lists take the same filters as the pages (field, field__op; custom fields as cf_<key>), "
                "sort=[-]field, limit, and "
                "after=<next_cursor> for the next page."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A personal API token (crm_...).",
                }
            },
            "parameters": {
                "slug": {
                    "name": "slug",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                    "description": "The workspace.",
                },
                "id": {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}},
            },
            "schemas": schemas,
            "responses": responses,
        },
    }
