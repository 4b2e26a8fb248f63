"""Extension objects, created once and bound in the app factory."""

from __future__ import annotations

from flask_babel import Babel
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx
from sqlalchemy import MetaData

from saas.tenancy import TenantSession

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",  # no schema in names: same in every tenant
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING), session_options={"class_": TenantSession})
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
htmx = Htmx()
