"""``ingestor dev``: the whole stack on one machine without Docker, as child processes.

A local broker, the topics, the ingestor, every consumer service and the analytics. Children run in
sessions of their own so that Ctrl-C reaches only this supervisor, which then stops them in
order: the ingestor (no new acknowledgements), the consumers (commit), the broker last.
If a child dies, the stack says so at once and stops: a half-running stack hides failures.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
from confluent_kafka.admin import AdminClient

from ingestor.localkafka import LocalKafka
from ingestor.settings import Settings
from ingestor.topics import reconcile

CHILDREN_STOP_S = 12.0  # then the broker gets the rest of the 20 s that Ctrl-C promises
BROKER_STOP_S = 6.0


@dataclass
class Child:
    name: str
    command: Sequence[str]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)


def webhook_secret(data_dir: Path, environ: Mapping[str, str]) -> str:
    """SHARPAPI_WEBHOOK_SECRET if set, else one generated once and kept in the data directory."""
    if environ.get("SHARPAPI_WEBHOOK_SECRET"):
        return environ["SHARPAPI_WEBHOOK_SECRET"]
    kept = data_dir / "webhook-secret"
    if not kept.exists():
        kept.write_text(secrets.token_urlsafe(32))
        kept.chmod(0o600)
    return kept.read_text().strip()


def consumer_services() -> list[str]:
    listed = subprocess.run([sys.executable, "-m", "consumers", "list"], capture_output=True, text=True, check=True)
    return [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]


class Stack:
    def __init__(self, data_dir: Path, port: int, kafka_port: int, environ: Mapping[str, str]) -> None:
        self.data_dir = data_dir
        self.port = port
        self.environ = environ
        self.broker = LocalKafka(data_dir / "kafka", port=kafka_port)
        self.children: list[Child] = []
        self._stopping = threading.Event()
        self._output = threading.Lock()

    def run(self) -> int:
        """Run until SIGINT or SIGTERM (exit 0) or until a child dies (exit 1)."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self._stopping.set())
        self.data_dir.mkdir(parents=True, exist_ok=True)
        secret = webhook_secret(self.data_dir, self.environ)
        database_url = f"sqlite:///{self.data_dir / 'jobs.db'}"
        environment = {
            **self.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap_servers,
            "SHARPAPI_WEBHOOK_SECRET": secret,
            "DATABASE_URL": database_url,
            "ANALYTICS_STATE_DIR": str(self.data_dir / "analytics-state"),
        }
        self._say("stack", f"starting Kafka on {self.broker.bootstrap_servers} (data in {self.broker.data_dir})")
        self.broker.start()
        try:
            settings = Settings.from_env(environment)
            for finding in reconcile(AdminClient(settings.kafka_config()), settings, create=True):
                if finding.state != "ok":
                    self._say("topics", str(finding))
            python = [sys.executable, "-m"]
            self.children = [
                Child("ingestor", [*python, "ingestor", "serve", "--host", "127.0.0.1", "--port", str(self.port)]),
                *(Child(name, [*python, "consumers", "run", name]) for name in consumer_services()),
                Child("analytics", [*python, "consumers", "analytics"]),
            ]
            for child in self.children:
                self._start(child, environment)
            if not self._ready(f"http://127.0.0.1:{self.port}/readyz"):
                return 1
            self._say("stack", f"webhooks: http://127.0.0.1:{self.port}/webhooks/sharpapi  metrics: http://127.0.0.1:{self.port}/metrics")
            self._say("stack", f"Kafka: {self.broker.bootstrap_servers}  database: {database_url}")
            self._say("stack", f"stats: table job_stats, topic {settings.stats_topic}  (ingestor show {settings.stats_topic})")
            self._say("stack", f"signing secret: {secret}  (try: SHARPAPI_WEBHOOK_SECRET={secret} ingestor send --samples)")
            self._say("stack", "ready; Ctrl-C stops everything")
            return self._watch()
        finally:
            self._stop_children()
            self.broker.stop(timeout=BROKER_STOP_S)
            self._say("stack", "stopped")

    def _start(self, child: Child, environment: Mapping[str, str]) -> None:
        child.process = subprocess.Popen(
            child.command, env=dict(environment), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        assert child.process.stdout is not None
        self._say("stack", f"started {child.name} (pid {child.process.pid})")
        threading.Thread(target=self._relay, args=(child.name, child.process.stdout), daemon=True).start()

    def _relay(self, name: str, stream: IO[bytes]) -> None:
        for line in stream:
            self._say(name, line.decode(errors="replace").rstrip())

    def _say(self, name: str, line: str) -> None:
        with self._output:
            print(f"{name:>12} | {line}", flush=True)

    def _ready(self, url: str, timeout: float = 60.0) -> bool:
        """Wait until the ingestor answers ready, a child dies, or Ctrl-C."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stopping.wait(0.2):
            if self._dead() is not None:
                return False
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
        self._say("stack", f"the ingestor was not ready within {timeout:g} s")
        return False

    def _dead(self) -> Child | None:
        for child in self.children:
            assert child.process is not None
            code = child.process.poll()
            if code is not None:
                self._say("stack", f"{child.name} exited with code {code}; stopping the stack")
                return child
        return None

    def _watch(self) -> int:
        while not self._stopping.wait(0.2):
            if self._dead() is not None:
                return 1
        return 0

    def _stop_children(self) -> None:
        deadline = time.monotonic() + CHILDREN_STOP_S
        for child in self.children:  # in order: the ingestor first, so nothing new is acknowledged
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
                try:
                    child.process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self._say("stack", f"{child.name} did not stop in time; killing it")
                    child.process.kill()
                    child.process.wait()


def main(data_dir: Path, port: int, kafka_port: int) -> int:
    return Stack(data_dir.resolve(), port, kafka_port, os.environ).run()
