"""``ingestor dev`` end to end: start, send the samples, see them stored, Ctrl-C, nothing left."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from ingestor.localkafka import free_port
from ingestor.sender import sample_payloads
from tests.conftest import wait_for


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _query(database: Path, query: str) -> tuple[object, ...] | None:
    if not database.exists():
        return None
    with sqlite3.connect(database) as connection:
        try:
            return tuple(connection.execute(query).fetchone())
        except sqlite3.OperationalError:  # the table is not created yet
            return None


def test_dev_runs_the_stack_and_ctrl_c_stops_all_of_it(tmp_path: Path) -> None:
    data, port, kafka_port = tmp_path / "dev", free_port(), free_port()
    environment = {key: value for key, value in os.environ.items() if key != "SHARPAPI_WEBHOOK_SECRET"}
    log = tmp_path / "dev.log"
    with log.open("wb") as out:
        stack = subprocess.Popen(
            [sys.executable, "-m", "ingestor", "dev", "--data-dir", str(data), "--port", str(port), "--kafka-port", str(kafka_port)],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    children: list[int] = []
    try:
        wait_for(lambda: "ready; Ctrl-C stops everything" in log.read_text(), "the stack to be ready", timeout=180, interval=0.2)
        secret = (data / "webhook-secret").read_text().strip()
        assert f"signing secret: {secret}" in log.read_text()
        sent = subprocess.run(
            [sys.executable, "-m", "ingestor", "send", "--samples", "--url", f"http://127.0.0.1:{port}/webhooks/sharpapi"],
            env={**environment, "SHARPAPI_WEBHOOK_SECRET": secret},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.startswith(f"sent {len(sample_payloads())}: {len(sample_payloads())} accepted; 0 retries")
        distinct = len({payload["id"] for payload in sample_payloads()})
        wait_for(
            lambda: _query(data / "jobs.db", "SELECT count(*) FROM jobs") == (distinct,), "every sample job in the job store", timeout=90
        )
        types = len({payload["type"] for payload in sample_payloads()})
        wait_for(
            lambda: (
                _query(data / "jobs.db", "SELECT sum(deliveries), count(DISTINCT job_type) FROM job_stats")
                == (len(sample_payloads()), types)
            ),
            "every sample delivery in the stats",
            timeout=90,
        )
        listed = subprocess.run(["pgrep", "-P", str(stack.pid)], capture_output=True, text=True, check=True)
        children.extend(int(pid) for pid in listed.stdout.split())
        assert len(children) == 8  # the broker, the ingestor, five consumer services and the analytics
    finally:
        stack.send_signal(signal.SIGINT)
        started = time.monotonic()
        code = stack.wait(30)

    assert time.monotonic() - started < 20
    assert code == 0
    assert log.read_text().rstrip().endswith("stack | stopped")
    assert not _listening(port)
    assert not _listening(kafka_port)
    assert [pid for pid in children if _alive(pid)] == []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_child_that_dies_stops_the_stack_and_says_which(tmp_path: Path) -> None:
    data, port, kafka_port = tmp_path / "dev", free_port(), free_port()
    log = tmp_path / "dev.log"
    command = [sys.executable, "-m", "ingestor", "dev", "--data-dir", str(data), "--port", str(port), "--kafka-port", str(kafka_port)]
    with log.open("wb") as out:
        stack = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "ready; Ctrl-C stops everything" in log.read_text(), "the stack to be ready", timeout=180, interval=0.2)
        [pid] = re.findall(r"started translations \(pid (\d+)\)", log.read_text())
        os.kill(int(pid), signal.SIGKILL)
        code = stack.wait(30)
    finally:
        if stack.poll() is None:
            stack.kill()

    assert code == 1
    assert "stack | translations exited with code -9; stopping the stack" in log.read_text()
    assert log.read_text().rstrip().endswith("stack | stopped")
    assert not _listening(port)
