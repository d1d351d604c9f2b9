"""The topics the ingestor writes, their configuration, and creating or checking them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from ingestor.payloads import TYPE_NAME
from ingestor.settings import Settings

# The SDK enums' job types plus later additions (FACTS.md); unknown types get topics on first sight.
KNOWN_JOB_TYPES = (
    "content_detect_address",
    "content_detect_ai",
    "content_detect_emails",
    "content_detect_phones",
    "content_detect_profanities",
    "content_detect_spam",
    "content_detect_urls",
    "content_keywords",
    "content_paraphrase",
    "content_proofread",
    "content_summarize",
    "content_translate",
    "ecommerce_product_categories",
    "ecommerce_product_description",
    "ecommerce_product_intro",
    "ecommerce_review_sentiment",
    "ecommerce_thank_you_email",
    "hr_job_description",
    "hr_parse_resume",
    "hr_related_job_positions",
    "hr_related_skills",
    "hr_resume_job_match_score",
    "invoice_parse",
    "seo_generate_tags",
    "tth_hospitality_product_categories",
    "tth_review_sentiment",
    "tth_ta_product_categories",
)


class TopicUnavailable(Exception):
    """A job topic could not be found or created; ``retriable`` says whether trying later may help."""

    def __init__(self, detail: str, *, retriable: bool) -> None:
        super().__init__(detail)
        self.retriable = retriable


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int  # -1: the broker's default.replication.factor
    config: Mapping[str, str] = field(default_factory=dict)

    def new_topic(self) -> NewTopic:
        return NewTopic(self.name, self.partitions, self.replication_factor, config=dict(self.config))


@dataclass(frozen=True)
class Finding:
    topic: str
    state: str  # created, ok, missing, drift
    details: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.state:8} {self.topic}" + "".join(f"\n         {detail}" for detail in self.details)


def _spec(settings: Settings, name: str, config: Mapping[str, str]) -> TopicSpec:
    isr = {} if settings.min_insync_replicas is None else {"min.insync.replicas": str(settings.min_insync_replicas)}
    return TopicSpec(name, settings.partitions, settings.replication_factor, {**config, **isr})


def job_topic(settings: Settings, job_type: str) -> TopicSpec:
    return _spec(settings, settings.job_topic(job_type), {"cleanup.policy": "compact"})


def plan(settings: Settings, existing: Iterable[str] = ()) -> list[TopicSpec]:
    """Every topic the ingestor needs, plus the job topics already created on first sight."""
    prefix = settings.job_topic("")
    seen = {name[len(prefix) :] for name in existing if name.startswith(prefix) and TYPE_NAME.fullmatch(name[len(prefix) :])}
    return [
        _spec(settings, settings.raw_topic, {"cleanup.policy": "delete", "retention.ms": str(settings.raw_retention_ms)}),
        _spec(settings, settings.dlq_topic, {"cleanup.policy": "delete", "retention.ms": str(settings.dlq_retention_ms)}),
        _spec(settings, settings.stats_topic, {"cleanup.policy": "compact"}),
        *(job_topic(settings, job_type) for job_type in sorted(seen.union(KNOWN_JOB_TYPES))),
    ]


def reconcile(admin: AdminClient, settings: Settings, *, create: bool, timeout: float = 30.0) -> list[Finding]:
    """Create missing topics (when ``create``) and report any whose settings differ from the plan."""
    metadata = admin.list_topics(timeout=timeout)
    specs = plan(settings, metadata.topics)
    missing = [spec for spec in specs if spec.name not in metadata.topics]
    findings = {spec.name: Finding(spec.name, "missing") for spec in missing}
    if create and missing:
        futures = admin.create_topics([spec.new_topic() for spec in missing], request_timeout=timeout)
        for name, future in futures.items():
            try:
                future.result()
                findings[name] = Finding(name, "created")
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
                findings[name] = Finding(name, "ok")
    present = [spec for spec in specs if spec.name in metadata.topics]
    if present:
        resources = [ConfigResource(ResourceType.TOPIC, spec.name) for spec in present]
        described = {
            resource.name: future.result() for resource, future in admin.describe_configs(resources, request_timeout=timeout).items()
        }
        for spec in present:
            topic = metadata.topics[spec.name]
            details = _drift(spec, len(topic.partitions), len(topic.partitions[0].replicas), described[spec.name])
            findings[spec.name] = Finding(spec.name, "drift" if details else "ok", details)
    return [findings[spec.name] for spec in specs]


def _drift(spec: TopicSpec, partitions: int, replicas: int, configs: Mapping[str, object]) -> tuple[str, ...]:
    details = []
    if partitions != spec.partitions:
        details.append(f"partitions is {partitions}, want {spec.partitions}")
    if spec.replication_factor != -1 and replicas != spec.replication_factor:
        details.append(f"replication factor is {replicas}, want {spec.replication_factor}")
    for key, want in spec.config.items():
        entry = configs.get(key)
        have = getattr(entry, "value", None)
        if have != want:
            details.append(f"{key} is {have}, want {want}")
    return tuple(details)


class JobTopics:
    """Find or create the compacted topic of each job type, once per type and process."""

    def __init__(self, admin: AdminClient, settings: Settings) -> None:
        self._admin = admin
        self._settings = settings
        self._ready: dict[str, asyncio.Task[str]] = {}

    async def ensure(self, job_type: str) -> str:
        task = self._ready.get(job_type)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = self._ready[job_type] = asyncio.ensure_future(self._find_or_create(job_type))
        return await asyncio.shield(task)

    async def _find_or_create(self, job_type: str) -> str:
        spec = job_topic(self._settings, job_type)
        try:
            metadata = await asyncio.to_thread(self._admin.list_topics, timeout=self._settings.ack_timeout_ms / 1000)
        except KafkaException as exc:
            raise TopicUnavailable(f"cannot list topics: {exc.args[0].str()}", retriable=True) from exc
        if spec.name in metadata.topics:
            return spec.name
        if not self._settings.auto_create_job_topics:
            raise TopicUnavailable(f"no topic {spec.name} and AUTO_CREATE_JOB_TOPICS is off", retriable=False)
        futures: dict[str, Future[None]] = self._admin.create_topics([spec.new_topic()])
        try:
            await asyncio.wrap_future(futures[spec.name])
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise TopicUnavailable(f"cannot create {spec.name}: {error.str()}", retriable=error.retriable()) from exc
        return spec.name
