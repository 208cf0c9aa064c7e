"""The ChirpStack/TTS JavaScript codec decodes exactly what the Python decoder decodes: one node
process reads hex payloads line by line; hypothesis feeds encoded frames and arbitrary bytes."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import InvalidPayload
from gateway.codecs import civicair_binary

JS = Path(__file__).resolve().parents[2] / "firmware_tools" / "codecs" / "civicair_binary_v1.js"

RUNNER = """
const {decodeUplink} = require(process.argv[1]);
const rl = require("readline").createInterface({input: process.stdin});
rl.on("line", (hex) => {
  const out = decodeUplink({bytes: Array.from(Buffer.from(hex, "hex")), fPort: 1});
  process.stdout.write(JSON.stringify(out) + "\\n");
});
"""


@pytest.fixture(scope="module")
def node_codec() -> Iterator[subprocess.Popen[str]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    proc = subprocess.Popen([node, "-e", RUNNER, str(JS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, bufsize=1)
    yield proc
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.close()
    proc.wait(10)
    proc.stdout.close()


def js_decode(proc: subprocess.Popen[str], payload: bytes) -> dict:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(payload.hex() + "\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def py_decode(payload: bytes) -> dict:
    try:
        f = civicair_binary.decode(payload)
    except InvalidPayload:
        return {"error": True}
    pos = None if f.position is None else {"lat": f.position.lat, "lon": f.position.lon, "alt": f.position.alt}
    return {"data": {"pm1": f.pm1, "pm25": f.pm25, "pm10": f.pm10, "temperature": f.temperature,
                     "humidity": f.humidity, "pressure": f.pressure, "no2": f.no2,
                     "battery_v": f.battery_v, "position": pos, "sensor_error": f.sensor_error}}


def agree(proc: subprocess.Popen[str], payload: bytes) -> None:
    js = js_decode(proc, payload)
    py = py_decode(payload)
    if "error" in py:
        assert js.get("errors"), f"python rejects {payload.hex()} but JS decoded {js}"
        return
    assert "errors" not in js, f"JS rejects {payload.hex()}: {js}"
    assert js["data"] == py["data"], payload.hex()


def opt(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | strategy


frames = st.fixed_dictionaries({
    "pm1": opt(st.integers(0, 0xFFFE).map(lambda n: n / 10)),
    "pm25": opt(st.integers(0, 0xFFFE).map(lambda n: n / 10)),
    "pm10": opt(st.integers(0, 0xFFFE).map(lambda n: n / 10)),
    "temperature": opt(st.integers(-32768, 32766).map(lambda n: n / 100)),
    "humidity": opt(st.integers(0, 0xFE).map(lambda n: n / 2)),
    "pressure": opt(st.integers(0, 0xFFFE).map(lambda n: n / 10)),
    "no2": opt(st.integers(0, 0xFFFE).map(lambda n: n / 10)),
    "battery_v": opt(st.integers(0, 0xFE).map(lambda n: 2 + n / 100)),
    "sensor_error": opt(st.integers(0, 0xFFFF)),
    "gps": opt(st.tuples(st.integers(-900_000_000, 900_000_000), st.integers(-1_800_000_000, 1_800_000_000),
                         opt(st.integers(-32768, 32766)))),
})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames)
def test_js_decodes_encoded_frames_like_python(node_codec, frame) -> None:
    gps = frame.pop("gps")
    if gps is not None:
        frame.update(lat=gps[0] / 1e7, lon=gps[1] / 1e7, alt=gps[2])
    payload = civicair_binary.encode(**frame)
    agree(node_codec, payload)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=30) | st.binary(min_size=14, max_size=28).map(lambda b: b"\x01" + b[1:]))
def test_js_rejects_what_python_rejects(node_codec, payload) -> None:
    agree(node_codec, payload)


def test_documented_example(node_codec) -> None:
    data = js_decode(node_codec, bytes.fromhex("0100007B00C8012C08FC5A27957C"))["data"]
    assert (data["pm1"], data["pm25"], data["pm10"], data["temperature"]) == (12.3, 20, 30, 23)
    assert (data["humidity"], data["pressure"], data["battery_v"]) == (45, 1013.3, 3.24)
