"""The network-server JS codec and the firmware C encoder agree with the Python decoder/encoder
(gateway/codecs/civicair_binary.py) on many generated messages (hypothesis), run with node / gcc."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from civicair.core.errors import InvalidPayload
from civicair.gateway.codecs import civicair_binary as cb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CODECS = Path(__file__).resolve().parents[2] / "firmware_tools" / "codecs"
NODE_LOOP = """
const {decodeUplink} = require(process.argv[1]);
const rl = require('readline').createInterface({input: process.stdin});
rl.on('line', (hex) => {
  const bytes = hex ? hex.match(/../g).map((h) => parseInt(h, 16)) : [];
  process.stdout.write(JSON.stringify(decodeUplink({bytes: bytes, fPort: 1})) + "\\n");
});
"""


@pytest.fixture(scope="module")
def node_codec() -> Iterator[Any]:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    proc = subprocess.Popen(["node", "-e", NODE_LOOP, str(CODECS / "civicair_binary_v1.js")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, bufsize=1)
    assert proc.stdin and proc.stdout

    def decode(data: bytes) -> dict[str, Any]:
        proc.stdin.write(data.hex() + "\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())

    yield decode
    proc.stdin.close()
    proc.wait(10)
    proc.stdout.close()


def python_view(data: bytes) -> dict[str, Any] | None:
    try:
        f = cb.decode(data)
    except InvalidPayload:
        return None
    pos = None if f.position is None else {"lat": f.position.lat, "lon": f.position.lon, "alt": f.position.alt}
    return {"pm1": f.pm1, "pm25": f.pm25, "pm10": f.pm10, "temperature": f.temperature, "humidity": f.humidity,
            "pressure": f.pressure, "no2": f.no2, "battery_v": f.battery_v, "position": pos,
            "sensor_error": f.sensor_error}


def steps(n: int, lo: int, hi: int) -> st.SearchStrategy[float | None]:
    return st.none() | st.integers(lo, hi).map(lambda k: k / n)


frames = st.fixed_dictionaries({
    "pm1": steps(10, 0, 0xFFFE), "pm25": steps(10, 0, 0xFFFE), "pm10": steps(10, 0, 0xFFFE),
    "temperature": steps(100, -32768, 32766), "humidity": steps(2, 0, 0xFE), "pressure": steps(10, 0, 0xFFFE),
    "no2": steps(10, 0, 0xFFFE), "battery_v": st.none() | st.integers(0, 0xFE).map(lambda k: 2 + k / 100),
    "sensor_error": st.none() | st.integers(0, 0xFFFF),
    "gps": st.none() | st.tuples(st.integers(-900_000_000, 900_000_000), st.integers(-1_800_000_000, 1_800_000_000),
                                 st.none() | st.integers(-32768, 32766)),
})


def encode(fr: dict[str, Any]) -> bytes:
    kw = {k: v for k, v in fr.items() if k != "gps"}
    if fr["gps"] is not None:
        kw.update(lat=fr["gps"][0] / 1e7, lon=fr["gps"][1] / 1e7, alt=fr["gps"][2])
    return cb.encode(**kw)


def js_view(out: dict[str, Any]) -> dict[str, Any] | None:
    if "errors" in out:
        return None
    data = dict(out["data"])
    if data["position"] is not None and data["position"]["alt"] is not None:
        data["position"]["alt"] = float(data["position"]["alt"])
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames)
def test_js_decodes_what_python_decodes(node_codec: Any, fr: dict[str, Any]) -> None:
    data = encode(fr)
    expected = python_view(data)
    assert expected is not None
    assert js_view(node_codec(data)) == expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=32) | frames.map(encode).flatmap(
    lambda b: st.tuples(st.integers(0, len(b) - 1), st.integers(0, 255)).map(
        lambda t: b[:t[0]] + bytes([t[1]]) + b[t[0] + 1:])))
def test_js_rejects_what_python_rejects(node_codec: Any, data: bytes) -> None:
    assert js_view(node_codec(data)) == python_view(data)


C_MAIN = r"""
#include <stdio.h>
#include "civicair_binary_v1.h"
int main(void) {
  civicair_frame_t f;
  double v[13];
  while (scanf("%lf %lf %lf %lf %lf %lf %lf %lf %d %lf %lf %lf %d %lf", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
               &v[6], &v[7], &f.has_gps, &f.lat, &f.lon, &v[8], &f.has_error, &v[9]) == 14) {
    f.pm1 = v[0]; f.pm25 = v[1]; f.pm10 = v[2]; f.temperature = v[3]; f.humidity = v[4]; f.pressure = v[5];
    f.battery_v = v[6]; f.no2 = v[7]; f.alt = v[8]; f.sensor_error = (uint16_t)v[9];
    uint8_t buf[CIVICAIR_MAX_LEN];
    size_t n = civicair_encode(&f, buf);
    for (size_t i = 0; i < n; i++) printf("%02x", buf[i]);
    printf("\n");
  }
  return 0;
}
"""


@pytest.mark.slow
def test_c_encoder_matches_python(tmp_path: Path) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    (tmp_path / "main.c").write_text(C_MAIN)
    exe = tmp_path / "enc"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", "-I", str(CODECS), str(tmp_path / "main.c"), "-o", str(exe),
                    "-lm"], check=True, capture_output=True, timeout=60)
    examples: list[dict[str, Any]] = []

    @settings(max_examples=300, database=None)
    @given(frames)
    def collect(fr: dict[str, Any]) -> None:
        examples.append(fr)

    collect()

    def num(x: float | None) -> str:
        return "nan" if x is None else repr(float(x))

    lines = []
    for fr in examples:
        gps = fr["gps"]
        lines.append(" ".join([
            *(num(fr[k]) for k in ("pm1", "pm25", "pm10", "temperature", "humidity", "pressure", "battery_v", "no2")),
            "1" if gps else "0", num(gps[0] / 1e7 if gps else 0), num(gps[1] / 1e7 if gps else 0),
            num(gps[2] if gps else None), "0" if fr["sensor_error"] is None else "1", num(fr["sensor_error"] or 0)]))
    out = subprocess.run([str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True,
                         timeout=60).stdout.split()
    assert len(out) == len(examples)
    for fr, hex_c in zip(examples, out, strict=True):
        assert hex_c == encode(fr).hex(), fr
