"""One delete path: a company or contact deleted on its page, through the API or in a bulk delete goes
the same way (services.delete_records): what was about it alone goes with it, what is shared stays
(unlinked), it leaves the search, and the audit log says the same; bulk delete does it set-based."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select, text

from tests.factories import unique
from tests.tenants.api.conftest import Api, make_token
from tests.tenants.customers.conftest import in_tenant, viewer_of


def _world(app, crm) -> dict:
    """A company with a contact, and around them everything a delete has to deal with."""
    from saas.extensions import db
    from tenants.customers import services, tasks, timeline
    from tenants.customers.extra_models import RuleTask
    from tenants.customers.models import Task

    name = unique("Gone Co ")
    with in_tenant(app, crm):
        owner = viewer_of(crm, "owner")
        company = services.create_company(owner, {"name": name, "phones": ["+66 2 555 0101"]})
        services.change_stage(owner, "company", company.id, "prospect")
        contact = services.create_contact(
            owner,
            {
                "first_name": unique("Gone "),
                "email": f"{unique('gone')}@example.com",
                "company_id": company.id,
            },
        )
        services.change_stage(owner, "contact", contact.id, "customer")
        world = {
            "name": name,
            "company": company.id,
            "contact": contact.id,
            "contact_name": contact.full_name,
        }
    with in_tenant(app, crm):
        timeline.log_activity(owner, "company", world["company"], "note", body="About the company")
        timeline.log_activity(owner, "contact", world["contact"], "call", subject="With both")  # shared
        timeline.log_activity(owner, "contact", world["contact"], "note", body="About the contact")
        tasks.create_task(owner, {"title": "Company task"}, company_id=world["company"])
        tasks.create_task(owner, {"title": "Contact task"}, contact_id=world["contact"])
        task = Task(title="Get back in touch", company_id=world["company"])  # as the reminder rule makes
        db.session.add(task)
        db.session.flush()
        db.session.add(RuleTask(task_id=task.id, company_id=world["company"]))
        db.session.commit()
    return world


def _outcome(app, crm, world: dict, gone: str) -> dict:
    """What is left of a world after `gone` ("company" or "contact") was deleted, with ids made relative."""
    from saas.extensions import db
    from saas.tenancy import qualified
    from tenants.admin.models import AuditEvent
    from tenants.customers import search
    from tenants.customers.models import Activity, Company, Contact, LifecycleChange, Task

    def company_of(value):  # noqa: ANN001, ANN202 - ids of companies and contacts may be equal numbers
        return None if value is None else "company" if value == world["company"] else value

    def contact_of(value):  # noqa: ANN001, ANN202
        return None if value is None else "contact" if value == world["contact"] else value

    with in_tenant(app, crm):
        owner = viewer_of(crm, "owner")
        acts = db.session.execute(
            select(Activity.kind, Activity.company_id, Activity.contact_id).where(
                (Activity.company_id == world["company"]) | (Activity.contact_id == world["contact"])
            )
        ).all()
        todo = db.session.execute(
            select(Task.title, Task.company_id, Task.contact_id).where(
                (Task.company_id == world["company"]) | (Task.contact_id == world["contact"])
            )
        ).all()
        rule_tasks = db.session.scalar(
            text(f"select count(*) from {qualified('rule_tasks')} where company_id = :id"),
            {"id": world["company"]},
        )
        history = db.session.execute(
            select(LifecycleChange.record_type, LifecycleChange.to_stage).where(
                ((LifecycleChange.record_type == "company") & (LifecycleChange.record_id == world["company"]))
                | (
                    (LifecycleChange.record_type == "contact")
                    & (LifecycleChange.record_id == world["contact"])
                )
            )
        ).all()
        company = db.session.get(Company, world["company"])
        contact = db.session.get(Contact, world["contact"])
        found = search.search(owner, world["name"])
        by_contact = search.search(owner, world["contact_name"])
        gone_id = world[gone]
        entity = "companies" if gone == "company" else "contacts"
        audit = db.session.execute(
            select(AuditEvent.action, AuditEvent.summary, AuditEvent.changes)
            .where(AuditEvent.entity == entity, AuditEvent.entity_id == str(gone_id))
            .where(AuditEvent.action.in_(("delete", "delete_related")))
            .order_by(AuditEvent.action)
        ).all()
        return {
            "company": None if company is None else "company",
            "contact": None if contact is None else ("contact", company_of(contact.company_id)),
            "activities": sorted((k, company_of(a), contact_of(b)) for k, a, b in acts),
            "tasks": sorted((t, company_of(a), contact_of(b)) for t, a, b in todo),
            "rule_tasks": rule_tasks,
            "history": sorted(history),
            "search_companies": [company_of(h.id) for h in found.companies],
            "search_contacts": [contact_of(h.id) for h in by_contact.contacts],
            "audit": [
                (action, summary, sorted(changes)) if action == "delete" else (action, summary)
                for action, summary, changes in audit
            ],
        }


def _delete(app, crm, how: str, record_type: str, record_id: int) -> None:
    from tenants.customers import bulk, services

    if how == "page":
        client = app.test_client()
        client.sign_in(crm.email("owner"))
        kind = "companies" if record_type == "company" else "contacts"
        assert client.form(f"/{crm.slug}/customers/{kind}/{record_id}/delete").status_code == 302
    elif how == "api":
        api = Api(app.test_client(), crm.slug, make_token(app, crm))
        kind = "companies" if record_type == "company" else "contacts"
        assert api.delete(f"{kind}/{record_id}").status_code == 204
    elif how == "service":
        with in_tenant(app, crm):
            (services.delete_company if record_type == "company" else services.delete_contact)(
                viewer_of(crm, "owner"), record_id
            )
    else:
        with in_tenant(app, crm):
            assert bulk.run(viewer_of(crm, "owner"), record_type, "delete", [record_id]) is not None


@pytest.mark.parametrize("record_type", ["company", "contact"])
def test_single_api_and_bulk_delete_do_the_same(app, crm, record_type):
    from tests.factories import CsrfClient

    app.test_client_class = CsrfClient
    outcomes = {}
    for how in ("service", "page", "api", "bulk"):
        world = _world(app, crm)
        _delete(app, crm, how, record_type, world[record_type])
        outcomes[how] = _outcome(app, crm, world, record_type)
    expected = outcomes["service"]
    for how, outcome in outcomes.items():
        assert outcome == expected, how
    # And what that is: the record is gone with what was about it alone, out of the search and logged.
    # Entries and tasks logged with both stay with the one that is left (unlinked from the gone one).
    if record_type == "company":
        assert expected["company"] is None and expected["contact"][1] is None  # the contact stays, unlinked
        assert expected["activities"] == [
            ("call", None, "contact"),
            ("note", None, "contact"),
            ("stage_change", None, "contact"),
            ("stage_change", None, "contact"),
        ]
        assert expected["tasks"] == [("Contact task", None, "contact")] and expected["rule_tasks"] == 0
        assert expected["history"] == [("contact", "customer"), ("contact", "lead")]
        assert expected["search_companies"] == [] and expected["search_contacts"] == ["contact"]
        summary = "3 timeline entries, 2 tasks, 2 stage changes"  # note + 2 stage changes; task + rule's
    else:
        assert expected["contact"] is None and expected["company"] is not None
        assert expected["activities"] == [
            ("call", "company", None),
            ("note", "company", None),
            ("note", "company", None),
            ("stage_change", "company", None),
            ("stage_change", "company", None),
        ]
        assert expected["tasks"] == [
            ("Company task", "company", None),
            ("Contact task", "company", None),  # a contact's task carries its company too: it stays
            ("Get back in touch", "company", None),
        ]
        assert expected["rule_tasks"] == 1
        assert expected["history"] == [("company", "lead"), ("company", "prospect")]
        assert expected["search_contacts"] == [] and expected["search_companies"] == ["company"]
        summary = "2 timeline entries, 0 tasks, 2 stage changes"  # its 2 stage-change entries
    assert [a[0] for a in expected["audit"]] == ["delete", "delete_related"]
    assert expected["audit"][1] == ("delete_related", summary)
    assert "name" in expected["audit"][0][2] or "full_name" in expected["audit"][0][2]


def test_bulk_delete_is_set_based_and_undo_puts_everything_back(app, crm):
    """Statements do not grow with the number of records; undo restores the rule's marks as well."""
    from saas.extensions import db
    from tenants.customers import bulk
    from tenants.customers.extra_models import RuleTask

    def statements(worlds: list[dict]) -> int:
        count = 0

        def tick(*_args) -> None:  # noqa: ANN002
            nonlocal count
            count += 1

        with in_tenant(app, crm):
            event.listen(db.engine, "before_cursor_execute", tick)
            try:
                bulk.run(viewer_of(crm, "owner"), "company", "delete", [w["company"] for w in worlds])
            finally:
                event.remove(db.engine, "before_cursor_execute", tick)
        return count

    few = [_world(app, crm) for _ in range(2)]
    many = [_world(app, crm) for _ in range(12)]
    assert statements(few) == statements(many)

    with in_tenant(app, crm):
        batch = bulk.last_batch(viewer_of(crm, "owner"), "company")
        bulk.undo(viewer_of(crm, "owner"), batch.id)
    with in_tenant(app, crm):
        back = db.session.scalars(
            select(RuleTask.company_id).where(RuleTask.company_id.in_([w["company"] for w in many]))
        )
        assert sorted(back) == sorted(w["company"] for w in many)
