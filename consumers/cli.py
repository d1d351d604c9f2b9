"""The ``consumers`` command: list the services, run one, run the analytics."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from consumers import categories, failures, job_store, resumes, translations
from consumers.service import Service
from consumers.settings import Settings, SettingsError

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient

SERVICES: dict[str, Service] = {
    service.name: service for service in (job_store.SERVICE, translations.SERVICE, resumes.SERVICE, categories.SERVICE, failures.SERVICE)
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="consumers", description="Consumer services of the SharpAPI job topics.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the services, their topics and tables")
    run = commands.add_parser("run", help="run one service until SIGTERM or Ctrl-C")
    run.add_argument("service", choices=sorted(SERVICES))
    run.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    commands.add_parser("analytics", help="per-minute job stats by stream processing until SIGTERM or Ctrl-C")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "list":
        for service in SERVICES.values():
            print(f"{service.name:14} {service.description}")
        return 0
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        print(f"consumers: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "analytics":
        return run_analytics(settings)
    return run_service(SERVICES[args.service], settings, args.metrics_port)


def run_service(service: Service, settings: Settings, metrics_port: int | None) -> int:
    from prometheus_client import start_http_server

    from consumers import logs
    from consumers.decoding import Decoder
    from consumers.metrics import Metrics
    from consumers.runner import Runner
    from consumers.store import create_tables, engine_for
    from schemas import avro

    logs.configure(settings.log_level, settings.log_format)
    engine = engine_for(settings.database_url)
    create_tables(engine, service.tables)
    metrics = Metrics()
    if metrics_port is not None:
        start_http_server(metrics_port, registry=metrics.registry)
    decoder = Decoder(avro.load(avro.JOB_EVENT), registry=_registry(settings))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    Runner(service, settings, engine, decoder, metrics).run(stop)
    engine.dispose()
    return 0


def run_analytics(settings: Settings) -> int:
    from consumers import analytics, logs
    from consumers.decoding import Decoder
    from consumers.store import create_tables, engine_for
    from schemas import avro

    logs.configure(settings.log_level, settings.log_format)
    engine = engine_for(settings.database_url)
    create_tables(engine, [analytics.JOB_STATS])
    registry = _registry(settings)
    analytics.build(settings, engine, Decoder(avro.load(avro.RAW_DELIVERY), registry=registry), registry).run()  # stops on SIGTERM/SIGINT
    engine.dispose()
    return 0


def _registry(settings: Settings) -> SchemaRegistryClient | None:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    if not settings.schema_registry_url:
        return None
    config = {"url": settings.schema_registry_url}
    if settings.schema_registry_user_info:
        config["basic.auth.user.info"] = settings.schema_registry_user_info
    return SchemaRegistryClient(config)
