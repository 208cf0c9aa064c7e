"""Bad input and abuse: problem+json naming the parameter, ranges, unknown ids, SQL-looking
strings, and schemathesis against the OpenAPI schema (zero 5xx)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.city import T0

pytestmark = pytest.mark.db


def problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


@pytest.mark.parametrize(("params", "name"), [
    ({"quantity": "plutonium"}, "quantity"),
    ({"interval": "week"}, "interval"),
    ({"limit": "1001"}, "limit"),
    ({"limit": "0"}, "limit"),
    ({"datetime_from": "yesterday"}, "datetime_from"),
    ({"format": "xml"}, "format"),
    ({"cursor": "!!notacursor"}, "cursor"),
])
def test_invalid_parameters_are_422_naming_the_parameter(city, live_api, params, name) -> None:
    body = problem(httpx.get(f"{live_api}/v1/zones/{city.zone_id}/series", params=params), 422)
    assert name in body["detail"]


def test_far_future_and_bad_mobile_cursor_are_client_errors(city, live_api) -> None:
    problem(httpx.get(f"{live_api}/v1/zones/{city.zone_id}/series",
                      params={"datetime_from": "9999-12-31T23:00:00Z"}), 400)
    body = problem(httpx.get(f"{live_api}/v1/mobile/cells", params={"cursor": "KU6"}), 422)
    assert "cursor" in body["detail"]


def test_bad_cursor_content_is_422(city, live_api) -> None:
    body = problem(httpx.get(f"{live_api}/v1/zones/{city.zone_id}/series", params={"cursor": "Zm9v"}), 422)
    assert "cursor" in body["detail"]
    body = problem(httpx.get(f"{live_api}/v1/devices", params={"cursor": "Jzsgc2VsZWN0"}), 422)
    assert "cursor" in body["detail"]


def test_reversed_and_huge_ranges_are_400(city, live_api) -> None:
    url = f"{live_api}/v1/zones/{city.zone_id}/series"
    body = problem(httpx.get(url, params={"datetime_from": T0.isoformat(),
                                          "datetime_to": (T0 - timedelta(hours=1)).isoformat()}), 400)
    assert "before" in body["detail"]
    body = problem(httpx.get(url, params={"datetime_from": (T0 - timedelta(days=500)).isoformat(),
                                          "datetime_to": T0.isoformat()}), 400)
    assert "400 days" in body["detail"]
    problem(httpx.get(f"{live_api}/v1/mobile/cells", params={"datetime_from": (T0 - timedelta(days=500)).isoformat(),
                                                            "datetime_to": T0.isoformat()}), 400)


def test_unknown_ids_are_404(city, live_api) -> None:
    for path in ("/v1/devices/000000000000", "/v1/devices/000000000000/series", "/v1/zones/99999/series",
                 "/v1/stations/XX000/series", "/v1/zones/8828308281fffff/series"):  # H3 cell of the wrong resolution
        problem(httpx.get(live_api + path), 404)


def test_sql_looking_strings_are_harmless(city, live_api, db) -> None:
    import sqlalchemy as sa

    for value in ("1' OR '1'='1", "x; DROP TABLE devices; --", "%27%20or%201=1"):
        r = httpx.get(f"{live_api}/v1/devices/{value}")
        assert r.status_code in (404, 422)
        r = httpx.get(f"{live_api}/v1/zones/{city.zone_id}/series", params={"quantity": value})
        assert r.status_code == 422
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from devices")).scalar() == 14


@given(st.text(max_size=80))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_arbitrary_path_ids_never_5xx(live_api, value) -> None:
    from urllib.parse import quote

    r = httpx.get(f"{live_api}/v1/zones/{quote(value, safe='')}/series")
    assert r.status_code < 500


def test_schemathesis_finds_no_server_error(city, serve) -> None:
    import schemathesis
    from schemathesis.generation import GenerationMode

    base = serve(rate_limit_per_minute=100_000)
    schema = schemathesis.openapi.from_dict(httpx.get(f"{base}/openapi.json").json())
    failures: list[str] = []
    n_cases = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith("/v1/") or "partner" in operation.path or "volunteer" in operation.path:
            continue

        @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
               | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case) -> None:
            nonlocal n_cases
            n_cases += 1
            response = case.call(base_url=base)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} → {response.status_code}")

        run()
    assert n_cases > 100
    assert failures == []
