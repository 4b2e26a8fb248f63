"""Fixtures: a real PostgreSQL and Redis (from DATABASE_URL/REDIS_URL, else the embedded ones).

Each pytest-xdist worker gets its own database and Redis db number. Tests make
their own tenants and people with unique names, so they need no cleanup between
them; Redis (rate limits, queues) is flushed before each test.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.factories import Factory, unique

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
WORKER_NO = int(re.sub(r"\D", "", WORKER) or 0)


def _test_database(base_url: str) -> str:
    """Create a fresh database crm_test_<worker> on the server of base_url; return its URL."""
    url = make_url(base_url.replace("postgresql+psycopg://", "postgresql://"))
    name = f"crm_test_{WORKER}"
    admin = url.set(drivername="postgresql", database="postgres")
    dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    return url.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)


def _services() -> tuple[str, str]:
    from saas.embedded import start_postgres, start_redis

    db_url = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    root = Path(os.environ.get("CRM_TEST_INSTANCE", Path(tempfile.gettempdir()) / "crm-test-embedded"))
    if not db_url:
        db_url = start_postgres(root / "pg", "postgres")
    if not redis_url:
        redis_url = start_redis(root / f"redis-{WORKER}")
    else:
        redis_url = re.sub(r"/\d*$", "", redis_url.rstrip("/")) + f"/{1 + WORKER_NO % 15}"
    return _test_database(db_url), redis_url


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    db_url, redis_url = _services()
    os.environ["DATABASE_URL"] = db_url
    os.environ["REDIS_URL"] = redis_url
    from saas import create_app
    from saas.config import TestConfig
    from saas.extensions import db
    from saas.migrate import upgrade_shared

    mail_dir = tmp_path_factory.mktemp("mail")
    app = create_app(TestConfig, MAIL_DIR=str(mail_dir), SERVER_NAME="crm.localhost")
    with app.app_context():
        upgrade_shared(db.engine)
    return app


@pytest.fixture(autouse=True)
def _fresh_redis(request):
    if "app" not in request.fixturenames:
        yield
        return
    app = request.getfixturevalue("app")
    from redis import Redis

    Redis.from_url(app.config["REDIS_URL"]).flushdb()
    yield


@pytest.fixture
def ctx(app):
    """An app context with a clean session, unbound from any tenant afterwards."""
    from saas import tenancy
    from saas.extensions import db

    with app.app_context():
        yield
        db.session.rollback()
        db.session.remove()
        tenancy.unbind()


@pytest.fixture
def factory(app) -> Factory:
    return Factory(app)


@pytest.fixture
def client(app):
    from tests.factories import CsrfClient

    app.test_client_class = CsrfClient
    return app.test_client()


@pytest.fixture
def make_client(app):
    from tests.factories import CsrfClient

    app.test_client_class = CsrfClient
    return app.test_client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def s3(app, monkeypatch):
    """moto's standalone S3 API server on a free port; the app's store points at a fresh bucket."""
    pytest.importorskip("moto.server")
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    bucket = unique("crm-files-").lower().replace(" ", "")
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=bucket)
    monkeypatch.setitem(app.config, "CRM_S3_BUCKET", bucket)
    monkeypatch.setitem(app.config, "CRM_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setitem(app.config, "CRM_S3_PREFIX", "attachments")
    yield client, bucket
    server.stop()
