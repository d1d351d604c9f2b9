from __future__ import annotations

import pytest

from ingestor.settings import Settings, SettingsError


def test_defaults_need_only_the_secret() -> None:
    settings = Settings.from_env({"SHARPAPI_WEBHOOK_SECRET": "s3cret"})

    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.topic_prefix == "sharpapi"
    assert [(secret.label, secret.key) for secret in settings.secrets] == [("current", b"s3cret")]
    assert settings.max_body_bytes == 1_048_576
    assert settings.ack_timeout_ms == 5000
    assert (settings.raw_topic, settings.dlq_topic) == ("sharpapi.webhooks.raw", "sharpapi.webhooks.dlq")
    assert settings.job_topic("content_translate") == "sharpapi.jobs.content_translate"
    assert settings.kafka_config() == {"bootstrap.servers": "127.0.0.1:9092"}


def test_missing_secret_fails_fast_for_serve_but_not_for_topics() -> None:
    with pytest.raises(SettingsError, match="SHARPAPI_WEBHOOK_SECRET is required"):
        Settings.from_env({})
    assert Settings.from_env({}, require_secret=False).secrets == ()


def test_previous_secrets_are_valid_too_in_order() -> None:
    settings = Settings.from_env({"SHARPAPI_WEBHOOK_SECRET": "new", "SHARPAPI_WEBHOOK_PREVIOUS_SECRETS": " old , older ,"})

    assert [(secret.label, secret.key) for secret in settings.secrets] == [
        ("current", b"new"),
        ("previous-1", b"old"),
        ("previous-2", b"older"),
    ]


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "SHARPAPI_WEBHOOK_SECRET": "s",
            "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
            "TOPIC_PREFIX": "acme-prod",
            "MAX_BODY_BYTES": "2048",
            "ACK_TIMEOUT_MS": "2500",
            "RETRY_AFTER_SECONDS": "30",
            "AUTO_CREATE_JOB_TOPICS": "false",
            "TOPIC_PARTITIONS": "6",
            "TOPIC_REPLICATION_FACTOR": "3",
            "TOPIC_MIN_INSYNC_REPLICAS": "2",
            "RAW_RETENTION_MS": "3600000",
            "DLQ_RETENTION_MS": "-1",
            "LOG_LEVEL": "debug",
            "LOG_FORMAT": "text",
            "SCHEMA_REGISTRY_URL": "https://registry:8081",
            "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": "key:secret",
            "RDKAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "RDKAFKA_SASL_MECHANISMS": "PLAIN",
        }
    )

    assert (settings.bootstrap_servers, settings.topic_prefix, settings.max_body_bytes) == ("kafka:9092", "acme-prod", 2048)
    assert (settings.ack_timeout_ms, settings.retry_after_s, settings.auto_create_job_topics) == (2500, 30, False)
    assert (settings.partitions, settings.replication_factor, settings.min_insync_replicas) == (6, 3, 2)
    assert (settings.raw_retention_ms, settings.dlq_retention_ms) == (3_600_000, -1)
    assert (settings.log_level, settings.log_format) == ("DEBUG", "text")
    assert (settings.schema_registry_url, settings.schema_registry_user_info) == ("https://registry:8081", "key:secret")
    assert settings.kafka_config() == {"bootstrap.servers": "kafka:9092", "security.protocol": "SASL_SSL", "sasl.mechanisms": "PLAIN"}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MAX_BODY_BYTES", "1MB", "MAX_BODY_BYTES must be an integer, not '1MB'"),
        ("MAX_BODY_BYTES", "0", "MAX_BODY_BYTES must be at least 1, not 0"),
        ("ACK_TIMEOUT_MS", "10", "ACK_TIMEOUT_MS must be at least 100, not 10"),
        ("AUTO_CREATE_JOB_TOPICS", "maybe", "AUTO_CREATE_JOB_TOPICS must be true or false, not 'maybe'"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT must be json or text, not 'xml'"),
        ("TOPIC_PREFIX", "a b", "TOPIC_PREFIX may hold only letters, digits, '.', '_' and '-', not 'a b'"),
    ],
)
def test_bad_values_are_named_in_the_error(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"SHARPAPI_WEBHOOK_SECRET": "s", name: value})
    assert str(raised.value) == message


def test_secrets_stay_out_of_repr() -> None:
    settings = Settings.from_env({"SHARPAPI_WEBHOOK_SECRET": "s3cret", "RDKAFKA_SASL_PASSWORD": "hunter2"})
    assert "s3cret" not in repr(settings)
    assert "hunter2" not in repr(settings)


def test_consumer_numbers_are_read_and_bad_ones_named() -> None:
    from consumers import settings as consumer_settings

    read = consumer_settings.Settings.from_env({"MAX_RETRY_BACKOFF_MS": "250", "CONSUMER_BATCH_SIZE": "1", "ANALYTICS_GRACE_MS": "0"})
    defaults = consumer_settings.Settings.from_env({})

    assert (read.max_backoff_s, read.batch_size, read.analytics_grace_ms) == (0.25, 1, 0)
    assert (defaults.max_backoff_s, defaults.batch_size, defaults.analytics_grace_ms) == (30.0, 2000, 10_000)
    for name, value, minimum in [("MAX_RETRY_BACKOFF_MS", "0", 1), ("CONSUMER_BATCH_SIZE", "-5", 1), ("ANALYTICS_GRACE_MS", "10s", 0)]:
        with pytest.raises(consumer_settings.SettingsError) as raised:
            consumer_settings.Settings.from_env({name: value})
        assert str(raised.value) == f"{name} must be a whole number, at least {minimum}, not {value!r}"
