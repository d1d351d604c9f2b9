"""A single-node Apache Kafka (KRaft) on loopback, from Maven Central jars: no Docker needed.

The jars are fetched with Maven once into a cache that later runs reuse; an unpacked
Apache Kafka in ``KAFKA_HOME`` is used instead when set.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

KAFKA_VERSION = "4.4.0"
SLF4J_BINDING = ("org.slf4j", "slf4j-simple", "1.7.36")


class LocalKafkaError(Exception):
    """The broker's jars could not be fetched, or the broker did not start or stop."""


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sharpapi-ingestor"


def classpath(environ: Mapping[str, str] = os.environ, version: str = KAFKA_VERSION) -> str:
    """The broker's classpath, fetching ``kafka_2.13:<version>`` and an slf4j binding on first use."""
    if environ.get("KAFKA_HOME"):
        libs = Path(environ["KAFKA_HOME"]) / "libs"
        if not libs.is_dir():
            raise LocalKafkaError(f"KAFKA_HOME has no libs folder: {libs}")
        return f"{libs}/*"
    home = cache_dir(environ) / f"kafka-{version}"
    libs = home / "libs"
    if not (libs / ".complete").exists():
        _fetch(home, version)
    return f"{libs}/*"


def _fetch(home: Path, version: str) -> None:
    if shutil.which("mvn") is None:
        raise LocalKafkaError("Maven (mvn) is needed to fetch Kafka's jars; install it or set KAFKA_HOME")
    home.mkdir(parents=True, exist_ok=True)
    group, artifact, binding_version = SLF4J_BINDING
    (home / "pom.xml").write_text(
        f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.sharpapi-ingestor</groupId><artifactId>kafka-broker</artifactId><version>{version}</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{version}</version></dependency>
    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{binding_version}</version></dependency>
  </dependencies>
</project>
"""
    )
    staging = home / f"libs.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    command = ["mvn", "-q", "-B", "dependency:copy-dependencies", f"-DoutputDirectory={staging}", "-DincludeScope=runtime"]
    done = subprocess.run(command, cwd=home, capture_output=True, text=True)
    if done.returncode != 0:
        raise LocalKafkaError(f"fetching Kafka {version} with Maven failed:\n{done.stdout}{done.stderr}")
    (staging / ".complete").touch()
    try:
        staging.rename(home / "libs")
    except OSError:  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
    except OSError:
        return False
    return True


def _has_brokers(bootstrap_servers: str) -> bool:
    try:
        return bool(AdminClient({"bootstrap.servers": bootstrap_servers}).list_topics(timeout=2.0).brokers)
    except KafkaException:
        return False


class LocalKafka:
    """One broker+controller node; ``start`` and ``stop`` may alternate, keeping ports and data."""

    def __init__(self, data_dir: Path, port: int = 0, controller_port: int = 0, heap: str = "512m") -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        # The controller's address is part of the formatted metadata: a restart must reuse it.
        remembered = data_dir / "controller.port"
        self.controller_port = controller_port or (int(remembered.read_text()) if remembered.exists() else free_port())
        self.heap = heap
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    def start(self, timeout: float = 90.0) -> None:
        cp = classpath()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        properties = self.data_dir / "server.properties"
        properties.write_text(self._properties())
        (self.data_dir / "controller.port").write_text(str(self.controller_port))
        if not (self.data_dir / "logs" / "meta.properties").exists():
            cluster_id = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=").replace("-", "A", 1)
            fmt = [*self._java(cp), "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties), "--standalone"]
            done = subprocess.run(fmt, capture_output=True, text=True)
            if done.returncode != 0:
                raise LocalKafkaError(f"formatting the broker's storage failed:\n{done.stdout}{done.stderr}")
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [*self._java(cp), "kafka.Kafka", str(properties)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_until_ready(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _java(self, cp: str) -> list[str]:
        return ["java", f"-Xmx{self.heap}", "-Djava.awt.headless=true", "-cp", cp]

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise LocalKafkaError(f"the broker exited with {self._process.returncode}; see {self.log_file}")
            if _accepts(self.port) and _has_brokers(self.bootstrap_servers):
                return
            time.sleep(0.1)
        self.stop()
        raise LocalKafkaError(f"the broker did not answer within {timeout:g} s; see {self.log_file}")

    def _properties(self) -> str:
        return f"""process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{self.controller_port}
listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={self.data_dir / "logs"}
auto.create.topics.enable=false
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=16777216
log.cleaner.backoff.ms=200
"""

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
