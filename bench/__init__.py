"""Benchmarks behind `make bench` (`python -m bench`), written to docs/PERFORMANCE.md.

Each benchmark module (bench/<name>.py, listed in BENCHMARKS) has a TITLE and a
``run(ctx) -> dict`` that returns its section: run details and one or more
tables of rows, each figure beside its target and a baseline. Results are kept
in docs/bench-results.json; the report is regenerated from all sections there,
so running only some benchmarks keeps the others' figures.

Servers: DATABASE_URL / REDIS_URL when set, else embedded ones in a scratch
instance folder. Every benchmark works in a database of its own (crm_bench,
dropped and created afresh), never in the app's.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# name -> module; later issues add theirs here (order = order in the report).
BENCHMARKS = {
    "signup": "bench.signup",
    "migrations": "bench.migrations",
    "million": "bench.million",
    "imports": "bench.imports",
    "backups": "bench.backups",
}


# --- figures -------------------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    """Linear-interpolated percentile (pct in 0..100) of a non-empty list."""
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    rank = (len(data) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (rank - low)


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50": percentile(ms, 50),
        "p95": percentile(ms, 95),
        "max": max(ms),
        "mean": statistics.fmean(ms),
    }


def row(
    measure: str,
    value: float,
    unit: str,
    target: float | None = None,
    baseline: float | None = None,
    baseline_label: str = "",
    higher_is_better: bool = False,
    note: str = "",
) -> dict[str, Any]:
    """One line of a table: a figure, its target (<=, or >= when higher is better) and its baseline."""
    met = None
    if target is not None:
        met = value >= target if higher_is_better else value <= target
    return {
        "measure": measure,
        "value": value,
        "unit": unit,
        "target": target,
        "higher_is_better": higher_is_better,
        "met": met,
        "baseline": baseline,
        "baseline_label": baseline_label,
        "note": note,
    }


class Stopwatch:
    def __init__(self) -> None:
        self.laps: list[float] = []

    @contextmanager
    def lap(self) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.laps.append(time.perf_counter() - start)


def log(msg: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {msg}", flush=True)


# --- servers and databases -----------------------------------------------------------------------


def _plain(url: str) -> str:
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", url)


@dataclass
class Context:
    """What a benchmark needs: fresh databases on the benchmark server, an app on them, the run's mode."""

    quick: bool = False
    database: str = "crm_bench"
    server_url: str = ""  # SQLAlchemy URL of any database on the server
    redis_url: str = ""
    embedded: bool = False
    instance: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "crm-bench-embedded")
    apps: list[Any] = field(default_factory=list)

    @classmethod
    def start(cls, quick: bool = False, database: str = "crm_bench") -> Context:
        from saas.embedded import ensure_services

        ctx = cls(quick=quick, database=database)
        ctx.instance = Path(os.environ.get("CRM_BENCH_INSTANCE", ctx.instance))
        ctx.embedded = not os.environ.get("DATABASE_URL")
        db_url, redis_url = ensure_services(ctx.instance, "postgres")
        ctx.server_url, ctx.redis_url = db_url, redis_url
        return ctx

    def admin_dsn(self) -> str:
        from sqlalchemy.engine import make_url

        url = make_url(_plain(self.server_url)).set(database="postgres")
        return url.render_as_string(hide_password=False)

    def fresh_database(self) -> str:
        """Drop and create the benchmark database; return its SQLAlchemy (psycopg) URL."""
        import psycopg
        from sqlalchemy.engine import make_url

        self.close_apps()
        with psycopg.connect(self.admin_dsn(), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{self.database}" with (force)')
            conn.execute(f'create database "{self.database}"')
        url = make_url(_plain(self.server_url)).set(drivername="postgresql+psycopg", database=self.database)
        return url.render_as_string(hide_password=False)

    def app(self, **overrides: Any) -> Any:
        """A fresh benchmark database, the shared schema at head, and an app on it."""
        from saas import create_app
        from saas.config import Config
        from saas.extensions import db
        from saas.migrate import upgrade_shared

        url = self.fresh_database()
        os.environ["DATABASE_URL"] = url
        os.environ["REDIS_URL"] = self.redis_url
        mail_dir = self.instance / "mail"
        app = create_app(Config, MAIL_DIR=str(mail_dir), **overrides)
        with app.app_context():
            upgrade_shared(db.engine)
        self.apps.append(app)
        return app

    def env(self) -> dict[str, str]:
        """Environment for a `crm` subprocess on the benchmark database."""
        env = dict(os.environ)
        env["DATABASE_URL"] = os.environ["DATABASE_URL"]
        env["REDIS_URL"] = self.redis_url
        return env

    def close_apps(self) -> None:
        from saas.extensions import db

        for app in self.apps:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
        self.apps.clear()

    def drop_database(self) -> None:
        import psycopg

        self.close_apps()
        with psycopg.connect(self.admin_dsn(), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{self.database}" with (force)')


def machine(ctx: Context) -> dict[str, Any]:
    """Where the figures were measured."""
    import psycopg

    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    with psycopg.connect(ctx.admin_dsn()) as conn:
        pg = conn.execute("show server_version").fetchone()[0]
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 0
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    return {
        "nproc": cpus,
        "load_1m_at_end": load,
        "cpu": cpu_model,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "postgresql": pg,
        "postgresql_where": "embedded (pgserver)" if ctx.embedded else "DATABASE_URL server",
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }


def make_tenant(
    app: Any, name: str, slug: str, owner_email: str, password: str = "x" * 12
) -> tuple[Any, int]:
    """A workspace made as sign-up makes it, with its owner: (the tenant to bind, the owner's user id)."""
    from saas import accounts, tenancy
    from saas.extensions import db
    from saas.models import User
    from saas.signup import provision

    with app.test_request_context():
        owner = User(email=owner_email, name="Bench Owner", password_hash=accounts.hash_password(password))
        db.session.add(owner)
        db.session.commit()
        tenant = provision(name, slug, owner)
        db.session.commit()
        bound = tenancy.BoundTenant(tenant.id, tenant.schema_name, tenant.slug)
        owner_id = owner.id
        db.session.remove()
    return bound, owner_id


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    laps = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        laps.append(time.perf_counter() - start)
    return laps


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
