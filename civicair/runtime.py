"""The composition root: the process wiring of `civicair up`, `civicair gateway` and `civicair api`,
written once. Every package sits below it; it starts them in order and stops them in reverse.

Order: database (embedded if none configured; a configured one that is down is waited for,
`CIVICAIR_DATABASE_WAIT_S`) → migrations → broker (embedded if none configured: authenticating
devices like Mosquitto) → ingest writer + MQTT listener (after leasing its client id) → scheduler
→ demo simulator → API (uvicorn, main thread). Ctrl-C (SIGINT) or SIGTERM stops them in reverse
order, the embedded PostgreSQL last.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console

from civicair.core.broker import EmbeddedBroker, free_port, port_is_free
from civicair.core.db import Database, libpq_url, open_database
from civicair.core.errors import ServiceUnavailable, SettingsError
from civicair.core.jobs import Job, Scheduler
from civicair.core.migrate import current_revision, upgrade
from civicair.core.settings import Settings, check_secrets, listening_at, redact_url

log = logging.getLogger(__name__)
console = Console(stderr=True)


def collect_jobs(settings: Settings, db: Database) -> list[Job]:
    """The scheduled jobs of every package, each from its `worker.jobs(settings, db)`."""
    from civicair.calibration import worker as calibration_worker
    from civicair.gateway import worker as gateway_worker
    from civicair.ingest import worker as ingest_worker
    from civicair.open_export import worker as open_export_worker
    from civicair.readmodel import worker as readmodel_worker

    jobs: list[Job] = []
    for module in (ingest_worker, calibration_worker, open_export_worker, readmodel_worker, gateway_worker):
        jobs.extend(module.jobs(settings, db))
    return jobs


def check_api_port(settings: Settings) -> None:
    if settings.api_port and not port_is_free(settings.api_host, settings.api_port):
        raise SettingsError(
            f"CIVICAIR_API_PORT: port {settings.api_port} on {settings.api_host} is already in use"
        )


def bind_api(settings: Settings) -> tuple[Settings, socket.socket]:
    """Bind the API's listening socket before anything else starts, and return the settings of a
    process listening there: the derived public URL (catalogue, downloads, bundles) names the port
    really bound, also when CIVICAIR_API_PORT is 0 (a free port chosen by the kernel)."""
    check_api_port(settings)
    try:
        sock = listen_socket(settings.api_host, settings.api_port, reuse_port=settings.api_reuse_port,
                             listen=False)
    except OSError as exc:
        raise SettingsError(f"CIVICAIR_API_HOST/CIVICAIR_API_PORT: cannot listen on "
                            f"{settings.api_host}:{settings.api_port}: {exc.strerror or exc}") from None
    return listening_at(settings, settings.api_host, int(sock.getsockname()[1])), sock


def check_broker(url: str) -> None:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 1883), timeout=3):
            pass
    except OSError as exc:
        raise ServiceUnavailable(f"CIVICAIR_MQTT_URL: cannot connect to {redact_url(url)}: {exc}") from None


class Stopping(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it unwinds like Ctrl-C: every component stops
    in reverse order (the embedded PostgreSQL too) instead of the process dying on the spot."""


def _raise_stopping(signum: int, frame: Any) -> None:
    raise Stopping()


def stop_on_sigterm() -> None:
    """Handle SIGTERM as SIGINT (what systemd, Docker and supervisors send). Main thread only;
    uvicorn restores this handler after its own shutdown and re-raises the signal into it."""
    import signal

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_stopping)


def open_database_waiting(settings: Settings) -> Database:
    """`open_database`, retried while a configured database is unreachable, for at most
    `database_wait_s` (a database started at the same time, or restarting); the embedded one is
    started, not waited for."""
    deadline = time.monotonic() + settings.database_wait_s
    pause = 1.0
    while True:
        try:
            return open_database(settings)
        except ServiceUnavailable as exc:
            if settings.database_url is None or time.monotonic() + pause > deadline:
                raise
            console.print(f"database: unavailable, retrying in {pause:.0f} s ({exc.detail})", highlight=False)
            time.sleep(pause)
            pause = min(pause * 2, 10.0)


@dataclass
class Pipeline:
    """A running gateway: the MQTT listener feeding the batch writer through a bounded queue,
    under a leased client id."""

    listener: Any  # civicair.gateway.listener.MqttListener
    writer: Any  # civicair.ingest.writer.BatchWriter
    inbox: queue.Queue[Any]
    lease: Any = None  # civicair.gateway.lease.ClientIdLease

    def stop(self) -> None:
        """Stop taking messages, let the writer drain and ack what it holds, then disconnect and
        give the client id back."""
        self.listener.pause()
        self.writer.stop()
        self.listener.stop()
        if self.lease is not None:
            self.lease.release()


def start_pipeline(
    settings: Settings,
    conninfo: str,
    mqtt_url: str,
    *,
    client_id: str | None = None,
    shared_group: str | None = None,
    mqtt_v311: bool = False,
    on_commit: Callable[[list[Any], float], None] | None = None,
) -> Pipeline:
    """Lease the client id (refused when a live gateway holds it), start a batch writer (spool
    replayed first) and an MQTT listener feeding it. The caller stops it with `Pipeline.stop()`."""
    import paho.mqtt.client as mqtt

    from civicair.gateway.lease import ClientIdLease, derive_client_id
    from civicair.gateway.listener import MqttListener
    from civicair.gateway.routing import TopicRouter
    from civicair.ingest.writer import BatchWriter

    client_id = client_id or settings.mqtt_client_id or derive_client_id(
        conninfo, cache=Path(settings.data_dir) / "mqtt_client_id")
    lease = ClientIdLease(conninfo, client_id)
    lease.acquire()

    inbox: queue.Queue[Any] = queue.Queue(maxsize=settings.queue_max)
    # Spool + backoff on: a database outage parks batches on disk instead of stalling.
    writer = BatchWriter.from_settings(settings, conninfo, inbox, on_commit=on_commit)
    try:
        replayed = writer.replay_spool()
    except BaseException:
        lease.release()
        raise
    if replayed:
        console.print(f"spool: replayed {replayed} batch(es) left by an earlier run", highlight=False)
    writer.start()
    listener = MqttListener(
        mqtt_url, inbox, client_id=client_id,
        router=TopicRouter.from_settings(settings),
        shared_group=shared_group if shared_group is not None else settings.mqtt_shared_group,
        receive_maximum=settings.mqtt_receive_maximum,
        session_expiry_s=settings.mqtt_session_expiry_s,
        protocol=mqtt.MQTTv311 if mqtt_v311 else mqtt.MQTTv5,  # amqtt speaks 3.1.1 only
    )
    listener.start()
    console.print(f"gateway: MQTT client id {client_id}", highlight=False)
    return Pipeline(listener=listener, writer=writer, inbox=inbox, lease=lease)
def _after_backfill(sim: Any, pipeline: Pipeline, scheduler: Scheduler) -> None:
    if not sim.backfilled.wait(600):
        return
    quiet_since = time.monotonic()
    deadline = quiet_since + 120
    while time.monotonic() < deadline:  # the writer has drained the backfill for 2 s
        if pipeline.inbox.qsize() > 0:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 2:
            break
        time.sleep(0.2)
    log.info("demo history written; running the scheduled jobs now")
    scheduler.run_soon()


def listen_socket(host: str, port: int, *, reuse_port: bool = False, listen: bool = True) -> socket.socket:
    """A TCP socket bound on host:port (port 0: a free one), listening unless `listen` is False
    (uvicorn starts listening when it serves: until then connections are refused, not queued)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket with SO_REUSEPORT (Linux): several API processes bind the same port
    and the kernel spreads new connections over them."""
    return listen_socket(host, port, reuse_port=True)


def build_app(settings: Settings, db: Database, *, mqtt_url: str | None = None,
              broker_status: Callable[[], dict[str, Any]] | None = None) -> Any:
    """The ASGI application every `civicair api` / `up` process serves: the HTTP API and the
    surfaces mounted beside it (the public web: pages, widget, offline /docs; the SensorThings API
    at /sta/v1.1)."""
    from civicair.api.app import create_app
    from civicair.sta.app import install as install_sensorthings
    from civicair.web.site import install as install_web

    app = create_app(settings, db, mqtt_url=mqtt_url, broker_status=broker_status)
    install_web(app, settings)
    install_sensorthings(app, settings, db)
    return app


@dataclass
class Broker:
    """The embedded broker and the URLs of its service accounts."""

    broker: EmbeddedBroker
    gateway_url: str  # the gateway's own account: reads everything
    network_server_url: str | None  # the demo's simulated ChirpStack / TTS: writes under their prefixes


def start_embedded_broker(settings: Settings, db: Database, *, demo: bool) -> tuple[Settings, Broker]:
    """Start the embedded amqtt broker on CIVICAIR_EMBEDDED_BROKER_HOST/_PORT (no port: 1883 or
    the next free one), authenticating devices against the devices table and authorising them
    like the Mosquitto files (gateway/embedded_auth.py), with fresh random passwords for the
    gateway's account and, with `demo`, for the demo's simulated network servers. Returns the
    settings naming the port it really listens on."""
    import secrets

    from civicair.gateway.embedded_auth import BrokerDirectory, ServiceAccount, broker_plugins

    gateway = ServiceAccount("civicair-gateway", secrets.token_urlsafe(24), read=("#",))
    services = [gateway]
    if settings.mosquitto_chirpstack_user and settings.mosquitto_chirpstack_password:
        prefix = f"{settings.chirpstack_topic_prefix}/#"
        services.append(ServiceAccount(settings.mosquitto_chirpstack_user,
                                       settings.mosquitto_chirpstack_password.get_secret_value(),
                                       read=(prefix,), write=(prefix,)))
    lns = None
    if demo:
        lns = ServiceAccount("civicair-demo-network-server", secrets.token_urlsafe(24),
                             write=(f"{settings.chirpstack_topic_prefix}/#", f"{settings.tts_topic_prefix}/#"))
        services.append(lns)
    host, port = settings.embedded_broker_host, settings.embedded_broker_port
    if port == 0:
        port = free_port(host)
    elif port and not port_is_free(host, port):
        raise SettingsError(f"CIVICAIR_EMBEDDED_BROKER_PORT: port {port} on {host} is already in use "
                            "(set CIVICAIR_MQTT_URL to use the broker listening there)")
    broker = EmbeddedBroker(host=host, port=port,
                            plugins=broker_plugins(BrokerDirectory(db, settings.direct_topic_prefix, services)))
    broker.start()
    client_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host

    def url(account: ServiceAccount) -> str:
        return f"mqtt://{account.username}:{account.password}@{client_host}:{broker.port}"

    return (settings.model_copy(update={"embedded_broker_port": broker.port}),
            Broker(broker, url(gateway), url(lns) if lns else None))


def _start_demo(settings: Settings, db: Database, mqtt_url: str, stack: ExitStack,
                pipeline: Pipeline | None, scheduler: Scheduler | None, *, per_device: bool) -> None:
    from civicair.demo.simulator import Simulator
    from civicair.demo.zones import import_example_zones

    sim = Simulator(settings, db, mqtt_url, per_device=per_device)
    sim.start()
    stack.callback(sim.stop)
    console.print(f"demo: {sim.summary()}", highlight=False)
    with db.engine.begin() as conn:  # so that zone series have zones of several sensors
        if n := import_example_zones(conn):
            console.print(f"demo: {n} example zones imported (demo/data/README.md)", highlight=False)
    if scheduler is not None and pipeline is not None:
        # Calibrate (and export) as soon as the backfilled history is in the database,
        # not an hour later: the newcomer sees calibration within a minute.
        threading.Thread(target=_after_backfill, args=(sim, pipeline, scheduler),
                         name="demo-trigger", daemon=True).start()


def uvicorn_config(settings: Settings, app: Any, **options: Any) -> Any:
    """The uvicorn configuration every API process runs with. Proxy headers (X-Forwarded-For,
    X-Forwarded-Proto) are believed only from `trusted_proxies`: uvicorn's own default trusts
    127.0.0.1, so any local process (or a proxy that passes the header through) could choose the
    client address the rate limit keys on (docs/open-data.md#http-caching-and-rate-limit)."""
    import uvicorn

    trusted = list(settings.trusted_proxies)
    options.setdefault("host", settings.api_host)
    options.setdefault("port", settings.api_port)
    options.setdefault("log_level", "warning" if settings.log_level != "debug" else "debug")
    return uvicorn.Config(app, proxy_headers=bool(trusted), forwarded_allow_ips=trusted or "", **options)


def _serve_api(settings: Settings, app: Any, sock: socket.socket) -> None:
    import uvicorn

    from civicair.api.app import prepare_to_serve

    console.print(f"api: public URL {settings.public_base_url}/docs", highlight=False, soft_wrap=True)
    console.print(f"api: listening on {settings.api_host}:{settings.api_port}", highlight=False)
    if settings.smtp_url is None:
        console.print("sign-up: no CIVICAIR_SMTP_URL, so registrations are created without an e-mail check "
                      "(set it in production)", highlight=False, soft_wrap=True)
    server = uvicorn.Server(uvicorn_config(settings, app))
    prepare_to_serve()
    try:
        server.run(sockets=[sock])  # handles SIGINT/SIGTERM, then re-raises the signal
    except KeyboardInterrupt:
        pass


def _wait_for_signal() -> None:
    console.print("running; Ctrl-C to stop", highlight=False)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:  # SIGINT, or SIGTERM (`Stopping`)
        pass


def run_service(settings: Settings, *, demo: bool, components: set[str]) -> None:
    """Run the given components (`gateway`, `api`, `scheduler`) until SIGINT/SIGTERM."""
    check_secrets(settings, demo=demo)
    stop_on_sigterm()
    try:
        _run_service(settings, demo=demo, components=components)
    except KeyboardInterrupt:  # during start-up: everything started so far was stopped
        pass
    console.print("stopped", highlight=False)


def _run_service(settings: Settings, *, demo: bool, components: set[str]) -> None:
    with ExitStack() as stack:
        api_socket: socket.socket | None = None
        if "api" in components:
            settings, api_socket = bind_api(settings)
            stack.callback(api_socket.close)
        db = open_database_waiting(settings)
        stack.callback(db.close)
        console.print(f"database: {db.description}", highlight=False)
        before = current_revision(db.engine)
        upgrade(db.engine)
        after = current_revision(db.engine)
        console.print(f"database: schema at revision {after}"
                      + (f" (migrated from {before or 'an empty database'})" if before != after else ""),
                      highlight=False)
        mqtt_url = settings.mqtt_url
        demo_url = mqtt_url
        needs_broker = bool(components & {"gateway"}) or demo
        if mqtt_url is None and needs_broker:
            settings, embedded = start_embedded_broker(settings, db, demo=demo)
            stack.callback(embedded.broker.stop)
            mqtt_url, demo_url = embedded.gateway_url, embedded.network_server_url
            console.print(f"broker: embedded amqtt at {embedded.broker.url} (devices authenticated)", highlight=False)
        elif mqtt_url is not None:
            check_broker(mqtt_url)
            console.print(f"broker: {redact_url(mqtt_url)}", highlight=False)

        pipeline: Pipeline | None = None
        if "gateway" in components and mqtt_url:
            pipeline = start_pipeline(settings, libpq_url(db.url), mqtt_url,
                                      mqtt_v311=settings.mqtt_url is None)
            stack.callback(pipeline.stop)
        scheduler: Scheduler | None = None
        if "scheduler" in components:
            scheduler = Scheduler(collect_jobs(settings, db))
            scheduler.start()
            stack.callback(scheduler.stop)
        if demo and demo_url:
            _start_demo(settings, db, demo_url, stack, pipeline, scheduler, per_device=settings.mqtt_url is None)

        def broker_status() -> dict[str, Any]:
            if pipeline is None:
                from civicair.api.app import broker_reachable

                return {"status": "ok" if broker_reachable(mqtt_url) else "down"}
            listener = pipeline.listener
            return {
                "status": ("ok" if listener.connected.is_set()
                           else "taken_over" if listener.taken_over.is_set() else "down"),
                "received": pipeline.listener.received,
                "queue_depth": pipeline.inbox.qsize(),
                "written_readings": pipeline.writer.stats.readings_written,
            }

        if api_socket is not None:
            app = build_app(settings, db, mqtt_url=mqtt_url, broker_status=broker_status)
            app.state.scheduler = scheduler  # its jobs' last runs, on the operator console
            _serve_api(settings, app, api_socket)
        else:
            _wait_for_signal()
        console.print("stopping…", highlight=False)
