"""Receive SharpAPI's signed AI-job webhooks and publish them to Kafka as Avro events."""
