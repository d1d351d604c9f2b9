"""``ingestor topics`` against a real broker: creates, is idempotent, reports drift."""

from __future__ import annotations

import os
import subprocess
import sys

from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from ingestor.settings import Settings
from ingestor.topics import KNOWN_JOB_TYPES, plan, reconcile
from tests.conftest import wait_for


def run_topics(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "TOPIC_PREFIX": settings.topic_prefix,
        "TOPIC_PARTITIONS": "2",
        "RAW_RETENTION_MS": "3600000",
    }
    return subprocess.run([sys.executable, "-m", "ingestor", "topics", *args], env=environment, capture_output=True, text=True, timeout=120)


def test_creates_every_topic_with_its_configuration_then_finds_them_ok(settings: Settings) -> None:
    first = run_topics(settings)
    second = run_topics(settings)

    names = [spec.name for spec in plan(settings)]
    assert len(names) == 3 + len(KNOWN_JOB_TYPES)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [f"created  {name}" for name in names]
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == [f"ok       {name}" for name in names]
    admin = AdminClient(settings.kafka_config())
    resources = [
        ConfigResource(ResourceType.TOPIC, name)
        for name in (settings.raw_topic, settings.dlq_topic, settings.stats_topic, settings.job_topic("hr_parse_resume"))
    ]
    configs = {resource.name: future.result() for resource, future in admin.describe_configs(resources).items()}
    assert configs[settings.raw_topic]["cleanup.policy"].value == "delete"
    assert configs[settings.raw_topic]["retention.ms"].value == "3600000"
    assert configs[settings.dlq_topic]["cleanup.policy"].value == "delete"
    assert configs[settings.stats_topic]["cleanup.policy"].value == "compact"
    assert configs[settings.job_topic("hr_parse_resume")]["cleanup.policy"].value == "compact"
    metadata = admin.list_topics(timeout=10)
    assert {len(metadata.topics[name].partitions) for name in names} == {2}


def test_check_reports_missing_topics_and_creates_nothing(settings: Settings) -> None:
    checked = run_topics(settings, "--check")

    assert checked.returncode == 1
    assert checked.stdout.splitlines()[0] == f"missing  {settings.raw_topic}"
    assert (
        checked.stderr == f"{3 + len(KNOWN_JOB_TYPES)} of {3 + len(KNOWN_JOB_TYPES)} topics are missing or differ from the configuration\n"
    )
    assert settings.raw_topic not in AdminClient(settings.kafka_config()).list_topics(timeout=10).topics


def test_drift_is_reported_with_what_differs(settings: Settings) -> None:
    admin = AdminClient(settings.kafka_config())
    wrong = NewTopic(settings.job_topic("content_translate"), 1, 1, config={"cleanup.policy": "delete"})
    admin.create_topics([wrong])[wrong.topic].result()

    done = run_topics(settings)

    assert done.returncode == 1
    lines = done.stdout.splitlines()
    at = lines.index(f"drift    {settings.job_topic('content_translate')}")
    assert lines[at + 1 : at + 3] == ["         partitions is 1, want 2", "         cleanup.policy is delete, want compact"]
    assert f"created  {settings.raw_topic}" in lines


def test_job_topics_created_on_first_sight_are_checked_too(settings: Settings) -> None:
    admin = AdminClient(settings.kafka_config())
    seen = NewTopic(settings.job_topic("video_transcribe"), settings.partitions, -1, config={"cleanup.policy": "compact"})
    admin.create_topics([seen])[seen.topic].result()
    wait_for(lambda: seen.topic in admin.list_topics(timeout=10).topics, "the new topic in the metadata")

    findings = reconcile(admin, settings, create=True)

    assert [(f.topic, f.state) for f in findings if f.topic == seen.topic] == [(seen.topic, "ok")]


def test_an_unreachable_broker_is_a_clear_error(settings: Settings) -> None:
    environment = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "RDKAFKA_SOCKET_CONNECTION_SETUP_TIMEOUT_MS": "1000"}
    done = subprocess.run(
        [sys.executable, "-m", "ingestor", "topics"], env=environment, capture_output=True, text=True, timeout=120, check=False
    )

    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith("ingestor topics: Kafka at 127.0.0.1:1: ")
