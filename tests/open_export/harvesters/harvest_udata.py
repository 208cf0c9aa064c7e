#!/usr/bin/env python
"""Harvest a live DCAT catalogue with udata's own DCAT harvester and print one JSON report.

    venv-udata/bin/python harvest_udata.py URL [URL ...] [--runs 2] [--same-db]

Runs udata's `DcatBackend` through `udata.harvest.actions.run` (the entry point udata's
`udata harvest run` CLI and the celery `harvest` task end in), with MongoDB replaced by
mongomock. Each URL is one harvest source of one organisation, harvested `--runs` times in a
fresh database (or, with --same-db, all URLs into one database, in order, so a second source in
another RDF serialisation shows whether it would duplicate the first).

The licence register is loaded with udata's own `udata licenses FILE` command from
licences/udata_licences.json (a reconstruction of data.gouv.fr's register, see NOTES.md).

Only deviation from a production udata: URLS_ALLOW_LOCAL=True, because the test catalogue
listens on 127.0.0.1 (udata's SSRF guard refuses loopback targets by default).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import mongomock

HERE = Path(__file__).resolve().parent


class HarnessSettings:
    TESTING = False
    DEBUG = False
    # udata validates MONGODB_HOST; the connection itself is mongomock's in-memory client
    # (mongoengine >= 0.29 takes it as `mongo_client_class`; no MongoDB server is contacted).
    MONGODB_HOST = "mongodb://localhost:27017/udata_harness"
    MONGODB_SETTINGS = {"host": "mongodb://localhost:27017/udata_harness",
                        "mongo_client_class": mongomock.MongoClient, "tz_aware": False}
    CELERY_TASK_ALWAYS_EAGER = True
    CELERY_TASK_EAGER_PROPAGATES = True
    CACHE_TYPE = "flask_caching.backends.NullCache"
    CACHE_NO_NULL_WARNING = True
    SERVER_NAME = "data.example-metropole.fr"
    CDATA_BASE_URL = "https://data.example-metropole.fr/"
    DEFAULT_LANGUAGE = os.environ.get("UDATA_DEFAULT_LANGUAGE", "fr")
    HARVESTER_BACKENDS = ["dcat"]
    URLS_ALLOW_LOCAL = True  # the catalogue under test listens on 127.0.0.1
    URLS_RESOLVE_HOSTNAME = False
    SEND_MAIL = False
    AUTO_INDEX = False
    ELASTICSEARCH_URL = None
    SEARCH_SERVICE_API_URL = None
    PUBLISH_ON_RESOURCE_EVENTS = False
    HARVEST_ACTIVITY_USER_ID = None
    SECRET_KEY = "harness-only"
    SECURITY_PASSWORD_SALT = "harness-only"
    API_TOKEN_SECRET = "harness-only"
    LOGGER_HANDLER_POLICY = "never"


def make_app():
    from udata import settings
    from udata.app import create_app, standalone

    app = create_app(settings.Defaults, override=HarnessSettings)
    return standalone(app)


def load_licences(app, path: Path) -> list[str]:
    from udata.commands import cli
    from udata.models import License

    result = app.test_cli_runner().invoke(cli, ["licenses", str(path)])
    if result.exit_code != 0:
        raise SystemExit(f"udata licenses {path} failed: {result.output}")
    return sorted(lic.id for lic in License.objects)


def clear_db() -> None:
    from udata.mongo import db

    database = db.connection.get_default_database() if hasattr(db.connection, "get_default_database") else None
    if database is None:
        from mongoengine.connection import get_db

        database = get_db()
    for name in database.list_collection_names():
        if not name.startswith("system."):
            database[name].delete_many({})


def resource_report(res) -> dict:
    return {
        "title": res.title,
        "url": res.url,
        "type": res.type,
        "format": res.format,
        "mime": res.mime,
        "filesize": res.filesize,
        "checksum": ({"type": res.checksum.type, "value": res.checksum.value} if res.checksum else None),
        "description": (res.description or "")[:80] or None,
        "uri": res.harvest.uri if res.harvest else None,
        "licence_extra": (res.extras or {}).get("dcat", {}).get("license"),
    }


def dataset_report(ds) -> dict:
    harvest = ds.harvest
    temporal = ds.temporal_coverage
    return {
        "title": ds.title,
        "slug": ds.slug,
        "portal_page": ds.self_web_url(),
        "description_start": (ds.description or "")[:70],
        "tags": list(ds.tags or []),
        "licence": ds.license.id if ds.license else None,
        "licence_extra": (ds.extras or {}).get("dcat", {}).get("license"),
        "frequency": str(ds.frequency) if ds.frequency else None,
        "temporal_coverage": (
            {"start": str(temporal.start), "end": str(temporal.end)} if temporal else None
        ),
        "spatial": (ds.spatial.geom["type"] if ds.spatial and ds.spatial.geom else None),
        "schema": (ds.schema.url if ds.schema else None),
        "contact_points": [cp.name for cp in ds.contact_points],
        "remote_id": harvest.remote_id if harvest else None,
        "dct_identifier": harvest.dct_identifier if harvest else None,
        "uri": harvest.uri if harvest else None,
        "remote_url": harvest.remote_url if harvest else None,
        "resources": [resource_report(r) for r in ds.resources],
    }


def job_report(job) -> dict:
    items = []
    for item in job.items:
        entry = {
            "remote_id": item.remote_id,
            "status": item.status,
            "errors": [e.message for e in item.errors],
            "logs": [f"{log.level}: {log.message}" for log in item.logs if log.level in ("WARNING", "ERROR")],
        }
        if item.dataset:
            entry["dataset"] = dataset_report(item.dataset)
        if item.dataservice:
            entry["dataservice"] = item.dataservice.title
        items.append(entry)
    counts: dict[str, int] = {}
    for item in job.items:
        counts[item.status] = counts.get(item.status, 0) + 1
    return {
        "status": job.status,
        "errors": [e.message for e in job.errors],
        "pages": len((job.data or {}).get("graphs", [])),
        "items_by_status": counts,
        "items": items,
    }


def harvest_source(url: str, runs: int, org, name: str, reharvest_url: str | None = None) -> dict:
    from udata.harvest import actions
    from udata.harvest.models import HarvestJob, HarvestSource
    from udata.models import Dataset

    source = HarvestSource.objects.create(name=name, url=url, backend="dcat", organization=org)
    report_runs = []
    for number in range(1, runs + 1):
        if number == 2 and reharvest_url:
            # the same harvest source, re-pointed (e.g. the catalogue moved to its public URL)
            source.modify(url=reharvest_url)
        before = {str(d.id) for d in Dataset.objects}
        actions.run(source)
        job = HarvestJob.objects(source=source).order_by("-created").first()
        after = {str(d.id) for d in Dataset.objects}
        run = job_report(job)
        run["run"] = number
        run["url"] = source.url
        run["datasets_in_db_before"] = len(before)
        run["datasets_in_db_after"] = len(after)
        run["new_datasets"] = len(after - before)
        report_runs.append(run)
    return {"url": url, "source": name, "runs": report_runs}


def summary(runs: list[dict]) -> dict:
    first, last = runs[0], runs[-1]
    return {
        "created_first_run": first["new_datasets"],
        "failed_first_run": first["items_by_status"].get("failed", 0),
        "skipped_first_run": first["items_by_status"].get("skipped", 0),
        "new_datasets_on_reharvest": sum(r["new_datasets"] for r in runs[1:]) if len(runs) > 1 else None,
        "status_last_run": last["status"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--reharvest-url", default=None,
                        help="runs 2.. harvest this URL with the same source (a moved catalogue)")
    parser.add_argument("--same-db", action="store_true", help="harvest all URLs into one database")
    parser.add_argument("--licences", type=Path, default=HERE / "udata_licences.json")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    app = make_app()
    out: dict = {"harvester": "udata DcatBackend via udata.harvest.actions.run", "sources": []}
    with app.test_request_context():
        from importlib.metadata import version

        from udata.models import Organization

        out["versions"] = {p: version(p) for p in ("udata", "rdflib", "mongomock", "mongoengine")}
        out["default_language"] = app.config["DEFAULT_LANGUAGE"]
        clear_db()
        out["licence_register"] = load_licences(app, args.licences)
        for index, url in enumerate(args.urls):
            if index and not args.same_db:
                clear_db()
                load_licences(app, args.licences)
            org = Organization.objects(name="Eurométropole (harness)").first() or Organization.objects.create(
                name="Eurométropole (harness)", description="harvest harness organisation")
            result = harvest_source(url, args.runs, org, f"civicair {index + 1}", args.reharvest_url)
            result["summary"] = summary(result["runs"])
            out["sources"].append(result)
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
