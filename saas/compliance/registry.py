"""Where modules plug into personal-data export and erasure, so this package never has to change.

A module registers, from its own package, one exporter and one eraser:

    from saas.compliance.registry import register

    def export(subject):    # -> {"json": {...}, "files": [(name, bytes | key | (area, key))]} or None
        ...
    def erase(subject):     # -> {"what": count, ...} (counts, never values) or None
        ...
    register("deals", export, erase)

Both are called for every subject of every kind ("contact", "portal_user", "staff_user") inside the
bound tenant; a module that holds nothing about that kind of person returns None. A file is bytes,
or a key of the object store (a plain key is in the "attachments" area, else give (area, key)).
Erasers run in one transaction, in registration order, and must not commit: the caller commits
once every module has erased, so a failure anywhere leaves the data as it was.

A kind of person is known once a resolver for it is registered (`register_kind`): resolver(id) ->
Subject or None when there is no such person in the bound tenant. Contacts and staff users are known
from the start; the portal module registers "portal_user" when it comes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

KINDS = ("contact", "portal_user", "staff_user")


@dataclass(frozen=True)
class Subject:
    kind: str  # contact / portal_user / staff_user
    id: int
    email: str | None = None
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or self.email or f"#{self.id}"


Exporter = Callable[[Subject], dict[str, Any] | None]
Eraser = Callable[[Subject], dict[str, Any] | None]
Resolver = Callable[[int], Subject | None]


@dataclass(frozen=True)
class Module:
    name: str
    exporter: Exporter
    eraser: Eraser


_modules: dict[str, Module] = {}
_resolvers: dict[str, Resolver] = {}


def register(name: str, exporter: Exporter, eraser: Eraser) -> None:
    """Add (or replace) a module's exporter and eraser; `name` names its part of an export."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"a module name is letters, digits and _: {name!r}")
    _modules[name] = Module(name, exporter, eraser)


def unregister(name: str) -> None:
    _modules.pop(name, None)


def modules() -> list[Module]:
    return list(_modules.values())


def register_kind(kind: str, resolver: Resolver) -> None:
    if kind not in KINDS:
        raise ValueError(f"a subject is one of {', '.join(KINDS)}, not {kind!r}")
    _resolvers[kind] = resolver


def known_kinds() -> list[str]:
    return [k for k in KINDS if k in _resolvers]


def resolve(kind: str, subject_id: int) -> Subject | None:
    """The person of this kind and id in the bound tenant, or None (unknown kind, no such person)."""
    resolver = _resolvers.get(kind)
    return resolver(subject_id) if resolver else None


def export_all(subject: Subject) -> dict[str, dict[str, Any]]:
    """Every module's export of this person: module name -> {"json": ..., "files": [...]}."""
    out: dict[str, dict[str, Any]] = {}
    for module in modules():
        part = module.exporter(subject)
        if part:
            out[module.name] = {"json": part.get("json") or {}, "files": list(part.get("files") or [])}
    return out


def erase_all(subject: Subject) -> dict[str, dict[str, Any]]:
    """Every module's erasure of this person (no commit): module name -> its summary of counts."""
    out: dict[str, dict[str, Any]] = {}
    for module in modules():
        summary = module.eraser(subject)
        if summary:
            out[module.name] = dict(summary)
    return out
