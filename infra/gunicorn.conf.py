"""gunicorn settings for a web node: `gunicorn -c infra/gunicorn.conf.py saas.wsgi:app`.

Web nodes are stateless (sessions are signed cookies, jobs go to Redis, files to S3), so scale
out by running more of them behind the proxy. Everything here can be overridden by environment
variables; see README.md.
"""

import multiprocessing
import os

wsgi_app = "saas.wsgi:app"  # ProxyFix is applied there (X-Forwarded-For / -Proto / -Host)
bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"

# Threads overlap the waits on PostgreSQL and Redis. Each process has its own SQLAlchemy pool
# (pool_size 10 + overflow 10): keep workers x threads under what PgBouncer/PostgreSQL allow.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count() + 1, 8)))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))

# No preload: each worker opens its own database connections after the fork.
preload_app = False
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 25
keepalive = 5
# Recycle workers now and then so a slow leak cannot grow without bound.
max_requests = 2000
max_requests_jitter = 200

# Logs to stdout/stderr for the container runtime or journald.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s" rid=%({x-request-id}o)s'
