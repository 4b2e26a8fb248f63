"""The REST API (/api/v1/<slug>/...) and the personal API tokens that open it."""
