"""Tenant backups: one signed file per backup (the schema's rows and the tenant's attachments),
each proven by a restore into a scratch schema before it is marked good.

models.py the shared `backups` table; archive.py the file (write, sign, read, check); dump.py and
restore.py move rows between a schema and the file; services.py what jobs, pages and the CLI call.
"""
