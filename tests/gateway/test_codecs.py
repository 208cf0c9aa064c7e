"""Pure codec tests: civicair binary v1 round trip and layout, CayenneLPP, fuzz."""

from __future__ import annotations

import math

import pytest
from civicair.core.errors import InvalidPayload
from civicair.gateway.codecs import cayenne, civicair_binary, decode_port_payload
from hypothesis import given, settings
from hypothesis import strategies as st


def test_binary_layout_example_from_the_docstring() -> None:
    frame = bytes.fromhex("0100007B00C8012C08FC5A27957C")
    f = civicair_binary.decode(frame)
    assert (f.pm1, f.pm25, f.pm10, f.temperature, f.humidity, f.pressure, f.battery_v) == (
        12.3, 20.0, 30.0, 23.0, 45.0, 1013.3, 3.24)
    assert f.no2 is None and f.position is None and f.sensor_error is None
    assert civicair_binary.encode(pm1=12.3, pm25=20, pm10=30, temperature=23, humidity=45,
                                  pressure=1013.3, battery_v=3.24) == frame


def test_binary_full_frame_fits_dr0() -> None:
    b = civicair_binary.encode(pm1=999.9, pm25=999.9, pm10=999.9, temperature=-39.99, humidity=100,
                               pressure=1100, no2=1999.9, battery_v=4.2, lat=-89.9999999,
                               lon=179.9999999, alt=-100, sensor_error=2080)
    assert len(b) == civicair_binary.MAX_LENGTH <= 51
    f = civicair_binary.decode(b)
    assert f.position is not None and f.position.lat == -89.9999999 and f.position.alt == -100
    assert f.no2 == 1999.9 and f.sensor_error == 2080 and f.temperature == -39.99


opt = st.none() | st.floats(0, 6553.4)


@given(pm1=opt, pm25=opt, pm10=opt, t=st.none() | st.floats(-327.67, 327.66), rh=st.none() | st.floats(0, 127),
       p=opt, no2=opt, batt=st.none() | st.floats(2.0, 4.54),
       gps=st.none() | st.tuples(st.floats(-90, 90), st.floats(-180, 180), st.none() | st.integers(-32768, 32766)),
       err=st.none() | st.integers(0, 65535))
def test_binary_round_trip(pm1, pm25, pm10, t, rh, p, no2, batt, gps, err) -> None:
    lat, lon, alt = gps if gps else (None, None, None)
    b = civicair_binary.encode(pm1=pm1, pm25=pm25, pm10=pm10, temperature=t, humidity=rh, pressure=p,
                               no2=no2, battery_v=batt, lat=lat, lon=lon, alt=alt, sensor_error=err)
    f = civicair_binary.decode(b)
    for got, sent, res in ((f.pm1, pm1, 0.05), (f.pm25, pm25, 0.05), (f.pm10, pm10, 0.05),
                           (f.temperature, t, 0.005), (f.humidity, rh, 0.25), (f.pressure, p, 0.05),
                           (f.no2, no2, 0.05), (f.battery_v, batt, 0.005)):
        assert (got is None) == (sent is None)
        if sent is not None:
            assert abs(got - sent) <= res + 1e-9
    if gps:
        assert abs(f.position.lat - lat) <= 1e-7 and abs(f.position.lon - lon) <= 1e-7
    assert f.sensor_error == err
    assert civicair_binary.encode(**_frame_kwargs(f)) == b  # decode ∘ encode is stable


def _frame_kwargs(f: civicair_binary.Frame) -> dict:
    pos = f.position
    return dict(pm1=f.pm1, pm25=f.pm25, pm10=f.pm10, temperature=f.temperature, humidity=f.humidity,
                pressure=f.pressure, no2=f.no2, battery_v=f.battery_v, lat=pos.lat if pos else None,
                lon=pos.lon if pos else None, alt=pos.alt if pos else None, sensor_error=f.sensor_error)


@pytest.mark.parametrize("bad", [b"", b"\x01", b"\x02" + bytes(13), b"\x01\x08" + bytes(12),
                                 b"\x01\x01" + bytes(12), b"\x01\x00" + bytes(13)])
def test_binary_rejects_malformed(bad: bytes) -> None:
    with pytest.raises(InvalidPayload):
        civicair_binary.decode(bad)


def test_binary_encoder_refuses_what_it_cannot_carry() -> None:
    for kwargs in ({"pm25": -1}, {"pm25": math.nan}, {"lat": 91, "lon": 0}, {"lat": 1}, {"battery_v": 5}):
        with pytest.raises(ValueError):
            civicair_binary.encode(**kwargs)


def test_cayenne_civicair_channels() -> None:
    data = (cayenne.encode_value(1, 2, 3.25) + cayenne.encode_value(3, 100, 812)
            + cayenne.encode_value(4, 2, -0.5) + cayenne.encode_value(9, 103, -4.1)
            + cayenne.encode_value(9, 104, 99.5) + cayenne.encode_value(9, 115, 987.6)
            + cayenne.encode_value(10, 2, 3.61) + cayenne.encode_gps(11, 48.5734, 7.7521, 142.5)
            + cayenne.encode_value(12, 133, 1767225600) + cayenne.encode_value(13, 101, 300))
    c = cayenne.decode(data)
    assert [(v.name, v.value) for v in c.values] == [
        ("pm1", 3.25), ("pm10", 812), ("no2", -0.5), ("temperature", -4.1), ("humidity", 99.5),
        ("pressure", 987.6), ("cayenne_illuminance_13", 300)]
    assert c.battery_v == 3.61
    assert (c.position.lat, c.position.lon, c.position.alt) == (48.5734, 7.7521, 142.5)
    assert c.time is not None and c.time.year == 2026


@pytest.mark.parametrize("bad", [b"", b"\x01", b"\x01\x67\x00", b"\x01\xfe\x00\x00", b"\x01\x88" + b"\x7f" * 9])
def test_cayenne_rejects_malformed(bad: bytes) -> None:
    with pytest.raises(InvalidPayload):
        cayenne.decode(bad)


@settings(max_examples=400)
@given(port=st.none() | st.integers(-5, 300), data=st.binary(max_size=80))
def test_codec_fuzz_only_invalid_payload_escapes(port, data) -> None:
    try:
        decode_port_payload(port, data)
    except InvalidPayload:
        pass


def test_codec_one_megabyte() -> None:
    for port in (1, 2):
        with pytest.raises(InvalidPayload):
            decode_port_payload(port, b"\x01\x00\x00" * 333_334)
