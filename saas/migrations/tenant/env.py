"""Alembic env for the tenant track, used by `crm db revision` against a scratch tenant schema.

The models' placeholder schema is copied onto the scratch schema's real name so
autogenerate compares like with like; `crm db revision` then writes
`schema=tenant_schema()` in place of that name.
"""

from alembic import context
from sqlalchemy import MetaData

from saas.extensions import db
from saas.migrate import import_tenant_models
from saas.tenancy import PLACEHOLDER

import_tenant_models()
conn = context.config.attributes["connection"]
schema = context.config.attributes["schema"]
target = MetaData(naming_convention=db.metadata.naming_convention)
for table in db.metadata.sorted_tables:
    if table.schema == PLACEHOLDER:
        table.to_metadata(target, schema=schema)
context.configure(
    connection=conn,
    target_metadata=target,
    include_schemas=True,
    include_name=lambda name, type_, _p: type_ != "schema" or name == schema,
    include_object=lambda obj, name, type_, _r, _c: (
        (type_ != "table" or obj.schema == schema) and name != "alembic_version"
    ),
    version_table_schema=schema,
)
with context.begin_transaction():
    context.run_migrations()
