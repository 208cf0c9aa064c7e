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


def _fuzz(operation, base: str, headers: dict[str, str], failures: list[str],  # type: ignore[no-untyped-def]
          accepted: list[str]) -> int:
    """Positive and negative cases of one operation; the server errors go to `failures`, the
    2xx answers' paths to `accepted`."""
    from schemathesis.generation import GenerationMode

    n = 0

    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
           | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case) -> None:  # type: ignore[no-untyped-def]
        nonlocal n
        n += 1
        response = case.call(base_url=base, headers=headers)
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} {case.query} → {response.status_code}")
        elif response.status_code < 300:
            accepted.append(operation.path)

    run()
    return n


def test_schemathesis_finds_no_server_error(city, serve, db, request) -> None:
    """Every /v1 operation, the authenticated ones too: the partner and operator paths with a key
    of both scopes, the volunteer paths with a real device's token (rotation without it, so the
    token keeps working for the other operations)."""
    import schemathesis
    from civicair.calibration.repository import create_partner_key
    from civicair.core.security import hash_secret
    from civicair.firmware_tools.schemas import RegistrationRequest
    from civicair.firmware_tools.service import register_device

    base = serve(rate_limit_per_minute=100_000)
    key = "schemathesis-partner-key-0123456789"
    with db.engine.begin() as conn:
        create_partner_key(conn, "fuzz", hash_secret(key), ["calibration", "operator"])
        device = register_device(conn, request.getfixturevalue("settings"), RegistrationRequest(name="fuzz", kind="mobile", sensors=["SDS011"], transport="http",
                                                                     lat=48.58, lon=7.75, email="fuzz@example.org"))
    schema = schemathesis.openapi.from_dict(httpx.get(f"{base}/openapi.json").json())
    failures: list[str] = []
    accepted: list[str] = []
    n_cases: dict[str, int] = {"public": 0, "partner": 0, "volunteer": 0}
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith("/v1/"):
            continue
        headers: dict[str, str] = {}
        area = "public"
        if operation.path.startswith(("/v1/partner", "/v1/operator")):
            headers, area = {"X-API-Key": key}, "partner"
        elif operation.path.startswith("/v1/volunteer"):
            area = "volunteer"
            if not operation.path.endswith("/rotate"):
                headers = {"Authorization": f"Bearer {device.credentials.device_token}"}

        n_cases[area] += _fuzz(operation, base, headers, failures, accepted)
    assert n_cases["public"] > 100 and n_cases["partner"] > 50 and n_cases["volunteer"] > 50, n_cases
    assert failures == []
    # the credentials let the cases in (not only 401s), and the token still works afterwards
    assert any(p.startswith("/v1/operator") for p in accepted) and any(p.startswith("/v1/volunteer/device") for p in accepted)
    me = httpx.get(f"{base}/v1/volunteer/me", headers={"Authorization": f"Bearer {device.credentials.device_token}"})
    assert me.status_code == 200, me.text
