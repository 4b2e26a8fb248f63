"""Configuration from the environment. Nothing here needs setting to try the app."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from saas.tenancy import TENANT_SCHEMA_MAP

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = Path(os.environ.get("CRM_INSTANCE", ROOT / "instance"))

LANGUAGES = {"en": "English", "zh_Hans": "简体中文", "zh_Hant": "繁體中文", "th": "ไทย"}


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    # A stable key in the instance folder so dev sessions survive restarts.
    INSTANCE.mkdir(parents=True, exist_ok=True)
    path = INSTANCE / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


class Config:
    ENV_NAME = os.environ.get("CRM_ENV", "development")
    SECRET_KEY = _secret_key()
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL", "")
    SQLALCHEMY_ENGINE_OPTIONS = {
        "pool_pre_ping": True,
        "pool_size": 10,
        "max_overflow": 10,
        # Every statement resolves the "tenant" placeholder from the tenant bound at that moment.
        "execution_options": {"schema_translate_map": TENANT_SCHEMA_MAP},
    }
    REDIS_URL = os.environ.get("REDIS_URL", "")
    SMTP_URL = os.environ.get("SMTP_URL", "")
    MAIL_FROM = os.environ.get("MAIL_FROM", "CRM <no-reply@localhost>")
    MAIL_DIR = str(INSTANCE / "mail")
    BASE_URL = os.environ.get("BASE_URL", "")
    SENTRY_DSN = os.environ.get("SENTRY_DSN", "")
    BABEL_DEFAULT_LOCALE = "en"
    BABEL_TRANSLATION_DIRECTORIES = str(ROOT / "saas" / "translations")
    LANGUAGES = LANGUAGES
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = ENV_NAME == "production"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = ENV_NAME == "production"
    WTF_CSRF_TIME_LIMIT = None  # token lives as long as the session
    # Rate limits: (attempts, window seconds).
    LOGIN_LIMIT_PER_IP = (30, 600)
    LOGIN_LIMIT_PER_ACCOUNT = (8, 900)
    RESET_LIMIT_PER_IP = (10, 3600)
    RESET_LIMIT_PER_ACCOUNT = (3, 3600)
    SIGNUP_LIMIT_PER_IP = (20, 3600)
    RESET_TOKEN_HOURS = 2
    VERIFY_TOKEN_HOURS = 72
    INVITE_TOKEN_DAYS = 7
    MIGRATION_WORKERS = int(os.environ.get("CRM_MIGRATION_WORKERS", "4"))
    MIGRATION_BATCH = int(os.environ.get("CRM_MIGRATION_BATCH", "50"))
    MIGRATION_LOCK_TIMEOUT = os.environ.get("CRM_MIGRATION_LOCK_TIMEOUT", "5s")
    # Tenant schemas kept ready ahead of sign-ups (refilled by a job); 0 turns the pool off.
    SCHEMA_POOL_SIZE = int(os.environ.get("CRM_SCHEMA_POOL_SIZE", "5"))
    DEV_PAGES = ENV_NAME != "production"
    # Billing (saas.billing): off, with seats unlimited, while STRIPE_SECRET_KEY is empty. The prices
    # (or plans) are per seat; STRIPE_API_BASE points the client elsewhere (tests: localstripe).
    STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
    STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
    STRIPE_PRICE_MONTHLY = os.environ.get("STRIPE_PRICE_MONTHLY", "")
    STRIPE_PRICE_YEARLY = os.environ.get("STRIPE_PRICE_YEARLY", "")
    STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "")
    # Sensitive fields (saas.crypto): Fernet keys, newest first, comma-separated; and the blind-index
    # secret. Required in production; elsewhere, when unset, development keys derive from SECRET_KEY.
    CRM_ENCRYPTION_KEYS = os.environ.get("CRM_ENCRYPTION_KEYS", "")
    CRM_BLIND_INDEX_KEY = os.environ.get("CRM_BLIND_INDEX_KEY", "")
    TESTING = False


class TestConfig(Config):
    TESTING = True
    SCHEMA_POOL_SIZE = 0  # tests that use the pool fill it themselves
    STRIPE_SECRET_KEY = ""  # billing off unless a test turns it on
    STRIPE_WEBHOOK_SECRET = ""
    WTF_CSRF_ENABLED = True
    SQLALCHEMY_ENGINE_OPTIONS = {**Config.SQLALCHEMY_ENGINE_OPTIONS, "pool_size": 5, "max_overflow": 5}
