"""Tenant-schema models of Customer 360: companies, contacts, their history, timeline and tasks.

Owners, assignees and authors are user ids of the shared schema (no foreign key
across schemas: a tenant schema stays self-contained so it can be moved or
sharded on its own).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from saas.extensions import db
from saas.models import utcnow
from tenants.base import TENANT, id_column

STAGES = ("lead", "prospect", "customer", "loyal", "churned")
RECORD_TYPES = ("company", "contact")
ACTIVITY_KINDS = ("note", "call", "meeting", "email", "stage_change")
FIELD_TYPES = ("text", "number", "date", "select", "multi_select", "checkbox")


def _texts() -> Mapped[list[str]]:
    return mapped_column(ARRAY(Text), default=list, server_default=text("'{}'::text[]"))


def _custom() -> Mapped[dict]:
    return mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))


class SearchMixin:
    """Derived by tenants.customers.search from the searchable fields; never edited by hand.
    Deferred: pages and lists don't load them. Last in the table, where their migration put them."""

    search_text: Mapped[str] = mapped_column(
        Text, default="", server_default="", deferred=True, sort_order=1000
    )
    # Byte order ("C"): the GIN index compares grams only for equality, and the database's default
    # collation compares through the C library, which cost a fifth of an imported row's index work.
    search_grams: Mapped[list[str]] = mapped_column(
        ARRAY(Text(collation="C")),
        default=list,
        server_default=text("'{}'::text[]"),
        deferred=True,
        sort_order=1001,
    )
    # The duplicate-match key of each phone number (tenants.customers.duplicate_models.phone_key).
    phone_keys: Mapped[list[str]] = mapped_column(
        ARRAY(Text), default=list, server_default=text("'{}'::text[]"), deferred=True, sort_order=1002
    )


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), default=utcnow)


def _updated() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class AddressMixin:
    street: Mapped[str] = mapped_column(String(300), default="")
    city: Mapped[str] = mapped_column(String(120), default="")
    region: Mapped[str] = mapped_column(String(120), default="")
    postal_code: Mapped[str] = mapped_column(String(20), default="")
    country: Mapped[str] = mapped_column(String(120), default="")


class Company(AddressMixin, SearchMixin, db.Model):
    __tablename__ = "companies"

    id: Mapped[int] = id_column()
    name: Mapped[str] = mapped_column(String(200))
    industry: Mapped[str] = mapped_column(String(120), default="")
    size: Mapped[str] = mapped_column(String(20), default="")
    website: Mapped[str] = mapped_column(String(300), default="")
    domain: Mapped[str | None] = mapped_column(String(253))
    phones: Mapped[list[str]] = _texts()
    owner_id: Mapped[int | None] = mapped_column(BigInteger)
    tags: Mapped[list[str]] = _texts()
    source: Mapped[str] = mapped_column(String(120), default="")
    lifecycle_stage: Mapped[str] = mapped_column(String(20), default="lead")
    custom: Mapped[dict] = _custom()
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    __table_args__ = (
        # Keyset pagination of the lists: one index per sort, id as the tie-breaker (name: below).
        Index("ix_companies_owner_id_id", "owner_id", "id"),
        Index("ix_companies_updated_at_id", "updated_at", "id"),
        Index("ix_companies_created_at_id", "created_at", "id"),
        Index("ix_companies_domain", "domain"),
        Index("ix_companies_tags", "tags", postgresql_using="gin"),
        Index("ix_companies_search_grams", "search_grams", postgresql_using="gin"),
        Index(
            "ix_companies_custom",
            "custom",
            postgresql_using="gin",
            postgresql_ops={"custom": "jsonb_path_ops"},
        ),
        TENANT,
    )


class Contact(AddressMixin, SearchMixin, db.Model):
    __tablename__ = "contacts"

    id: Mapped[int] = id_column()
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    # Kept by the services from first and last name: what lists sort and search on.
    full_name: Mapped[str] = mapped_column(String(201))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("tenant.companies.id", ondelete="SET NULL"))
    job_title: Mapped[str] = mapped_column(String(120), default="")
    email: Mapped[str | None] = mapped_column(String(254))  # the primary address, lower case
    emails: Mapped[list[str]] = _texts()  # further addresses
    phones: Mapped[list[str]] = _texts()
    birthday: Mapped[date | None] = mapped_column(Date)
    interests: Mapped[str] = mapped_column(Text, default="")
    preferences: Mapped[str] = mapped_column(Text, default="")
    consent_email: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_email_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    consent_email_how: Mapped[str] = mapped_column(String(200), default="")
    consent_sms: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_sms_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    consent_sms_how: Mapped[str] = mapped_column(String(200), default="")
    owner_id: Mapped[int | None] = mapped_column(BigInteger)
    tags: Mapped[list[str]] = _texts()
    source: Mapped[str] = mapped_column(String(120), default="")
    lifecycle_stage: Mapped[str] = mapped_column(String(20), default="lead")
    custom: Mapped[dict] = _custom()
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    __table_args__ = (
        Index("ix_contacts_owner_id_id", "owner_id", "id"),
        Index("ix_contacts_updated_at_id", "updated_at", "id"),
        Index("ix_contacts_created_at_id", "created_at", "id"),
        Index("ix_contacts_email", "email"),
        Index("ix_contacts_tags", "tags", postgresql_using="gin"),
        Index("ix_contacts_search_grams", "search_grams", postgresql_using="gin"),
        Index(
            "ix_contacts_custom",
            "custom",
            postgresql_using="gin",
            postgresql_ops={"custom": "jsonb_path_ops"},
        ),
        TENANT,
    )

    @property
    def display_name(self) -> str:
        return self.full_name or self.email or f"#{self.id}"


# Keyset pagination by name: lower(name), then id as the tie-breaker.
Index("ix_companies_lower_name_id", func.lower(Company.name), Company.id)
Index("ix_contacts_lower_full_name_id", func.lower(Contact.full_name), Contact.id)
# A company's contacts by name (the 360 page), and every lookup by company.
Index("ix_contacts_company_id_name", Contact.company_id, func.lower(Contact.full_name), Contact.id)


class LifecycleChange(db.Model):
    """Every move of a company or contact between lifecycle stages."""

    __tablename__ = "lifecycle_changes"
    __table_args__ = (Index("ix_lifecycle_changes_record", "record_type", "record_id", "at"), TENANT)

    id: Mapped[int] = id_column()
    record_type: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[int] = mapped_column(BigInteger)
    from_stage: Mapped[str | None] = mapped_column(String(20))
    to_stage: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    by_user_id: Mapped[int | None] = mapped_column(BigInteger)


class CustomField(db.Model):
    """A field an admin adds to companies or contacts; values live in the record's `custom` JSONB."""

    __tablename__ = "custom_fields"
    __table_args__ = (UniqueConstraint("record_type", "key", name="uq_custom_fields_record_type_key"), TENANT)

    id: Mapped[int] = id_column()
    record_type: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(80))
    field_type: Mapped[str] = mapped_column(String(20))
    options: Mapped[list[str]] = _texts()
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = _created()
    # Values stored encrypted, with a blind index for exact-value filters (tenants.customers.fields).
    # Set when the field is made and never changed, like its type. (Last: columns added by migrations
    # come last in the table, and a schema made from the models must have the same order.)
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class Activity(db.Model):
    """One entry of a timeline: a note, call, meeting, email or stage change."""

    __tablename__ = "activities"
    __table_args__ = (
        Index("ix_activities_company_occurred", "company_id", "occurred_at", "id"),
        Index("ix_activities_contact_occurred", "contact_id", "occurred_at", "id"),
        Index("ix_activities_outbox_id", "outbox_id", unique=True),
        TENANT,
    )

    id: Mapped[int] = id_column()
    kind: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(300), default="")
    # Sanitised HTML (tenants.customers.sanitize); plain text is stored as escaped paragraphs.
    body: Mapped[str] = mapped_column(Text, default="")
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # SET NULL: a call with a contact stays on the company's timeline when the contact goes (the
    # services delete what belonged to the deleted record alone).
    company_id: Mapped[int | None] = mapped_column(ForeignKey("tenant.companies.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("tenant.contacts.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    # Details of a kind: {"from": "lead", "to": "prospect"}, {"duration_min": 15, "direction": "out"}, ...
    meta: Mapped[dict] = _custom()
    created_at: Mapped[datetime] = _created()
    # An email sent from the CRM (tenants.customers.emails): to whom, the shared outbox row that carries
    # it (no foreign key across schemas) and where it is: queued, retrying, sent or failed.
    email_to: Mapped[str | None] = mapped_column(String(254))
    outbox_id: Mapped[int | None] = mapped_column(BigInteger)
    email_status: Mapped[str | None] = mapped_column(String(20))


class Task(db.Model):
    __tablename__ = "tasks"
    __table_args__ = (
        Index(
            "ix_tasks_assignee_open", "assignee_id", "due_at", "id", postgresql_where=text("done_at is null")
        ),
        Index("ix_tasks_company_id", "company_id"),
        Index("ix_tasks_contact_id", "contact_id"),
        Index(
            "ix_tasks_reminder_at",
            "reminder_at",
            postgresql_where=text("done_at is null and reminded_at is null"),
        ),
        TENANT,
    )

    id: Mapped[int] = id_column()
    title: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str] = mapped_column(Text, default="")
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reminder_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    assignee_id: Mapped[int | None] = mapped_column(BigInteger)
    # SET NULL: a call with a contact stays on the company's timeline when the contact goes (the
    # services delete what belonged to the deleted record alone).
    company_id: Mapped[int | None] = mapped_column(ForeignKey("tenant.companies.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("tenant.contacts.id", ondelete="SET NULL"))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Team(db.Model):
    """A group of colleagues: roles with "team" visibility see the records their teammates own."""

    __tablename__ = "teams"
    __table_args__ = TENANT

    id: Mapped[int] = id_column()
    name: Mapped[str] = mapped_column(String(80), unique=True)
    created_at: Mapped[datetime] = _created()


class TeamMember(db.Model):
    __tablename__ = "team_members"
    __table_args__ = (Index("ix_team_members_user_id", "user_id"), TENANT)

    team_id: Mapped[int] = mapped_column(ForeignKey("tenant.teams.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
