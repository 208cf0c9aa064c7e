"""`civicair up` / `gateway` / `api`: start the components in one process, stop them cleanly.

Order: database (embedded if none configured) → migrations → broker (embedded if none
configured) → ingest writer + MQTT listener → scheduler → demo simulator → API (uvicorn, main
thread). Ctrl-C (SIGINT) or SIGTERM stops them in reverse order.
"""

from __future__ import annotations

import importlib
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from rich.console import Console

from core.broker import EmbeddedBroker, port_is_free
from core.db import Database, libpq_url, open_database
from core.errors import ServiceUnavailable, SettingsError
from core.jobs import Job, Scheduler
from core.migrate import upgrade
from core.settings import Settings, redact_url

log = logging.getLogger(__name__)
console = Console(stderr=True)

JOB_MODULES = ("ingest.worker", "calibration.worker", "open_export.worker", "api.worker", "gateway.worker")


def collect_jobs(settings: Settings, db: Database) -> list[Job]:
    """Jobs contributed by each package's `worker.jobs(settings, db)`, where it exists."""
    jobs: list[Job] = []
    for name in JOB_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        factory: Callable[[Settings, Database], list[Job]] | None = getattr(module, "jobs", None)
        if factory is not None:
            jobs.extend(factory(settings, db))
    return jobs


def check_api_port(settings: Settings) -> None:
    if settings.api_port and not port_is_free(settings.api_host, settings.api_port):
        raise SettingsError(
            f"CIVICAIR_API_PORT: port {settings.api_port} on {settings.api_host} is already in use"
        )


def check_broker(url: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 1883), timeout=3):
            pass
    except OSError as exc:
        raise ServiceUnavailable(f"CIVICAIR_MQTT_URL: cannot connect to {redact_url(url)}: {exc}") from None


def start_pipeline(
    settings: Settings, db: Database, mqtt_url: str, stack: ExitStack, *, embedded_broker: bool = False
) -> dict[str, Any]:
    import paho.mqtt.client as mqtt

    from gateway.listener import MqttListener
    from gateway.routing import TopicRouter
    from ingest.writer import BatchWriter

    inbox: queue.Queue[Any] = queue.Queue(maxsize=settings.queue_max)
    # Spool + backoff on: a database outage parks batches on disk instead of stalling.
    writer = BatchWriter.from_settings(settings, libpq_url(db.url), inbox)
    replayed = writer.replay_spool()
    if replayed:
        console.print(f"spool: replayed {replayed} batch(es) left by an earlier run", highlight=False)
    writer.start()
    router = TopicRouter.from_settings(settings) if hasattr(TopicRouter, "from_settings") else TopicRouter(
        direct_prefix=settings.direct_topic_prefix)
    listener = MqttListener(
        mqtt_url, inbox, client_id=settings.mqtt_client_id, router=router,
        shared_group=settings.mqtt_shared_group, receive_maximum=settings.mqtt_receive_maximum,
        session_expiry_s=settings.mqtt_session_expiry_s,
        protocol=mqtt.MQTTv311 if embedded_broker else mqtt.MQTTv5,  # amqtt speaks 3.1.1 only
    )
    listener.start()
    # Stop order (ExitStack runs callbacks last-in first-out): stop taking messages, let the
    # writer drain and ack what it holds, then disconnect.
    stack.callback(listener.stop)
    stack.callback(writer.stop)
    stack.callback(listener.pause)
    return {"writer": writer, "listener": listener, "inbox": inbox}


def _after_backfill(sim: Any, pipeline: dict[str, Any], scheduler: Scheduler) -> None:
    if not sim.backfilled.wait(600):
        return
    quiet_since = time.monotonic()
    deadline = quiet_since + 120
    while time.monotonic() < deadline:  # the writer has drained the backfill for 2 s
        if pipeline["inbox"].qsize() > 0:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 2:
            break
        time.sleep(0.2)
    log.info("demo history written; running the scheduled jobs now")
    scheduler.run_soon()


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket with SO_REUSEPORT (Linux): several API processes bind the same port
    and the kernel spreads new connections over them."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_service(settings: Settings, *, demo: bool, components: set[str]) -> None:
    import uvicorn

    from api.app import create_app, prepare_to_serve
    from api.zones import import_example_zones

    if "api" in components:
        check_api_port(settings)
    with ExitStack() as stack:
        db = open_database(settings)
        stack.callback(db.close)
        console.print(f"database: {db.description}", highlight=False)
        upgrade(db.engine)
        mqtt_url = settings.mqtt_url
        needs_broker = bool(components & {"gateway"}) or demo
        if mqtt_url is None and needs_broker:
            broker = EmbeddedBroker(host="127.0.0.1")
            broker.start()
            stack.callback(broker.stop)
            mqtt_url = broker.url
            console.print(f"broker: embedded amqtt at {mqtt_url}", highlight=False)
        elif mqtt_url is not None:
            check_broker(mqtt_url)
            console.print(f"broker: {redact_url(mqtt_url)}", highlight=False)

        pipeline: dict[str, Any] = {}
        if "gateway" in components and mqtt_url:
            pipeline = start_pipeline(settings, db, mqtt_url, stack,
                                      embedded_broker=settings.mqtt_url is None)
        scheduler: Scheduler | None = None
        if "scheduler" in components:
            scheduler = Scheduler(collect_jobs(settings, db))
            scheduler.start()
            stack.callback(scheduler.stop)
        if demo and mqtt_url:
            from gateway.simulator import Simulator

            sim = Simulator(settings, db, mqtt_url)
            sim.start()
            stack.callback(sim.stop)
            console.print(f"demo: {sim.summary()}", highlight=False)
            with db.engine.begin() as conn:  # so that zone series have zones of several sensors
                if n := import_example_zones(conn):
                    console.print(f"demo: {n} example zones imported (api/data/README.md)", highlight=False)
            if scheduler is not None and pipeline:
                # Calibrate (and export) as soon as the backfilled history is in the database,
                # not an hour later: the newcomer sees calibration within a minute.
                threading.Thread(target=_after_backfill, args=(sim, pipeline, scheduler),
                                 name="demo-trigger", daemon=True).start()

        def broker_status() -> dict[str, Any]:
            listener = pipeline.get("listener")
            if listener is None:
                from api.app import broker_reachable

                return {"status": "ok" if broker_reachable(mqtt_url) else "down"}
            writer = pipeline["writer"]
            return {
                "status": "ok" if listener.connected.is_set() else "down",
                "received": listener.received,
                "queue_depth": pipeline["inbox"].qsize(),
                "written_readings": writer.stats.readings_written,
            }

        if "api" in components:
            app = create_app(settings, db, mqtt_url=mqtt_url, broker_status=broker_status)
            app.state.pipeline = pipeline
            url = f"http://{settings.api_host}:{settings.api_port}"
            console.print(f"api: {url}/docs", highlight=False)
            server = uvicorn.Server(uvicorn.Config(
                app, host=settings.api_host, port=settings.api_port,
                log_level="warning" if settings.log_level != "debug" else "debug",
            ))
            prepare_to_serve()
            sockets = [reuse_port_socket(settings.api_host, settings.api_port)] if settings.api_reuse_port else None
            try:
                server.run(sockets=sockets)  # handles SIGINT/SIGTERM, then re-raises the signal
            except KeyboardInterrupt:
                pass
        else:
            import signal

            stopped = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stopped.set())
            signal.signal(signal.SIGINT, lambda *_: stopped.set())
            console.print("running; Ctrl-C to stop", highlight=False)
            stopped.wait()
        console.print("stopping…", highlight=False)
    console.print("stopped", highlight=False)
