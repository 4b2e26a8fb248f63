"""Alembic env for the shared schema, used by `crm db revision` (the runner configures its own)."""

from alembic import context

from saas.extensions import db
from saas.migrate import import_tenant_models

import_tenant_models()
conn = context.config.attributes["connection"]
context.configure(
    connection=conn,
    target_metadata=db.metadata,
    include_schemas=True,
    include_name=lambda name, type_, _p: type_ != "schema" or name == "public",
    include_object=lambda obj, _n, type_, _r, _c: type_ != "table" or obj.schema == "public",
    version_table_schema="public",
)
with context.begin_transaction():
    context.run_migrations()
