"""The platform console at /console: the operators' view of every tenant (platform admins only)."""
