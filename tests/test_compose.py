"""docker-compose.yml and the Dockerfile checked statically (no Docker engine runs here)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from consumers import cli as consumers_cli
from consumers import settings as consumer_settings
from ingestor import cli as ingestor_cli
from ingestor.localkafka import KAFKA_VERSION
from ingestor.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
OURS = {name: service for name, service in SERVICES.items() if service["image"].startswith("sharpapi-ingestor:")}
PARSERS = {"ingestor": ingestor_cli.build_parser, "consumers": consumers_cli.build_parser}
# Variables read by libraries rather than by our settings.
LIBRARY_VARIABLES = {"FORWARDED_ALLOW_IPS", "PROMETHEUS_MULTIPROC_DIR"}


class Recording(Mapping[str, str]):
    """An environment that remembers which variables were asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        raise KeyError(name)

    def get(self, name: str, default: Any = None) -> Any:
        self.asked.add(name)
        return default

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def variables_read() -> set[str]:
    ingestor, consumers = Recording(), Recording()
    Settings.from_env(ingestor, require_secret=False)
    consumer_settings.Settings.from_env(consumers)
    return ingestor.asked | consumers.asked | LIBRARY_VARIABLES


@pytest.mark.parametrize("name", sorted(OURS))
def test_every_command_is_a_real_command_of_the_project(name: str) -> None:
    program, *arguments = OURS[name]["command"]
    PARSERS[program]().parse_args(arguments)


def test_the_image_default_command_is_real() -> None:
    [cmd] = re.findall(r"^CMD (.*)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    program, *arguments = yaml.safe_load(cmd)
    PARSERS[program]().parse_args(arguments)


def test_every_consumer_service_and_the_analytics_have_a_container() -> None:
    running = {service["command"][2] for service in OURS.values() if service["command"][:2] == ["consumers", "run"]}
    assert running == set(consumers_cli.SERVICES)
    assert [name for name, service in OURS.items() if service["command"] == ["consumers", "analytics"]] == ["analytics"]


@pytest.mark.parametrize("name", sorted(OURS))
def test_every_variable_given_is_one_the_settings_read(name: str) -> None:
    given = set(OURS[name].get("environment", {}))
    assert given - variables_read() == set()


def test_the_recording_sees_the_documented_variables() -> None:
    assert {"KAFKA_BOOTSTRAP_SERVERS", "SHARPAPI_WEBHOOK_SECRET", "TOPIC_PREFIX", "DATABASE_URL", "MAX_BODY_BYTES"} <= variables_read()


def test_images_are_pinned_and_kafka_matches_the_local_launcher() -> None:
    for name, service in SERVICES.items():
        image = service["image"]
        if name in OURS:
            assert image == "sharpapi-ingestor:local"
        else:
            assert re.fullmatch(r"[a-z0-9/._-]+:\d+\.\d+(\.\d+)?(-[a-z0-9]+)?", image), f"{name}: {image} is not pinned to a version"
    assert {service["image"] for name, service in SERVICES.items() if name.startswith("kafka")} == {f"apache/kafka:{KAFKA_VERSION}"}
    [base] = re.findall(r"^FROM (\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base)
    assert sum("build" in service for service in SERVICES.values()) == 1


def test_published_ports_do_not_collide() -> None:
    published = [str(port).split(":")[0] for service in SERVICES.values() for port in service.get("ports", [])]
    assert sorted(published) == sorted(set(published))
    assert "8000" in published


def test_dependencies_wait_for_health_or_completion() -> None:
    for name, service in SERVICES.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in SERVICES, f"{name} depends on unknown {target}"
            assert rule["condition"] in ("service_healthy", "service_completed_successfully"), f"{name} -> {target}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{target} has no healthcheck"


def test_the_cluster_profile_has_three_brokers_replicating_three_ways() -> None:
    brokers = [name for name in SERVICES if name.startswith("kafka")]
    assert brokers == ["kafka", "kafka-2", "kafka-3"]
    cluster = dict(line.split("=", 1) for line in (ROOT / "cluster.env").read_text().splitlines() if line and not line.startswith("#"))
    assert cluster["TOPIC_REPLICATION_FACTOR"] == "3"
    assert cluster["TOPIC_MIN_INSYNC_REPLICAS"] == "2"
    assert cluster["KAFKA_QUORUM_VOTERS"] == "1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"
    assert len({SERVICES[name]["environment"]["KAFKA_NODE_ID"] for name in brokers}) == 3


def test_the_image_runs_as_a_non_root_user() -> None:
    users = re.findall(r"^USER (\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert users[-1:] == ["app"]
