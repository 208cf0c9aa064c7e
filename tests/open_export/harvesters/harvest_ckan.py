#!/usr/bin/env python
"""Harvest a live DCAT catalogue with ckanext-dcat's RDF harvester and CKAN's own validation,
and print one JSON report.

    venv-ckan/bin/python harvest_ckan.py URL [URL ...] [--profiles euro_dcat_ap_2 euro_dcat_ap_3]
                                         [--runs 2] [--locale fr] [--licenses-group-url file://...]

What runs for real (CKAN 2.12 + ckanext-harvest + ckanext-dcat 2.x, on a PostgreSQL database that
CKAN itself initialises: `ckan db init` + `ckan db upgrade -p harvest`):
  * ckanext-dcat's `DCATRDFHarvester.gather_stage` on a real HarvestSource/HarvestJob: it fetches
    the catalogue (HEAD then GET), follows `hydra:next`, parses every page with `RDFParser` and the
    configured profile, names each dataset (`_gen_new_name`), computes its guid (`_get_guid`) and
    stores HarvestObjects (and gather errors) in the database;
  * for each HarvestObject, the first half of `import_stage`: current-object flags, then the exact
    validation `package_create` / `package_update` run (`lib_plugins.plugin_validate` with the
    package plugin's create/update schema = CKAN's `default_create_package_schema`), every
    validator included (name uniqueness and owner_org query the database). Errors are rendered as
    the harvester renders them: 'Create validation Error: <error_summary>'.
What does not run: the second half of `package_create` (saving the package and indexing it),
because indexing needs Solr, which cannot run on this machine. So a dataset that passes
validation is counted as created, and "new datasets on re-harvest" is decided with the
harvester's own rule (`_get_existing_dataset(guid)`: a dataset whose guid was created in an
earlier run is updated, any other is created).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
# the portal's side of the harness: CKAN's generated config with these settings
INI_SETTINGS = {
    "ckan.plugins": "dcat harvest dcat_rdf_harvester",
    "ckan.site_url": "http://portal.example-metropole.test",
}


def write_ini(template: Path, workdir: Path, db_url: str, redis_url: str) -> Path:
    """CKAN's generated ckan.ini with the harness's database, Redis, plugins, site and storage."""
    settings = {**INI_SETTINGS, "sqlalchemy.url": db_url, "ckan.redis.url": redis_url,
                "ckan.storage_path": str(workdir / "storage")}
    (workdir / "storage").mkdir(parents=True, exist_ok=True)
    lines = []
    for line in template.read_text("utf-8").splitlines():
        key = line.split("=", 1)[0].strip()
        lines.append(f"{key} = {settings[key]}" if "=" in line and key in settings else line)
    ini = workdir / "ckan.ini"
    ini.write_text("\n".join(lines) + "\n", "utf-8")
    return ini


def reset_database(ini: Path, db_url: str) -> None:
    """A fresh CKAN database, initialised by CKAN itself."""
    admin_url, _, name = db_url.rpartition("/")
    psql = ["psql", f"{admin_url}/postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c"]
    subprocess.run(psql + [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], check=True)
    subprocess.run(psql + [f'CREATE DATABASE "{name}"'], check=True)
    env = dict(os.environ, CKAN_SQLALCHEMY_URL=db_url)
    for cmd in (["db", "init"], ["db", "upgrade", "-p", "harvest"]):
        done = subprocess.run([str(VENV_BIN / "ckan"), "-c", str(ini), *cmd], env=env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"ckan {' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")


def ckan_app(ini: Path, overrides: dict[str, str]):
    from ckan.cli import load_config
    from ckan.config.middleware import make_app

    conf = load_config(str(ini))
    conf.update(overrides)
    return make_app(conf)


def set_config(key: str, value: str | None) -> None:
    from ckan.common import config

    if value is not None:
        config[key] = value


def resource_report(res: dict) -> dict:
    keep = ("name", "url", "format", "mimetype", "size", "hash", "hash_algorithm", "license",
            "uri", "language", "conforms_to")
    return {k: res.get(k) for k in keep if res.get(k) not in (None, "")}


def dataset_report(data: dict) -> dict:
    extras = {e["key"]: e["value"] for e in data.get("extras", []) if isinstance(e, dict)}
    keep = ("uri", "identifier", "guid", "language", "theme", "spatial", "spatial_bbox",
            "spatial_centroid", "spatial_text", "temporal_start", "temporal_end", "frequency",
            "conforms_to", "publisher_name", "publisher_type", "contact_email", "alternate_identifier")
    return {
        "name": data.get("name"),
        "title": data.get("title"),
        "url": data.get("url"),
        "license_id": data.get("license_id"),
        "tags": [t.get("name") for t in data.get("tags", [])],
        "extras": {k: extras[k] for k in keep if k in extras},
        "resources": [resource_report(r) for r in data.get("resources", [])],
    }


def make_organisation(name: str, title: str) -> dict:
    """The portal's organisation, written as a model row: `organization_create` returns the
    organisation through `group_show`, which counts its datasets in Solr."""
    from ckan import model

    group = model.Group(name=name, title=title, type="organization", is_organization=True)
    group.state = "active"
    model.Session.add(group)
    model.Session.commit()
    return {"id": group.id, "name": group.name}


def make_source(url: str, org_id: str, title: str):
    from ckan import model
    from ckanext.harvest.model import HarvestSource

    pkg = model.Package(name=f"harvest-source-{uuid.uuid4().hex[:8]}", title=title, type="harvest",
                        owner_org=org_id, url=url, state="active")
    model.Session.add(pkg)
    model.Session.flush()
    source = HarvestSource(id=pkg.id, url=url, title=title, type="dcat_rdf", active=True)
    source.save()
    model.Session.commit()
    return source


def repoint_source(source, url: str) -> None:
    from ckan import model

    source.url = url
    source.save()
    pkg = model.Package.get(source.id)
    pkg.url = url
    model.Session.commit()


def run_job(source, created: dict[str, dict], site_user: str) -> dict:
    """One harvest job: the real gather stage, then import-stage validation of every object."""
    import ckan.lib.plugins as lib_plugins
    from ckan import model
    from ckan.logic import ValidationError
    from ckanext.dcat.harvesters.rdf import DCATRDFHarvester
    from ckanext.harvest.logic.schema import unicode_safe
    from ckanext.harvest.model import HarvestGatherError, HarvestJob, HarvestObject

    job = HarvestJob(source=source, status="Running")
    job.save()
    harvester = DCATRDFHarvester()
    object_ids = harvester.gather_stage(job) or []
    gather_errors = [e.message for e in model.Session.query(HarvestGatherError).filter_by(harvest_job_id=job.id)]

    items, counts, deleted = [], {"created": 0, "updated": 0, "rejected": 0}, []
    for object_id in object_ids:
        obj = model.Session.query(HarvestObject).get(object_id)
        if harvester._get_object_extra(obj, "status") == "delete":
            deleted.append(obj.guid)
            created.pop(obj.guid, None)
            continue
        dataset = json.loads(obj.content)
        # import_stage: flag the previous object of this guid as not current, this one as current
        previous = (model.Session.query(HarvestObject).filter(HarvestObject.guid == obj.guid)
                    .filter(HarvestObject.current == True).first())  # noqa: E712
        if previous:
            previous.current = False
            previous.add()
        obj.current = True
        obj.add()
        dataset = harvester.modify_package_dict(dataset, {}, obj)
        package_plugin = lib_plugins.lookup_package_plugin(dataset.get("type", None))
        existing = created.get(obj.guid)
        if existing:
            schema = package_plugin.update_package_schema()
            dataset["name"], dataset["id"] = existing["name"], existing["id"]
            action, label = "package_update", "Update validation Error"
        else:
            schema = package_plugin.create_package_schema()
            dataset["id"] = str(uuid.uuid4())
            schema["id"] = [unicode_safe]
            action, label = "package_create", "Create validation Error"
        if "type" not in dataset:
            dataset["type"] = "dataset"
        context = {"model": model, "session": model.Session, "user": site_user,
                   "ignore_auth": True, "schema": schema}
        data, errors = lib_plugins.plugin_validate(package_plugin, context, dataset, schema, action)
        model.Session.commit()
        entry = {"guid": obj.guid, "parsed": dataset_report(dataset)}
        if errors:
            entry["status"] = "rejected"
            entry["error"] = f"{label}: {ValidationError(errors).error_summary}"
            entry["errors"] = errors
            counts["rejected"] += 1
        else:
            entry["status"] = "updated" if existing else "created"
            entry["validated"] = dataset_report(data)
            counts[entry["status"]] += 1
            if not existing:
                created[obj.guid] = {"name": dataset["name"], "id": dataset["id"]}
        items.append(entry)
    return {"gather_errors": gather_errors, "objects": len(object_ids), "counts": counts,
            "marked_for_deletion": deleted, "items": items}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--profiles", nargs="+", default=["euro_dcat_ap_2", "euro_dcat_ap_3"])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--locale", default="fr", help="ckan.locale_default (a French city: fr)")
    parser.add_argument("--licenses-group-url", default=None,
                        help="licenses_group_url; default: CKAN's built-in default register")
    parser.add_argument("--reharvest-url", default=None,
                        help="runs 2.. harvest this URL with the same source (a moved catalogue)")
    parser.add_argument("--ini-template", type=Path, default=VENV_BIN.parent / "ckan.ini",
                        help="CKAN's own `ckan generate config` output (the Makefile writes it into the venv)")
    parser.add_argument("--workdir", type=Path, required=True, help="for the harness's ckan.ini and storage")
    parser.add_argument("--db-url", required=True, help="a database this harness may drop and create")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    args.ini = write_ini(args.ini_template, args.workdir, args.db_url, args.redis_url)
    reset_database(args.ini, args.db_url)
    overrides = {"sqlalchemy.url": args.db_url, "ckan.locale_default": args.locale}
    app = ckan_app(args.ini, overrides)
    out: dict = {"harvester": "ckanext-dcat DCATRDFHarvester.gather_stage + CKAN package schema validation",
                 "locale_default": args.locale, "licence_register": args.licenses_group_url or "CKAN default",
                 "runs": []}
    with app._wsgi_app.test_request_context():
        from importlib.metadata import version

        import ckan.plugins.toolkit as tk
        from ckan.model.license import LicenseRegister

        out["versions"] = {p: version(p) for p in ("ckan", "ckanext-dcat", "ckanext-harvest", "rdflib")}
        set_config("licenses_group_url", args.licenses_group_url)
        out["licence_register_ids"] = sorted(LicenseRegister().keys())
        site_user = tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"]
        org = make_organisation("eurometropole-harness", "Eurométropole (harness)")
        for profile in args.profiles:
            set_config("ckanext.dcat.rdf.profiles", profile)
            for url in args.urls:
                source = make_source(url, org["id"], f"civicair {profile} {url}")
                created: dict[str, dict] = {}
                runs = []
                for number in range(1, args.runs + 1):
                    if number == 2 and args.reharvest_url:
                        # the same harvest source, re-pointed (e.g. the catalogue moved)
                        repoint_source(source, args.reharvest_url)
                    run = run_job(source, created, site_user)
                    run["url"] = source.url
                    run["run"] = number
                    runs.append(run)
                out["runs"].append({
                    "profile": profile, "url": url, "jobs": runs,
                    "summary": {
                        "created_first_run": runs[0]["counts"]["created"],
                        "rejected_first_run": runs[0]["counts"]["rejected"],
                        "gather_errors_first_run": len(runs[0]["gather_errors"]),
                        "new_datasets_on_reharvest": (sum(r["counts"]["created"] for r in runs[1:])
                                                      if len(runs) > 1 else None),
                    },
                })
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
