"""docker-compose.yml parses and every file it mounts or builds from exists."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_compose_parses_and_mounted_files_exist() -> None:
    doc = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = doc["services"]
    assert {"timescaledb", "mosquitto", "chirpstack", "chirpstack-gateway-bridge", "redis",
            "chirpstack-postgres", "gateway", "api"} <= set(services)
    assert services["gateway"]["command"][:2] == ["civicair", "gateway"]
    assert services["api"]["command"][:2] == ["civicair", "api"]
    named = set(doc.get("volumes", {}))
    missing = []
    for name, svc in services.items():
        if "build" in svc:
            assert (REPO / svc["build"] / "Dockerfile").is_file(), name
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source in named:
                continue
            if not (REPO / source).exists():
                missing.append(f"{name}: {source}")
    assert missing == []
    assert "mysecret" not in (REPO / "docker-compose.yml").read_text()
