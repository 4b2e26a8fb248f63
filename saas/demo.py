"""A demo workspace with sample colleagues in English, Chinese and Thai (Faker)."""

from __future__ import annotations

import random

from faker import Faker
from sqlalchemy import select

from saas import tenancy
from saas.extensions import db
from saas.models import Membership, Tenant, User

DEMO_EMAIL = "owner@demo.example"
DEMO_PASSWORD = "demo-password-2026"
ROLES = ["admin", "manager", "sales", "sales", "support", "marketing", "read_only"]


def create_demo(slug: str = "demo", seed: int = 7) -> tuple[str, str, bool]:
    """Create the demo workspace unless it exists; returns (email, password, created)."""
    from saas import accounts
    from saas.signup import signup

    if db.session.scalar(select(Tenant).where(Tenant.slug == slug)) is not None:
        return DEMO_EMAIL, DEMO_PASSWORD, False
    tenant = signup("Demo Trading Co. 示例贸易", slug, "Dana Demo", DEMO_EMAIL, DEMO_PASSWORD)
    owner = accounts.user_by_email(DEMO_EMAIL)
    owner.email_verified_at = owner.created_at
    rng = random.Random(seed)
    fakers = [Faker(loc) for loc in ("en_US", "zh_CN", "zh_TW", "th_TH")]
    for f in fakers:
        f.seed_instance(seed)
    password = accounts.hash_password(DEMO_PASSWORD)
    with tenancy.bound(tenant.id, tenant.schema_name, tenant.slug):
        for i, role in enumerate(ROLES):
            fake = fakers[i % len(fakers)]
            user = User(
                email=f"{role}{i}@demo.example",
                name=fake.name(),
                password_hash=password,
                email_verified_at=owner.created_at,
                locale=["en", "zh_Hans", "zh_Hant", "th"][i % 4],
            )
            db.session.add(user)
            db.session.flush()
            db.session.add(
                Membership(tenant_id=tenant.id, user_id=user.id, role=role, is_active=rng.random() > 0.1)
            )
        seed_modules(tenant, rng)
    db.session.commit()
    return DEMO_EMAIL, DEMO_PASSWORD, True


def seed_modules(tenant: Tenant, rng: random.Random) -> None:
    """Let each CRM module add its own sample records (modules register in tenants.registry)."""
    from tenants.registry import DEMO_SEEDERS

    for seeder in DEMO_SEEDERS:
        seeder(tenant, rng)
