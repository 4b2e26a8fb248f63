"""The WSGI entry point for production servers: `gunicorn -c infra/gunicorn.conf.py saas.wsgi:app`.

Behind a reverse proxy (nginx, a load balancer), ProxyFix takes the client's address and scheme
from X-Forwarded-For / X-Forwarded-Proto / X-Forwarded-Host, trusting as many proxy hops as
CRM_PROXIES says (default 1). Set CRM_PROXIES=0 when clients reach gunicorn directly, or anyone
could pick their own IP address (and dodge the per-IP rate limits).
"""

from __future__ import annotations

import os

from werkzeug.middleware.proxy_fix import ProxyFix

from saas import create_app

app = create_app()

_hops = int(os.environ.get("CRM_PROXIES", "1"))
if _hops > 0:
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=_hops, x_proto=_hops, x_host=_hops)  # type: ignore[method-assign]
