"""The firmware C encoder header produces the same bytes as the Python encoder: the header is
compiled with the system C compiler into a filter that reads one frame per line."""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.codecs import civicair_binary

HEADER_DIR = Path(__file__).resolve().parents[2] / "firmware_tools" / "codecs"

PROGRAM = r"""
#include <stdio.h>
#include "civicair_binary_v1.h"
int main(void) {
  double v[13]; unsigned err;
  while (scanf("%lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %u", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11], &v[12], &err) == 14) {
    civicair_frame_t f = civicair_frame_empty();
    f.pm1 = v[0]; f.pm25 = v[1]; f.pm10 = v[2]; f.temperature = v[3]; f.humidity = v[4];
    f.pressure = v[5]; f.battery_v = v[6]; f.no2 = v[7];
    f.has_gps = v[8] != 0; f.lat = v[9]; f.lon = v[10]; f.alt = v[11];
    f.has_error = v[12] != 0; f.sensor_error = (uint16_t)err;
    uint8_t buf[CIVICAIR_MAX_LEN];
    size_t n = civicair_encode(&f, buf);
    for (size_t i = 0; i < n; i++) printf("%02x", buf[i]);
    printf("\n"); fflush(stdout);
  }
  return 0;
}
"""


@pytest.fixture(scope="module")
def c_encoder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen[str]]:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    d = tmp_path_factory.mktemp("cenc")
    (d / "main.c").write_text(PROGRAM)
    subprocess.run([cc, "-std=c99", "-Wall", "-Werror", "-I", str(HEADER_DIR), "-o", str(d / "enc"),
                    str(d / "main.c"), "-lm"], check=True, capture_output=True)
    proc = subprocess.Popen([str(d / "enc")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    yield proc
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.close()
    proc.wait(10)
    proc.stdout.close()


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


def _num(v: float | None) -> str:
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else repr(float(v))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames)
def test_c_header_encodes_like_python(c_encoder, frame) -> None:
    assert c_encoder.stdin is not None and c_encoder.stdout is not None
    gps = frame.pop("gps")
    lat = lon = alt = None
    if gps is not None:
        lat, lon, alt = gps[0] / 1e7, gps[1] / 1e7, gps[2]
    expected = civicair_binary.encode(**frame, lat=lat, lon=lon, alt=alt)
    fields = [frame["pm1"], frame["pm25"], frame["pm10"], frame["temperature"], frame["humidity"],
              frame["pressure"], frame["battery_v"], frame["no2"]]
    line = " ".join([*map(_num, fields), "1" if gps else "0", _num(lat or 0.0), _num(lon or 0.0), _num(alt),
                     "1" if frame["sensor_error"] is not None else "0", str(frame["sensor_error"] or 0)])
    c_encoder.stdin.write(line + "\n")
    c_encoder.stdin.flush()
    assert c_encoder.stdout.readline().strip() == expected.hex(), line
