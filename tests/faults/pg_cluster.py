"""A throwaway PostgreSQL cluster, for the faults that stop the server.

Never the shared server on 5432: the machine's binaries (``initdb``, ``pg_ctl``, as
``scripts/ensure-postgres`` finds them) make a cluster in a temporary directory on a free
port; :meth:`PgCluster.stop` and :meth:`PgCluster.start` take it down and back.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from wa_bridge.bus.embedded import free_port

__all__ = ["PgCluster", "pg_bindir", "throwaway_cluster"]

USER = ("-U", "postgres")


def pg_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin``, else where ``initdb`` is on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if found:
        return Path(found[-1])
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_postgres() -> list[str]:
    """initdb and postgres refuse to run as root: run them as the ``postgres`` user."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@dataclass
class PgCluster:
    bindir: Path
    data: Path
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*_as_postgres(), str(self.bindir / "pg_ctl"), "-D", str(self.data), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )

    def start(self) -> None:
        self._pg_ctl(
            "-l",
            str(self.data / "server.log"),
            "-w",
            "-o",
            f"-p {self.port} -h 127.0.0.1 -k {self.data}",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """``fast``: clients disconnected, clean shutdown; ``immediate``: a crash (the next
        start replays the WAL)."""
        self._pg_ctl("-m", mode, "-w", "stop")

    def createdb(self, name: str) -> None:
        subprocess.run(
            [str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), *USER, name],
            check=True,
            timeout=30,
        )


@contextmanager
def throwaway_cluster() -> Iterator[PgCluster]:
    """A started cluster (trust auth, user postgres), removed on exit."""
    bindir = pg_bindir()
    if bindir is None:
        raise RuntimeError("no PostgreSQL binaries (initdb, pg_ctl) on this machine")
    data = Path(tempfile.mkdtemp(prefix="wa-bridge-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    subprocess.run(
        [*_as_postgres(), str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )
    cluster = PgCluster(bindir, data, free_port())
    cluster.start()
    try:
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already down
            cluster.stop("immediate")
        shutil.rmtree(data, ignore_errors=True)
