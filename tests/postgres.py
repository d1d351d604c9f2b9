"""A throwaway PostgreSQL server from the Debian packages, for the tests and the benchmark."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ingestor.localkafka import free_port


class PostgresMissing(Exception):
    """PostgreSQL's server binaries are not installed."""


@contextmanager
def postgres_server(*, fsync: bool) -> Iterator[str]:
    """Start a server in a temporary directory on a free port; yield its URL; stop and delete it."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise PostgresMissing("PostgreSQL's server is not installed (Debian: apt-get install postgresql); .ci/run installs it")
    binaries = found[-1].parent
    home = Path(tempfile.mkdtemp(prefix="ingestor-pg-"))
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(home, "postgres")
    data, port = home / "data", free_port()
    subprocess.run(
        [*as_postgres, str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"], check=True, capture_output=True
    )
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={home} -c fsync={'on' if fsync else 'off'}"
    subprocess.run(
        [*as_postgres, str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(home / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_postgres, str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
