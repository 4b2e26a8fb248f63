"""Sample companies, contacts, timelines and tasks for the demo workspace (English, Chinese, Thai)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from saas.extensions import db
from tenants.customers import people, search
from tenants.customers.models import STAGES, Activity, Company, Contact, CustomField, LifecycleChange, Task
from tenants.customers.services import SIZES, full_name

INDUSTRIES = ["Retail", "Manufacturing", "Software", "Logistics", "Hospitality", "Healthcare", "Education"]
NOTES = [
    "<p>Asked for a quote on the <b>annual plan</b>. Budget is approved for Q3.</p>",
    "<p>Prefers to be called in the morning.</p><ul><li>Decision maker: the COO</li><li>Competitor: in trial</li></ul>",
    "<p>需要中文版本的合同。</p>",
    "<p>ลูกค้าต้องการใบเสนอราคาภายในสัปดาห์นี้</p>",
]
CALLS = ["Intro call", "Follow-up on the quote", "Renewal talk", "Support escalation", "Pricing questions"]


def seed(tenant: Any, rng: random.Random, companies: int = 40, contacts_per: int = 4) -> None:
    """Add sample customers to the bound demo tenant (called with the tenant bound, committed by the caller)."""
    from faker import Faker  # imported here: Faker is slow to import and only the demo needs it

    fakers = {loc: Faker(loc) for loc in ("en_US", "zh_CN", "zh_TW", "th_TH")}
    for fake in fakers.values():
        fake.seed_instance(rng.randint(0, 10_000))
    owners = [uid for uid, _name in people.members()] or [None]
    now = datetime.now(UTC)
    db.session.add_all(
        [
            CustomField(
                record_type="company",
                key="annual_revenue",
                label="Annual revenue",
                field_type="number",
                position=10,
            ),
            CustomField(
                record_type="company",
                key="segment",
                label="Segment",
                field_type="select",
                options=["SMB", "Mid-market", "Enterprise"],
                position=20,
            ),
            CustomField(
                record_type="contact",
                key="newsletter",
                label="Newsletter",
                field_type="checkbox",
                position=10,
            ),
            CustomField(
                record_type="contact",
                key="languages",
                label="Languages",
                field_type="multi_select",
                options=["English", "中文", "ไทย"],
                position=20,
            ),
        ]
    )
    for i in range(companies):
        loc = list(fakers)[i % len(fakers)]
        fake = fakers[loc]
        stage = rng.choice(STAGES)
        created = now - timedelta(days=rng.randint(5, 400))
        company = Company(
            name=fake.company(),
            industry=rng.choice(INDUSTRIES),
            size=rng.choice(SIZES),
            website=f"https://{fake.domain_name()}",
            phones=[fake.phone_number()],
            city=fake.city(),
            country={"en_US": "United States", "zh_CN": "中国", "zh_TW": "台灣", "th_TH": "ประเทศไทย"}[loc],
            owner_id=rng.choice(owners),
            tags=rng.sample(["vip", "partner", "newsletter", "trade-show", "referral"], k=rng.randint(0, 2)),
            source=rng.choice(["Website", "Referral", "Trade show", "Cold call"]),
            lifecycle_stage=stage,
            custom={
                "annual_revenue": rng.randint(1, 500) * 10_000,
                "segment": rng.choice(["SMB", "Mid-market", "Enterprise"]),
            },
            created_at=created,
            updated_at=created + timedelta(days=rng.randint(0, 4)),
        )
        db.session.add(company)
        db.session.flush()
        db.session.add(
            LifecycleChange(record_type="company", record_id=company.id, to_stage=stage, at=created)
        )
        for _j in range(rng.randint(1, contacts_per)):
            first, last = fake.first_name(), fake.last_name()
            contact = Contact(
                first_name=first,
                last_name=last,
                full_name=full_name(first, last),
                company_id=company.id,
                job_title=fake.job()[:120],
                email=f"{fake.user_name()}{rng.randint(1, 999)}@{company.website.split('//')[1]}".lower(),
                phones=[fake.phone_number()],
                city=company.city,
                country=company.country,
                owner_id=company.owner_id,
                lifecycle_stage=stage,
                consent_email=rng.random() > 0.5,
                consent_email_how="Web form",
                custom={
                    "newsletter": rng.random() > 0.5,
                    "languages": rng.sample(["English", "中文", "ไทย"], k=1),
                },
                created_at=created,
                updated_at=created,
            )
            contact.consent_email_at = created if contact.consent_email else None
            db.session.add(contact)
        db.session.flush()
        for _k in range(rng.randint(1, 5)):
            kind = rng.choice(["note", "call", "meeting"])
            db.session.add(
                Activity(
                    kind=kind,
                    subject="" if kind == "note" else rng.choice(CALLS),
                    body=rng.choice(NOTES),
                    occurred_at=now - timedelta(days=rng.randint(0, 90), minutes=rng.randint(0, 600)),
                    company_id=company.id,
                    user_id=company.owner_id,
                    meta={"duration_min": rng.choice([10, 15, 30, 45])} if kind != "note" else {},
                )
            )
        if rng.random() > 0.4:
            db.session.add(
                Task(
                    title=rng.choice(["Send the quote", "Call back", "Book a demo", "Renewal reminder"]),
                    due_at=now + timedelta(days=rng.randint(-5, 20)),
                    assignee_id=company.owner_id,
                    company_id=company.id,
                    created_by=company.owner_id,
                )
            )
    db.session.flush()
    search.reindex_all()  # written past the services: index it in one go
