"""Compliance with data-protection law: export and erase one person's data, export or delete a whole
tenant, the data-retention rule. Modules take part through `saas.compliance.registry`."""
