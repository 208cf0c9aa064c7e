"""The examples a volunteer copies from the README "Accepted formats" section really decode."""

from __future__ import annotations

import re

from civicair.core.domain import RefScheme
from civicair.gateway.codecs import civicair_binary
from civicair.gateway.formats.chirpstack import decode_chirpstack_uplink
from civicair.gateway.formats.direct import decode_direct_json
from civicair.gateway.formats.sensor_community import decode_sensor_community

from tests.conftest import REPO

SECTION = (REPO / "README.md").read_text().split("### Accepted formats", 1)[1]


def test_direct_example() -> None:
    body = re.search(r"-m '(\{.*?\})'", SECTION).group(1)  # type: ignore[union-attr]
    up = decode_direct_json("ca-0123456789ab", body.encode())
    assert {v.name for v in up.values} == {"pm25", "pm10", "temperature", "humidity"} and up.position


def test_sensor_community_examples() -> None:
    pin = re.search(r"-d '(\{.*?\})'\n", SECTION.split("pin form", 1)[1]).group(1)  # type: ignore[union-attr]
    up = decode_sensor_community(pin.encode(), {"x-sensor": "esp8266-13463475", "x-pin": "1"})
    assert [(v.name, v.value) for v in up.values] == [("pm10", 12.34), ("pm25", 5.1)]
    custom = re.search(r"```json\n\s*(\{\"esp8266id\".*?)\n\s*```", SECTION, re.S).group(1)  # type: ignore[union-attr]
    up = decode_sensor_community(custom.encode(), {})
    assert up.device.value == "esp8266-13463475" and len(up.values) == 5


def test_chirpstack_and_binary_examples() -> None:
    cs = re.search(r"```json\n(\{\"deduplicationId\".*?)\n```", SECTION, re.S).group(1)  # type: ignore[union-attr]
    up = decode_chirpstack_uplink(cs.encode())
    assert up.device.scheme is RefScheme.DEV_EUI and up.link.f_cnt == 42 and len(up.values) == 6
    hexes = re.search(r"Example `([0-9A-F ]+)`", SECTION).group(1)  # type: ignore[union-attr]
    f = civicair_binary.decode(bytes.fromhex(hexes.replace(" ", "")))
    assert (f.pm25, f.pressure, f.battery_v) == (20.0, 1013.3, 3.24)
