"""Duplicates: detection per reason and visibility, "not duplicates", and merges that keep every
related row (tenants/customers/duplicates.py, views_duplicates.py)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from tests.factories import db_state, offset_ids, unique
from tests.tenants.customers.conftest import in_tenant, viewer_of


def _u() -> str:
    return unique("d").lower()


def _all_clusters(viewer, record_type: str, reason: str) -> list[set[int]]:
    from tenants.customers import duplicates

    found, after = [], ""
    while True:
        page = duplicates.review(viewer, record_type, reason, after)
        found += [set(c.ids) for c in page.clusters]
        if not page.after:
            return found
        after = page.after


def _in_a_cluster(clusters: list[set[int]], *ids: int) -> bool:
    return any(set(ids) <= c for c in clusters)


def _pointing(record_type: str, ids: list[int]) -> dict[str, int]:
    """Rows of any tenant table that point at these records: foreign keys, (record_type, record_id)
    columns, and "not duplicates" pairs."""
    from saas.extensions import db
    from saas.tenancy import is_tenant_table
    from tenants.customers.duplicate_models import DuplicateDismissal
    from tenants.customers.extra_models import Attachment
    from tenants.customers.imports.models import ImportRecord
    from tenants.customers.models import Company, Contact, LifecycleChange

    target = (Company if record_type == "company" else Contact).__table__.c.id
    counts = {}
    for table in db.metadata.tables.values():
        if is_tenant_table(table):
            for fk in table.foreign_keys:
                if fk.column is target:
                    stmt = select(func.count()).select_from(table).where(fk.parent.in_(ids))
                    counts[f"{table.name}.{fk.parent.name}"] = db.session.scalar(stmt)
    for model in (LifecycleChange, Attachment, ImportRecord):
        stmt = select(func.count()).where(model.record_type == record_type, model.record_id.in_(ids))
        counts[model.__tablename__] = db.session.scalar(stmt)
    d = DuplicateDismissal
    counts["duplicate_dismissals"] = db.session.scalar(
        select(func.count()).where(d.record_type == record_type, (d.low_id.in_(ids)) | (d.high_id.in_(ids)))
    )
    return counts


# Detection -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def people_dups(app, crm):
    """Contacts that match for each reason, and look-alikes that must not."""
    from tenants.customers import services

    u = _u()
    with in_tenant(app, crm):
        owner = viewer_of(crm, "owner")
        c1 = services.create_company(owner, {"name": f"Firm {u}"}).id
        c2 = services.create_company(owner, {"name": f"Other firm {u}"}).id

        def add(**data):
            return services.create_contact(owner, {"owner_id": crm.people["owner"][0], **data}).id

        made = {
            "a": add(first_name="Ann", last_name=f"Lee{u}", company_id=c1, email=f"ann{u}@example.com",
                     phones="+1 (555) 010-1234 ext 9"),
            "b": add(first_name="ann", last_name=f" lee{u}.", company_id=c1, email=f"a.lee{u}@example.com"),
            "d": add(first_name="Dee", last_name=u, email=f"ANN{u}@EXAMPLE.COM"),
            "e": add(first_name="Eve", last_name=u, email=f"eve{u}@example.com", emails=f"alt{u}@example.com"),
            "f": add(first_name="Fay", last_name=u, email=f"alt{u}@example.com"),
            "g": add(first_name="Gus", last_name=u, phones="+44 20 7000 0000, 555 0101234"),
            "h": add(first_name="Ann", last_name=f"Lee{u}", company_id=c2, email=f"h{u}@example.com"),
            "w1": add(first_name="伟", last_name=f"王{u}", company_id=c2),
            "w2": add(first_name="伟", last_name=f"王{u}", company_id=c2),
            "w3": add(first_name="伟", last_name=f"王{u}", company_id=c1),
            # Sales' own pair, and a look-alike of it that support owns.
            "s1": add(first_name="Sal", last_name=u, email=f"sal{u}@example.com", owner_id=crm.people["sales"][0]),
            "s2": add(first_name="Sally", last_name=u, email=f"sal{u}@example.com", owner_id=crm.people["sales"][0]),
            "s3": add(first_name="Sol", last_name=u, email=f"sal{u}@example.com", owner_id=crm.people["support"][0]),
        }  # fmt: skip
    return made


def test_contacts_are_found_for_each_reason_and_only_then(app, crm, people_dups):
    from tenants.customers import duplicates

    m = people_dups
    with in_tenant(app, crm):
        owner = viewer_of(crm, "owner")
        email = _all_clusters(owner, "contact", "email")
        phone = _all_clusters(owner, "contact", "phone")
        name = _all_clusters(owner, "contact", "name")
        cluster = duplicates.record_cluster(owner, "contact", m["a"])
        reasons = {reason for reason, _value in cluster.reasons}
        ids = set(cluster.ids)
    assert _in_a_cluster(email, m["a"], m["d"])  # the same address, whatever its case
    assert _in_a_cluster(email, m["e"], m["f"])  # a further address is another's primary
    assert _in_a_cluster(phone, m["a"], m["g"])  # digits only, last 8, extension ignored
    assert _in_a_cluster(name, m["a"], m["b"])  # case, spaces and punctuation ignored, same company
    assert _in_a_cluster(name, m["w1"], m["w2"])  # Chinese: the same characters
    assert not _in_a_cluster(name, m["w1"], m["w3"])  # ... but at another company
    assert not _in_a_cluster(name, m["a"], m["h"])  # the same name at another company is someone else
    everything = email + phone + name
    assert not _in_a_cluster(everything, m["a"], m["h"])
    assert not _in_a_cluster(everything, m["e"], m["g"])
    # One record's possible duplicates (the 360 hint): every reason at once.
    assert ids == {m["a"], m["b"], m["d"], m["g"]}
    assert reasons == {"email", "phone", "name"}


def test_companies_are_found_by_domain_phone_and_name(app, crm):
    from tenants.customers import duplicates, services

    u = _u()
    with in_tenant(app, crm):
        owner = viewer_of(crm, "owner")

        def add(**data):
            return services.create_company(owner, data).id

        a = add(
            name=f"Acme {u} Trading Ltd.", website=f"https://www.acme{u}.test/about", phones="+66 2 555 1234"
        )
        b = add(name=f"ACME {u} trading", website=f"acme{u}.test")
        c = add(name=f"Zed {u}", phones="02 555 1234")
        d = add(name=f"Acme {u} Trading Group", website=f"acme{u}-group.test")
        e = add(name=f"北京{u}科技有限公司")
        f = add(name=f"北京{u}科技")
        domain = _all_clusters(owner, "company", "domain")
        phone = _all_clusters(owner, "company", "phone")
        name = _all_clusters(owner, "company", "name")
        one = duplicates.record_cluster(owner, "company", a).ids
    assert _in_a_cluster(domain, a, b)
    assert _in_a_cluster(phone, a, c)
    assert _in_a_cluster(name, a, b) and _in_a_cluster(name, e, f)
    assert not _in_a_cluster(domain + phone + name, a, d)
    assert set(one) == {a, b, c}


def test_own_visibility_sees_only_own_records_in_clusters(app, crm, login, people_dups):
    from tenants.customers import duplicates

    m = people_dups
    with in_tenant(app, crm):
        sales = viewer_of(crm, "sales")
        clusters = _all_clusters(sales, "contact", "email")
        seen = {i for c in clusters for i in c}
        mine = duplicates.record_cluster(sales, "contact", m["s1"]).ids
        support = duplicates.record_cluster(viewer_of(crm, "support"), "contact", m["s3"]).ids
    assert {m["s1"], m["s2"]} in clusters
    assert seen <= {m["s1"], m["s2"]}  # nothing of anyone else, not even that a third one exists
    assert set(mine) == {m["s1"], m["s2"]}
    assert set(support) == {m["s1"], m["s2"], m["s3"]}  # support sees everything
    html = login("sales").get(f"/{crm.slug}/customers/duplicates?type=contact&reason=email").get_data(True)
    assert f"/customers/contacts/{m['s2']}" in html and f"/customers/contacts/{m['s3']}" not in html
    # A record sales cannot see is a 404, not an empty page.
    assert login("sales").get(f"/{crm.slug}/customers/contacts/{m['s3']}/duplicates").status_code == 404


def test_review_page_hint_and_list_link(app, crm, login, people_dups):
    m = people_dups
    client = login("owner")
    html = client.get(f"/{crm.slug}/customers/duplicates?type=contact&reason=phone").get_data(True)
    assert 'data-testid="duplicate-cluster"' in html and "Gus" in html
    assert f'name="keep" value="{m["a"]}"' in html and f'value="{m["g"]}"' in html
    page = client.get(f"/{crm.slug}/customers/contacts/{m['a']}").get_data(True)
    assert 'data-testid="duplicates-hint"' in page
    assert f"/customers/contacts/{m['a']}/duplicates" in page
    single = client.get(f"/{crm.slug}/customers/contacts/{m['f']}").get_data(True)
    assert "This record may have 1 duplicate." in single
    assert 'data-testid="duplicates-link"' in client.get(f"/{crm.slug}/customers/contacts").get_data(True)
    assert client.get(f"/{crm.slug}/customers/duplicates?type=deal").status_code == 404
    assert client.get(f"/{crm.slug}/customers/duplicates?type=company&reason=email").status_code == 404
    record_page = client.get(f"/{crm.slug}/customers/contacts/{m['a']}/duplicates").get_data(True)
    assert "Dee" in record_page and "Gus" in record_page and "Other firm" not in record_page


def test_paging_goes_through_every_cluster(app, crm, monkeypatch):
    """Small pages and windows: every pair is found once the cursor has walked the keys, whichever
    position (first, second, third phone) the shared number has; one record's own repeat is no pair."""
    from tenants.customers import duplicates, services

    u = _u()
    monkeypatch.setattr(duplicates, "PAGE_SIZE", 2)
    monkeypatch.setattr(duplicates, "WINDOW", 3)
    monkeypatch.setattr(duplicates, "MAX_WINDOWS", 2)
    number = int(u[1:4], 16) % 9000 + 1000  # this run's numbers, not another test's
    with in_tenant(app, crm):
        owner = viewer_of(crm, "owner")

        def add(*phones: str) -> int:
            return services.create_contact(
                owner, {"first_name": "Pager", "last_name": u, "phones": list(phones)}
            ).id

        pairs = []
        for i in range(4):
            shared = f"+66 2 {number}{i:03d}"
            pairs.append({add(shared), add(f"+1 555 {number}9{i:02d}0", "+44 7700 90000" + str(i), shared)})
            pairs.append(
                {add(f"+66 3 {number}{i:03d}", f"+66 4 {number}{i:03d}"), add(f"+66 4 {number}{i:03d}")}
            )
        alone = add(f"+66 81 {number}999", f"08-1{number}-999")  # the same number, written twice
        seen: list[set[int]] = []
        pages, after = 0, ""
        while True:
            page = duplicates.review(owner, "contact", "phone", after)
            pages += 1
            seen += [set(c.ids) for c in page.clusters]
            if not page.after:
                break
            after = page.after
    assert pages > 2
    for pair in pairs:
        assert pair in seen
    assert not any(alone in c for c in seen)


def test_not_duplicates_stops_showing_them(app, crm, login):
    from tenants.customers import duplicates, services

    u = _u()
    with in_tenant(app, crm):
        owner = viewer_of(crm, "owner")
        a = services.create_contact(owner, {"first_name": "Nia", "email": f"nia{u}@example.com"}).id
        b = services.create_contact(owner, {"first_name": "Nina", "email": f"nia{u}@example.com"}).id
        assert _in_a_cluster(_all_clusters(owner, "contact", "email"), a, b)
    client = login("owner")
    resp = client.form(f"/{crm.slug}/customers/contacts/{a}/not-duplicates", {"ids": [str(a), str(b)]})
    assert resp.status_code == 302
    with in_tenant(app, crm):
        owner = viewer_of(crm, "owner")
        assert not _in_a_cluster(_all_clusters(owner, "contact", "email"), a, b)
        assert b not in duplicates.candidates(owner, "contact", services.get_contact(owner, a))
    page = client.get(f"/{crm.slug}/customers/contacts/{a}").get_data(True)
    assert 'data-testid="duplicates-hint"' not in page
    # Once is enough: saying it again changes nothing.
    before = db_state(app, crm.schema)
    client.form(f"/{crm.slug}/customers/contacts/{a}/not-duplicates", {"ids": [str(a), str(b)]})
    assert db_state(app, crm.schema) == before


# Merge ---------------------------------------------------------------------------------------


def _company_with_everything(app, crm, owner, name: str, **data) -> int:
    """A company with contacts, timeline entries, a task, a file, stage history, a reminder-rule task,
    an import link, a saved view, a bulk-delete undo record and a "not duplicates" pair."""
    from saas.extensions import db
    from tenants.customers import services, tasks, timeline
    from tenants.customers.duplicate_models import DuplicateDismissal
    from tenants.customers.extra_models import Attachment, RuleTask
    from tenants.customers.imports.models import ImportRecord
    from tests.tenants.customers.routes import make_import

    import_id = make_import(app, crm)
    with in_tenant(app, crm):
        company = services.create_company(owner, {"name": name, **data})
        cid = company.id
        contact = services.create_contact(
            owner, {"first_name": "Staff", "last_name": name, "company_id": cid}
        )
        services.create_contact(owner, {"first_name": "Other", "last_name": name, "company_id": cid})
        timeline.log_activity(owner, "company", cid, "note", body=f"About {name}")
        timeline.log_activity(owner, "contact", contact.id, "call", subject=f"Call at {name}")
        task = tasks.create_task(owner, {"title": f"Visit {name}"}, company_id=cid)
        services.change_stage(owner, "company", cid, "customer")
        other = services.create_company(owner, {"name": f"Not the same as {name}"})
        db.session.add_all(
            [
                Attachment(record_type="company", record_id=cid, file_name="a.txt", content_type="text/plain",
                           size=1, storage_key=f"{crm.id}/{unique('k')}"),
                RuleTask(task_id=task.id, company_id=cid),
                ImportRecord(import_id=import_id, record_type="company", record_id=cid, previous=None),
                DuplicateDismissal(record_type="company", low_id=min(cid, other.id), high_id=max(cid, other.id)),
            ]
        )  # fmt: skip
        db.session.commit()
    return cid


def test_company_merge_keeps_every_related_row(app, crm, login):
    from saas.extensions import db
    from tenants.admin.models import AuditEvent
    from tenants.customers import search
    from tenants.customers.list_models import BulkBatch, SavedView
    from tenants.customers.models import Activity, Company, Contact, LifecycleChange, Task

    u = _u()
    with in_tenant(app, crm):
        owner = viewer_of(crm, "owner")
    keep = _company_with_everything(app, crm, owner, f"Keep {u}", phones="+1 555 111 2222", tags="gold")
    gone = _company_with_everything(
        app, crm, owner, f"Gone {u}", phones="+44 20 7946 0001", tags="silver", industry="Retail",
        website=f"gone{u}.test",
    )  # fmt: skip
    with in_tenant(app, crm):
        view = SavedView(
            user_id=owner.user_id, record_type="contact", name=unique("V"), query=f"company_id={gone}"
        )
        batch = BulkBatch(
            user_id=owner.user_id, record_type="contact", action="delete",
            before={"ids": [1], "rows": {"contacts": [{"id": 1, "company_id": gone}]}, "links": {}},
        )  # fmt: skip
        db.session.add_all([view, batch])
        db.session.commit()
        view_id, batch_id = view.id, batch.id
        before_keep, before_gone = _pointing("company", [keep]), _pointing("company", [gone])
        assert all(before_gone[t] for t in ("contacts.company_id", "activities.company_id", "tasks.company_id",
                                            "rule_tasks.company_id", "lifecycle_changes", "attachments",
                                            "import_records", "duplicate_dismissals"))  # fmt: skip

    resp = login("owner").form(
        f"/{crm.slug}/customers/companies/{keep}/merge",
        {"ids": [str(keep), str(gone)], "keep": str(keep), "f_name": str(keep)},
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/customers/companies/{keep}")

    with in_tenant(app, crm):
        after = _pointing("company", [keep])
        assert _pointing("company", [gone]) == dict.fromkeys(before_gone, 0)
        assert db.session.get(Company, gone) is None
        for table, n in before_gone.items():
            extra = 1 if table == "activities.company_id" else 0  # the note saying what was merged
            assert after[table] == before_keep[table] + n + extra, table
        kept = db.session.get(Company, keep)
        assert kept.name == f"Keep {u}" and kept.industry == "Retail"  # an empty field takes the other's
        assert kept.domain == f"gone{u}.test"
        assert kept.phones == ["+1 555 111 2222", "+44 20 7946 0001"] and kept.tags == ["gold", "silver"]
        assert db.session.scalar(select(func.count()).where(Contact.company_id == keep)) == 4
        assert db.session.scalar(select(func.count()).where(Task.company_id == keep)) == 2
        assert (
            db.session.scalar(
                select(func.count()).where(
                    LifecycleChange.record_type == "company", LifecycleChange.record_id == keep
                )
            )
            == before_keep["lifecycle_changes"] + before_gone["lifecycle_changes"]
        )
        assert db.session.get(SavedView, view_id).query == f"company_id={keep}"
        assert db.session.get(BulkBatch, batch_id).before["rows"]["contacts"][0]["company_id"] == keep
        note = db.session.scalar(
            select(Activity).where(Activity.company_id == keep, Activity.meta["merged"].is_not(None))
        )
        assert note is not None and f"Gone {u}" in note.body and note.meta["merged"] == [gone]
        entry = db.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "merge", AuditEvent.entity_id == str(keep))
        )
        assert (
            entry.entity == "companies" and entry.summary == f"merged #{gone} Gone {u} into #{keep} Keep {u}"
        )
        assert entry.changes["merged"][str(gone)]["industry"] == "Retail"
        assert entry.changes["moved"]["contacts.company_id"]["count"] == 2
        deleted = db.session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "delete",
                AuditEvent.entity == "companies",
                AuditEvent.entity_id == str(gone),
            )
        )
        assert deleted is not None
        # Search finds the kept company under what came from the merged one, and never the merged one.
        hits = search.search(owner, "+44 20 7946 0001").companies
        assert [h.id for h in hits] == [keep]
        assert gone not in [h.id for h in search.search(owner, f"Gone {u}").companies]


def test_contact_merge_with_chosen_values(app, crm, login):
    from saas.extensions import db
    from tenants.customers import duplicates, search, services, tasks, timeline
    from tenants.customers import fields as custom_fields
    from tenants.customers.models import Contact

    u = _u()
    with in_tenant(app, crm):
        owner = viewer_of(crm, "owner")
        field = custom_fields.create_field("contact", unique("Shoe size "), "text", [])
        p = services.create_contact(owner, {
            "first_name": "Pat", "last_name": f"Kim{u}", "email": f"pat{u}@example.com", "phones": "+66 2 123 4567",
            "tags": "vip", "custom": {field.key: ""},
        })  # fmt: skip
        q = services.create_contact(owner, {
            "first_name": "Patrick", "last_name": f"Kim{u}", "email": f"patrick{u}@example.org",
            "emails": f"pk{u}@example.net", "phones": "+66 81 555 0000, +66 2 123-4567", "tags": "lead, VIP",
            "job_title": "CTO", "consent_email": True, "consent_email_how": "web form",
            "custom": {field.key: "44"},
        })  # fmt: skip
        timeline.log_activity(owner, "contact", q.id, "meeting", subject="Lunch")
        tasks.create_task(owner, {"title": "Send offer"}, contact_id=q.id)
        services.change_stage(owner, "contact", q.id, "prospect")
        p_id, q_id = p.id, q.id
        before_p, before_q = _pointing("contact", [p_id]), _pointing("contact", [q_id])
        assert before_q.get("consent_events.contact_id", 1) > 0  # the consent ledger, where there is one

        kept = duplicates.merge(
            owner, "contact", p_id, [q_id], {"name": str(q_id), "lifecycle_stage": str(q_id)}
        )
        assert kept.id == p_id
        db.session.expire_all()
        kept = db.session.get(Contact, p_id)
        assert (kept.first_name, kept.full_name) == ("Patrick", f"Patrick Kim{u}")
        assert kept.email == f"pat{u}@example.com" and kept.emails == [
            f"patrick{u}@example.org",
            f"pk{u}@example.net",
        ]
        assert kept.phones == ["+66 2 123 4567", "+66 81 555 0000"]  # the same number written twice: once
        assert kept.tags == ["vip", "lead"] and kept.job_title == "CTO"
        assert kept.consent_email and kept.consent_email_how == "web form"
        assert kept.custom == {field.key: "44"} and kept.lifecycle_stage == "prospect"
        after = _pointing("contact", [p_id])
        assert _pointing("contact", [q_id]) == dict.fromkeys(before_q, 0)
        for table, n in before_q.items():
            # The note saying what was merged, the stage change, the consent now given to the kept one.
            extra = {"activities.contact_id": 2, "lifecycle_changes": 1, "consent_events.contact_id": 1}.get(
                table, 0
            )
            assert after[table] == before_p[table] + n + extra, table
        assert [h.id for h in search.search(owner, f"pk{u}@example.net").contacts] == [p_id]
        assert [h.id for h in search.search(owner, f"patrick{u}@example.org").contacts] == [p_id]


def test_bad_merges_write_nothing(app, crm, other, login, people_dups):
    from tenants.customers import duplicates, services
    from tenants.customers.errors import CustomerError, NotFound

    u = _u()
    with in_tenant(app, crm):
        owner = viewer_of(crm, "owner")
        a = services.create_contact(owner, {"first_name": "Bo", "email": f"bo{u}@example.com"}).id
        b = services.create_contact(owner, {"first_name": "Bob", "email": f"bo{u}@example.com"}).id
    offset_ids(app, other)  # its ids are then never also ids in crm
    with in_tenant(app, other):
        foreign = services.create_contact(
            viewer_of(other, "owner"), {"first_name": "Far", "email": f"bo{u}@example.com"}
        ).id
    client = login("owner")
    base = f"/{crm.slug}/customers/contacts"
    before = db_state(app, crm.schema, other.schema)
    # Another workspace's record among the ids, or as the URL's record: 404, nothing written.
    assert (
        client.form(f"{base}/{a}/merge", {"ids": [str(a), str(foreign)], "keep": str(a)}).status_code == 404
    )
    assert (
        client.form(f"{base}/{a}/merge", {"ids": [str(a), str(b)], "keep": str(foreign)}).status_code == 404
    )
    assert client.form(f"{base}/{foreign}/merge", {"ids": [str(a), str(b)]}).status_code == 404
    assert client.form(f"{base}/{foreign}/not-duplicates", {"ids": [str(a), str(b)]}).status_code == 404
    assert client.form(f"{base}/{a}/not-duplicates", {"ids": [str(a), str(foreign)]}).status_code == 404
    # One record is not a merge: a message, and back.
    resp = client.form(f"{base}/{a}/merge", {"ids": [str(a)], "keep": str(a)}, follow_redirects=True)
    assert "Choose at least two records to merge." in resp.get_data(True)
    assert db_state(app, crm.schema, other.schema) == before
    with in_tenant(app, crm):
        owner = viewer_of(crm, "owner")
        with pytest.raises(CustomerError):
            duplicates.merge(owner, "contact", a, [a, b])
        with pytest.raises(CustomerError):
            duplicates.merge(owner, "contact", a, [])
        with pytest.raises(NotFound):
            duplicates.merge(owner, "deal", a, [b])
        # A sales person ("own") cannot reach support's record through a merge either.
        m = people_dups
        with pytest.raises(NotFound):
            duplicates.merge(viewer_of(crm, "sales"), "contact", m["s1"], [m["s3"]])
    assert db_state(app, crm.schema, other.schema) == before


@pytest.mark.parametrize("role", ["read_only", "sales", "support"])
def test_merge_needs_edit_and_delete(app, crm, login, people_dups, role):
    m = people_dups
    client = login(role)  # signed in before: a sign-in is logged
    before = db_state(app, crm.schema)
    resp = client.form(
        f"/{crm.slug}/customers/contacts/{m['s1']}/merge",
        {"ids": [str(m["s1"]), str(m["s2"])], "keep": str(m["s1"])},
    )
    assert resp.status_code == 403
    assert db_state(app, crm.schema) == before
    page = client.get(f"/{crm.slug}/customers/contacts/{m['s1']}/duplicates").get_data(True)
    assert 'data-testid="merge-button"' not in page


def test_forged_choice_is_refused(app, crm, login):
    from tenants.customers import services

    u = _u()
    with in_tenant(app, crm):
        owner = viewer_of(crm, "owner")
        a = services.create_contact(owner, {"first_name": "Cy", "email": f"cy{u}@example.com"}).id
        b = services.create_contact(owner, {"first_name": "Cyd", "email": f"cy{u}@example.com"}).id
    before = db_state(app, crm.schema)
    resp = login("owner").form(
        f"/{crm.slug}/customers/contacts/{a}/merge",
        {"ids": [str(a), str(b)], "keep": str(a), "f_name": "not-a-number"},
        follow_redirects=True,
    )
    assert re.search("Choose each value from one of the records", resp.get_data(True))
    assert db_state(app, crm.schema) == before
