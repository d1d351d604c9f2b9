"""The ``ingestor`` command: serve, topics, send, show, dev, kafka."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ingestor.settings import Settings, SettingsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ingestor", description="SharpAPI webhook ingestor: signed webhooks in, Avro events on Kafka out."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument("--access-log", action="store_true", help="also log uvicorn's access lines")

    topics = commands.add_parser("topics", help="create missing topics and report drift")
    topics.add_argument("--check", action="store_true", help="only check: create nothing; exit 1 when a topic is missing or differs")

    send = commands.add_parser("send", help="send signed webhooks as SharpAPI does")
    send.add_argument("--url", default="http://127.0.0.1:8000/webhooks/sharpapi")
    what = send.add_mutually_exclusive_group(required=True)
    what.add_argument("--file", type=Path, help="a JSON file holding one payload")
    what.add_argument(
        "--samples", nargs="?", const="", metavar="PAYLOADS_JSON", help="the sample payloads (a payloads.json; default: the packaged copy)"
    )
    what.add_argument("--generate", type=int, metavar="N", help="N generated jobs with distinct ids")
    send.add_argument("--concurrency", type=int, default=10)
    send.add_argument("--retry-delay", type=float, default=1.0, help="seconds before the first retry; doubles after each")

    show = commands.add_parser("show", help="print a topic's messages decoded, one JSON object per line")
    show.add_argument("topic", help="a full topic name, e.g. sharpapi.jobs.content_translate")
    show.add_argument("--limit", type=int, default=100)

    dev = commands.add_parser("dev", help="the whole stack without Docker: Kafka, topics, ingestor, consumer services")
    dev.add_argument("--port", type=int, default=8000)
    dev.add_argument("--kafka-port", type=int, default=9092)
    dev.add_argument("--data-dir", type=Path, default=Path(".ingestor-dev"))

    kafka = commands.add_parser("kafka", help="run a local single-node Kafka broker (no Docker needed)")
    kafka.add_argument("--port", type=int, default=9092)
    kafka.add_argument("--data-dir", type=Path, default=Path(".kafka-data"))
    kafka.add_argument("--fetch-only", action="store_true", help="fetch the broker's jars into the cache, then exit")

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "topics":
            return _topics(args)
        if args.command == "send":
            return _send(args)
        if args.command == "show":
            return _show(args)
        if args.command == "dev":
            from ingestor import stack
            from ingestor.localkafka import LocalKafkaError

            try:
                return stack.main(args.data_dir, args.port, args.kafka_port)
            except LocalKafkaError as exc:
                print(f"ingestor dev: {exc}", file=sys.stderr)
                return 1
        return _kafka(args)
    except SettingsError as exc:
        print(f"ingestor: configuration error: {exc}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    Settings.from_env(os.environ)  # fail fast, before uvicorn starts workers that would each fail
    if args.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ingestor-metrics-")
    uvicorn.run(
        "ingestor.app:create_app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=args.access_log,
        log_config=None,
        server_header=False,
    )
    return 0


def _topics(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    from ingestor.topics import reconcile

    settings = Settings.from_env(os.environ, require_secret=False)
    try:
        findings = reconcile(AdminClient(settings.kafka_config()), settings, create=not args.check)
    except KafkaException as exc:
        print(f"ingestor topics: Kafka at {settings.bootstrap_servers}: {exc.args[0].str()}", file=sys.stderr)
        return 1
    for finding in findings:
        print(finding)
    bad = [finding for finding in findings if finding.state in ("missing", "drift")]
    if bad:
        print(f"{len(bad)} of {len(findings)} topics are missing or differ from the configuration", file=sys.stderr)
    return 1 if bad else 0


def _send(args: argparse.Namespace) -> int:
    from ingestor import sender

    settings = Settings.from_env(os.environ)
    try:
        if args.file is not None:
            bodies = [args.file.read_bytes()]
        elif args.samples is not None:
            bodies = [sender.encode(payload) for payload in sender.sample_payloads(Path(args.samples) if args.samples else None)]
        else:
            bodies = [sender.encode(payload) for payload in sender.generated_payloads(args.generate)]
    except OSError as exc:
        print(f"ingestor send: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except (ValueError, KeyError, TypeError) as exc:
        print(f"ingestor send: not a payloads.json (a list of {{'payload': {{...}}}}): {exc!r}", file=sys.stderr)
        return 2
    summary = asyncio.run(
        sender.send_all(args.url, settings.secrets[0].key, bodies, concurrency=args.concurrency, retry_delay=args.retry_delay)
    )
    for failure in summary.failed:
        print(f"not accepted after {failure.attempts} attempts: {failure.status or 'no answer'} {failure.answer}", file=sys.stderr)
    print(summary)
    return 1 if summary.failed else 0


def _show(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaException

    from ingestor.inspection import decoded, messages, to_json

    settings = Settings.from_env(os.environ, require_secret=False)
    try:
        for message in messages(settings.kafka_config(), args.topic, args.limit):
            print(to_json(decoded(message)))
    except KafkaException as exc:
        print(f"ingestor show: {args.topic}: {exc.args[0].str()}", file=sys.stderr)
        return 1
    return 0


def _kafka(args: argparse.Namespace) -> int:
    from ingestor.localkafka import LocalKafka, LocalKafkaError, classpath

    try:
        if args.fetch_only:
            print(classpath())
            return 0
        broker = LocalKafka(args.data_dir.resolve(), port=args.port)
        broker.start()
    except LocalKafkaError as exc:
        print(f"ingestor kafka: {exc}", file=sys.stderr)
        return 1
    print(f"Kafka is up at {broker.bootstrap_servers} (data in {broker.data_dir}); Ctrl-C stops it", flush=True)
    stopping = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stopping)  # after the broker started: children inherit the mask
    try:
        signal.sigwait(stopping)
    finally:
        broker.stop()
    return 0
