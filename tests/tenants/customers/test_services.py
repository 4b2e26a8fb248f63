"""The services: create, update, delete with clear refusals; lifecycle history; timeline; tasks; custom fields."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.tenants.customers.conftest import viewer_of


@pytest.fixture
def owner(bound, crm):
    with bound(crm):
        yield viewer_of(crm, "owner")


def _refusal(fn, *args, **kwargs):
    from tenants.customers.errors import CustomerError

    with pytest.raises(CustomerError) as err:
        fn(*args, **kwargs)
    return str(err.value), err.value.field


# Companies ------------------------------------------------------------------------------


def test_company_crud(owner):
    from saas.extensions import db
    from tenants.customers import services
    from tenants.customers.errors import NotFound
    from tenants.customers.models import Company

    company = services.create_company(
        owner,
        {
            "name": "  Acme Trading ",
            "website": "www.Acme.example",
            "phones": "+1 (555) 010-0100\n+1 (555) 010-0100\n02 123 4567 ext. 12",
            "tags": "VIP, vip, partner",
            "size": "11-50",
            "city": "Bangkok",
        },
    )
    assert company.name == "Acme Trading"
    assert (company.website, company.domain) == ("https://www.Acme.example", "acme.example")
    assert company.phones == ["+1 (555) 010-0100", "02 123 4567 ext. 12"]
    assert company.tags == ["VIP", "partner"]
    assert company.owner_id == owner.user_id and company.lifecycle_stage == "lead"
    services.update_company(owner, company.id, {"name": "Acme Ltd", "website": ""})
    db.session.expire_all()
    fresh = db.session.get(Company, company.id)
    assert (fresh.name, fresh.website, fresh.domain, fresh.city) == ("Acme Ltd", "", None, "Bangkok")
    services.delete_company(owner, company.id)
    with pytest.raises(NotFound):
        services.get_company(owner, company.id)


@pytest.mark.parametrize(
    ("data", "message", "field"),
    [
        ({"name": "   "}, "Name is required.", "name"),
        ({"name": "x" * 201}, "Name can be at most 200 characters long.", "name"),
        (
            {"name": "A", "website": "javascript:alert(1)"},
            "Enter a web address such as example.com.",
            "website",
        ),
        (
            {"name": "A", "website": "ftp://files.example"},
            "Enter a web address such as example.com.",
            "website",
        ),
        ({"name": "A", "website": "localhost"}, "Enter a web address such as example.com.", "website"),
        (
            {"name": "A", "phones": ["call me maybe"]},
            "call me maybe is not a phone number: use digits, spaces, + ( ) - . / and an extension.",
            "phones",
        ),
        ({"name": "A", "tags": ["t" * 41]}, "A tag can be at most 40 characters long.", "tags"),
        ({"name": "A", "size": "huge"}, "Choose a size from the list.", "size"),
        (
            {"name": "A", "lifecycle_stage": "vip"},
            "Choose a lifecycle stage from the list.",
            "lifecycle_stage",
        ),
        ({"name": "A", "owner_id": 99999999}, "Choose an owner from the list.", "owner_id"),
        ({"name": "A", "owner_id": "me"}, "Choose an owner from the list.", "owner_id"),
    ],
)
def test_company_refusals(owner, data, message, field):
    from saas.extensions import db
    from tenants.customers import services
    from tenants.customers.models import Company

    before = db.session.scalar(select(func.count()).select_from(Company))
    assert _refusal(services.create_company, owner, data) == (message, field)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Company)) == before


def test_owner_of_another_workspace_is_refused(owner, crm, other):
    from tenants.customers import services

    outsider = other.people["owner"][0]
    assert _refusal(services.create_company, owner, {"name": "A", "owner_id": outsider}) == (
        "Choose an owner from the list.",
        "owner_id",
    )


# Contacts -------------------------------------------------------------------------------


def test_contact_crud_and_names(owner):
    from tenants.customers import services

    company = services.create_company(owner, {"name": "陳氏貿易"})
    wei = services.create_contact(
        owner,
        {
            "first_name": "伟",
            "last_name": "张",
            "company": "陳氏貿易",
            "email": " Wei.Zhang@Example.COM ",
            "emails": "wei.zhang@example.com\nwei@home.example",
            "birthday": "1990-02-03",
            "interests": "Tea, <b>golf</b>",
        },
    )
    assert wei.full_name == "张伟" and wei.company_id == company.id
    assert wei.email == "wei.zhang@example.com" and wei.emails == ["wei@home.example"]
    assert wei.birthday == date(1990, 2, 3)
    somchai = services.create_contact(
        owner, {"first_name": "สมชาย", "last_name": "ใจดี", "company_id": company.id}
    )
    assert somchai.full_name == "สมชาย ใจดี"
    services.update_contact(owner, somchai.id, {"last_name": "", "company_id": None})
    assert (somchai.full_name, somchai.company_id) == ("สมชาย", None)
    services.delete_contact(owner, wei.id)
    assert [c.id for c in services.company_contacts(owner, company.id)] == []


@pytest.mark.parametrize(
    ("data", "message", "field"),
    [
        ({"first_name": " ", "last_name": ""}, "Enter a first or a last name.", "first_name"),
        ({"first_name": "A", "email": "not-an-email"}, "not-an-email is not an email address.", "email"),
        ({"first_name": "A", "emails": "ok@example.com\nbad@"}, "bad@ is not an email address.", "emails"),
        ({"first_name": "A", "birthday": "1990-13-01"}, "Enter the birthday as YYYY-MM-DD.", "birthday"),
        (
            {"first_name": "A", "birthday": date.today() + timedelta(days=1)},
            "That birthday cannot be right.",
            "birthday",
        ),
        ({"first_name": "A", "company": "No Such Company Anywhere"}, None, "company"),
        (
            {"first_name": "A", "consent_email": True, "consent_email_how": ""},
            "Say how consent was given (a web form, a call, a signed paper...).",
            "consent_email_how",
        ),
        ({"first_name": "A", "company_id": 99999999}, "Choose a company from the list.", "company"),
    ],
)
def test_contact_refusals(owner, data, message, field):
    from tenants.customers import services

    got, got_field = _refusal(services.create_contact, owner, data)
    assert got_field == field
    if message:
        assert got == message
    else:
        assert got == "No company is called No Such Company Anywhere. Add it first."


def test_two_companies_of_one_name_must_be_chosen_by_id(owner):
    from tenants.customers import services

    a = services.create_company(owner, {"name": "Twin Ltd"})
    services.create_company(owner, {"name": "twin ltd"})
    message, field = _refusal(services.create_contact, owner, {"first_name": "A", "company": "Twin Ltd"})
    assert field == "company" and message.startswith("Several companies are called Twin Ltd")
    assert services.create_contact(owner, {"first_name": "A", "company_id": a.id}).company_id == a.id


def test_consent_records_when_and_how(owner):
    from tenants.customers import services

    c = services.create_contact(
        owner, {"first_name": "Ann", "consent_email": True, "consent_email_how": "Web form"}
    )
    assert c.consent_email and c.consent_email_how == "Web form"
    given = c.consent_email_at
    assert given and abs(given - datetime.now(UTC)) < timedelta(minutes=1)
    assert c.consent_sms is False and c.consent_sms_at is None
    services.update_contact(
        owner, c.id, {"first_name": "Ann", "consent_email": True, "consent_email_how": "Web form"}
    )
    assert c.consent_email_at == given  # unchanged consent keeps its moment
    services.update_contact(
        owner, c.id, {"consent_email": False, "consent_email_how": "Unsubscribed by phone"}
    )
    assert c.consent_email is False and c.consent_email_at > given


# Lifecycle ------------------------------------------------------------------------------


def test_lifecycle_history_and_timeline(owner):
    from tenants.customers import services, timeline

    company = services.create_company(owner, {"name": "Stages Inc", "lifecycle_stage": "prospect"})
    services.update_company(owner, company.id, {"lifecycle_stage": "customer"})
    services.change_stage(owner, "company", company.id, "loyal")
    services.change_stage(owner, "company", company.id, "loyal")  # no change, no history
    history = services.stage_history("company", company.id)
    assert [(h.from_stage, h.to_stage) for h in history] == [
        ("customer", "loyal"),
        ("prospect", "customer"),
        (None, "prospect"),
    ]
    assert all(h.by_user_id == owner.user_id for h in history)
    entries = timeline.timeline(owner, "company", company.id).items
    assert [(a.kind, a.meta) for a in entries if a.kind == "stage_change"][:2] == [
        ("stage_change", {"from": "customer", "to": "loyal"}),
        ("stage_change", {"from": "prospect", "to": "customer"}),
    ]
    for bad in ("gold", None, ""):
        assert _refusal(services.change_stage, owner, "company", company.id, bad) == (
            "Choose a lifecycle stage from the list.",
            "lifecycle_stage",
        )
    services.update_company(
        owner, company.id, {"name": "Stages Inc.", "lifecycle_stage": ""}
    )  # blank: unchanged
    assert company.lifecycle_stage == "loyal"


# Timeline -------------------------------------------------------------------------------


def test_notes_calls_and_meetings(owner, crm):
    from tenants.customers import services, timeline
    from tenants.customers.errors import CustomerError

    company = services.create_company(owner, {"name": "Timeline Co"})
    anna = services.create_contact(owner, {"first_name": "Anna", "company_id": company.id})
    note = timeline.log_activity(
        owner,
        "company",
        company.id,
        "note",
        body='<p onclick="x()">Met <b>them</b><script>alert(1)</script></p>',
    )
    assert note.body == "<p>Met <b>them</b></p>"
    call = timeline.log_activity(
        owner,
        "contact",
        anna.id,
        "call",
        subject="Renewal <script>x</script>",
        body="Line 1\nLine 2",
        meta={"duration_min": "15", "direction": "in"},
        occurred_at=datetime.now(UTC) - timedelta(hours=1),
    )
    assert call.company_id == company.id and call.contact_id == anna.id  # on both timelines
    assert call.subject == "Renewal <script>x</script>"  # kept as typed; pages escape it
    assert call.body == "<p>Line 1<br>Line 2</p>" and call.meta == {"duration_min": 15, "direction": "in"}
    company_entries = [a.id for a in timeline.timeline(owner, "company", company.id).items]
    assert call.id in company_entries and note.id in company_entries
    assert [a.id for a in timeline.timeline(owner, "contact", anna.id).items if a.kind != "stage_change"] == [
        call.id
    ]
    assert timeline.last_contact("company", company.id) == call.occurred_at
    for kind, kwargs, message, field in [
        ("note", {"body": "<script>only script</script>"}, "Write the note.", "body"),
        ("call", {}, "Say what it was about.", "subject"),
        ("email", {"subject": "x"}, "Choose note, call or meeting.", "kind"),
        (
            "meeting",
            {"subject": "x", "meta": {"duration_min": "two"}},
            "Enter the duration in minutes.",
            "duration_min",
        ),
        (
            "meeting",
            {"subject": "x", "occurred_at": "1900-01-01T00:00:00"},
            "That date cannot be right.",
            "occurred_at",
        ),
    ]:
        assert _refusal(timeline.log_activity, owner, "company", company.id, kind, **kwargs) == (
            message,
            field,
        )
    stage_entry = next(
        a for a in timeline.timeline(owner, "company", company.id).items if a.kind == "stage_change"
    )
    with pytest.raises(CustomerError, match="Stage changes are history"):
        timeline.delete_activity(owner, stage_entry.id)
    sales = viewer_of(crm, "sales")
    with pytest.raises(Exception) as err:  # the sales person does not even see this company
        timeline.delete_activity(sales, note.id)
    assert type(err.value).__name__ == "NotFound"
    timeline.delete_activity(owner, note.id)


def test_timeline_pages(owner):
    from tenants.customers import services, timeline

    company = services.create_company(owner, {"name": "Busy Co"})
    same_moment = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)
    made = [
        timeline.log_activity(owner, "company", company.id, "note", body=f"n{i}", occurred_at=same_moment).id
        for i in range(7)
    ]
    seen: list[int] = []
    args: dict = {"limit": "3"}
    while True:
        page = timeline.timeline(owner, "company", company.id, args)
        seen += [a.id for a in page.items if a.kind == "note"]
        if not page.next_cursor:
            break
        args = {"limit": "3", "after": page.next_cursor}
    assert seen == sorted(made, reverse=True)


def test_deleting_records_keeps_what_belongs_to_others(owner):
    from saas.extensions import db
    from tenants.customers import services, tasks, timeline
    from tenants.customers.models import Activity, Contact, Task

    company = services.create_company(owner, {"name": "Going Away Ltd"})
    bob = services.create_contact(owner, {"first_name": "Bob", "company_id": company.id})
    only_company = timeline.log_activity(owner, "company", company.id, "note", body="about the company").id
    with_bob = timeline.log_activity(owner, "contact", bob.id, "call", subject="with Bob").id
    company_task = tasks.create_task(owner, {"title": "company task"}, company_id=company.id).id
    bob_task = tasks.create_task(owner, {"title": "Bob's task"}, contact_id=bob.id).id
    services.delete_company(owner, company.id)
    db.session.expire_all()
    assert db.session.get(Contact, bob.id).company_id is None
    assert db.session.get(Activity, only_company) is None and db.session.get(Task, company_task) is None
    assert db.session.get(Activity, with_bob).contact_id == bob.id
    assert db.session.get(Task, bob_task).contact_id == bob.id
    # Every write is in the audit log, the bulk deletes included.
    from tenants.admin.models import AuditEvent

    events = {
        (e.action, e.entity): e
        for e in db.session.scalars(select(AuditEvent).where(AuditEvent.entity_id == str(company.id)))
        if e.entity == "companies"
    }
    assert events[("insert", "companies")].changes["name"] == [None, "Going Away Ltd"]
    assert events[("delete", "companies")].changes["name"] == ["Going Away Ltd", None]
    assert (
        events[("delete_related", "companies")].summary == "2 timeline entries, 1 tasks, 1 stage changes"
    )  # the note, "stage set to lead"


# Tasks ----------------------------------------------------------------------------------


def test_tasks_and_my_tasks(owner, crm):
    from tenants.customers import services, tasks

    company = services.create_company(owner, {"name": "Task Co"})
    soon = datetime.now(UTC) + timedelta(days=1)
    late = datetime.now(UTC) - timedelta(days=1)
    t1 = tasks.create_task(owner, {"title": "Send quote", "due_at": soon}, company_id=company.id)
    t2 = tasks.create_task(owner, {"title": "Overdue call", "due_at": late}, company_id=company.id)
    t3 = tasks.create_task(owner, {"title": "Someday"})
    sales_id = crm.people["sales"][0]
    t4 = tasks.create_task(owner, {"title": "For sales", "assignee_id": sales_id}, company_id=company.id)
    assert tasks.open_counts("company", company.id) == (3, 1)
    mine = [t.id for t in tasks.my_tasks(owner, "open", {"limit": "200"}).items]
    assert mine.index(t2.id) < mine.index(t1.id) < mine.index(t3.id) and t4.id not in mine
    tasks.set_done(owner, t2.id)
    assert tasks.open_counts("company", company.id) == (2, 0)
    assert tasks.my_tasks(owner, "done").items[0].id == t2.id
    tasks.set_done(owner, t2.id, False)
    assert tasks.get_task(owner, t2.id).done_at is None
    # The sales person sees their own task, though not the company it is about.
    sales = viewer_of(crm, "sales")
    assert [t.id for t in tasks.my_tasks(sales).items] == [t4.id]
    assert tasks.get_task(sales, t4.id).id == t4.id
    with pytest.raises(LookupError):
        tasks.get_task(sales, t1.id)
    for data, message, field in [
        ({"title": " "}, "Say what is to be done.", "title"),
        ({"title": "x", "assignee_id": 99999999}, "Choose someone from the list.", "assignee_id"),
        (
            {"title": "x", "due_at": soon, "reminder_at": soon + timedelta(hours=1)},
            "The reminder should come before the task is due.",
            "reminder_at",
        ),
        ({"title": "x", "due_at": "soon"}, "Enter a date and time.", "due_at"),
    ]:
        assert _refusal(tasks.create_task, owner, data) == (message, field)
    updated = tasks.update_task(owner, t3.id, {"title": "Some day soon", "due_at": soon})
    assert (updated.title, updated.due_at) == ("Some day soon", soon)
    tasks.delete_task(owner, t3.id)
    with pytest.raises(LookupError):
        tasks.get_task(owner, t3.id)


# Custom fields --------------------------------------------------------------------------


def test_custom_fields(owner):
    from saas.extensions import db
    from tenants.customers import fields, services
    from tenants.customers.models import Contact

    rating = fields.create_field("contact", "Rating (1-5)", "number", [])
    assert rating.key == "rating_1_5"
    colour = fields.create_field("contact", "Favourite colour", "select", ["Red", "red", "Blue", " "])
    assert colour.options == ["Red", "Blue"]
    chinese = fields.create_field("contact", "客户等级", "text", [])
    assert chinese.key.startswith("field_")
    for args, message, field in [
        (
            ("contact", "Rating", "number", [], "rating_1_5"),
            "Another field already uses the key rating_1_5.",
            "key",
        ),
        (("contact", "Pick", "select", []), "Give at least one choice, one per line.", "options"),
        (("contact", "X", "colour", []), "Choose a type from the list.", "field_type"),
        (("deal", "X", "text", []), "Choose companies or contacts.", "record_type"),
        (
            ("contact", "Bad key", "text", [], "9lives"),
            "The key starts with a letter and holds only a-z, 0-9 and _ (at most 40).",
            "key",
        ),
        (("contact", "", "text", []), "Give the field a name.", "label"),
    ]:
        assert _refusal(fields.create_field, *args) == (message, field)
    db.session.rollback()
    contact = services.create_contact(
        owner,
        {"first_name": "Cara", "custom": {"rating_1_5": "4", colour.key: "Blue", "undefined_key": "ignored"}},
    )
    assert contact.custom == {"rating_1_5": 4, colour.key: "Blue"}
    assert _refusal(services.update_contact, owner, contact.id, {"custom": {"rating_1_5": "four"}}) == (
        "Rating (1-5): enter a number.",
        "cf_rating_1_5",
    )
    db.session.rollback()
    assert _refusal(services.update_contact, owner, contact.id, {"custom": {colour.key: "Green"}}) == (
        "Favourite colour: choose from the list.",
        f"cf_{colour.key}",
    )
    db.session.rollback()
    services.update_contact(owner, contact.id, {"custom": {"rating_1_5": ""}})
    assert db.session.get(Contact, contact.id).custom == {colour.key: "Blue"}
    fields.delete_field(colour.id)
    db.session.expire_all()
    assert db.session.get(Contact, contact.id).custom == {}
    fields.update_field(rating.id, "Rating", ["ignored for numbers"], position=1)
    assert [d.key for d in fields.definitions("contact")][0] == "rating_1_5"


def test_a_departed_owner_stays_until_someone_else_is_chosen(app, crm, owner):
    from saas.extensions import db
    from saas.models import Membership
    from tenants.customers import services
    from tests.factories import add_member

    user_id, _email, membership_id = add_member(app, crm, "sales")
    company = services.create_company(owner, {"name": "Left Behind Ltd", "owner_id": user_id})
    db.session.get(Membership, membership_id).is_active = False
    db.session.commit()
    services.update_company(owner, company.id, {"name": "Left Behind Ltd.", "owner_id": str(user_id)})
    assert company.owner_id == user_id
    other = services.create_company(owner, {"name": "Another"})
    assert _refusal(services.update_company, owner, other.id, {"owner_id": user_id}) == (
        "Choose an owner from the list.",
        "owner_id",
    )
