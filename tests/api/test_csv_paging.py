"""CSV pages through `Link: <...>; rel="next"` (docs/open-data.md#paging-and-limits): a month of
a zone's series at `limit=100&format=csv` walks page after page, every page a CSV with its header
(an empty one too: the page windows are spans of hours), until the last, which has no next link;
the rows are the month's, each once, as the JSON of one page gives them. The same for a device's
series, a station's series, the device list and the mobile cells."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime

import httpx
import pytest

from tests.open_export.fixture import ZONE, seed

pytestmark = pytest.mark.db
DAYS = [date(2026, 11, d) for d in (3, 10, 20, 27)]
MONTH = {"datetime_from": "2026-11-01T00:00:00Z", "datetime_to": "2026-12-01T00:00:00Z"}
NEXT = re.compile(r'<([^>]+)>; rel="next"')


def walk(client: httpx.Client, base: str, path: str, **params: object) -> tuple[list[str], list[dict[str, str]], int]:
    """(header, rows, pages) of every CSV page, following the Link header from the first URL."""
    url: str | None = f"{path}?{httpx.QueryParams(params)}"
    header: list[str] | None = None
    out: list[dict[str, str]] = []
    pages = 0
    while url:
        r = client.get(url)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), r.text
        reader = csv.DictReader(io.StringIO(r.text))
        assert reader.fieldnames, f"page {pages + 1} of {path} has no header: {r.content!r}"
        assert header is None or reader.fieldnames == header
        header = list(reader.fieldnames)
        out += list(reader)
        pages += 1
        m = NEXT.search(r.headers.get("link", ""))
        url = m.group(1) if m else None
        if url:
            assert url.startswith(f"{base}{path}?") and "cursor=" in url  # on the public URL
            url = url.removeprefix(base)
    return header or [], out, pages


@pytest.fixture
def client(db, settings, live_api):
    seed(db.engine, DAYS[0], DAYS[1:])
    with httpx.Client(base_url=live_api, timeout=30) as c:
        yield c


def test_a_month_of_zone_series_pages_through_link_headers(client, live_api) -> None:
    header, rows, pages = walk(client, live_api, f"/v1/zones/{ZONE}/series", quantity="pm25", limit=100,
                               format="csv", **MONTH)
    assert pages == 8  # 720 hours in windows of 100
    whole = client.get(f"/v1/zones/{ZONE}/series", params={"quantity": "pm25", "limit": 1000, **MONTH}).json()
    assert whole["meta"]["cursor"] is None and len(whole["results"]) == len(DAYS)
    assert [r["period.datetime_from"] for r in rows] == [
        datetime.fromisoformat(r["period"]["datetime_from"]).isoformat() for r in whole["results"]]
    assert header[:3] == ["period.datetime_from", "period.datetime_to", "period.interval"] and "n_devices" in header
    # an empty page is a CSV with the same header, not a 1-byte body
    empty = client.get(f"/v1/zones/{ZONE}/series", params={"quantity": "pm25", "limit": 100, "format": "csv",
                                                           "datetime_from": "2026-11-04T00:00:00Z",
                                                           "datetime_to": "2026-11-08T00:00:00Z"})
    assert empty.text.splitlines() == [",".join(header)] and "rel=\"next\"" not in empty.headers["link"]
    # JSON pages carry the same link next to meta.cursor
    first = client.get(f"/v1/zones/{ZONE}/series", params={"quantity": "pm25", "limit": 100, **MONTH})
    assert f"cursor={first.json()['meta']['cursor']}" in NEXT.search(first.headers["link"]).group(1)


def test_other_paged_endpoints_page_csv_the_same_way(client, live_api, settings) -> None:
    devices = client.get("/v1/devices", params={"limit": 1000}).json()["results"]
    fixed = next(d["pseudonym"] for d in devices if d.get("has_series"))
    for path, params, expected in (
        (f"/v1/devices/{fixed}/series", {"quantity": "pm25", "limit": 5, **MONTH}, None),
        ("/v1/stations/FR01011/series", {"quantity": "no2", "limit": 3, **MONTH}, 2 * len(DAYS)),
        ("/v1/devices", {"limit": 2}, len(devices)),
        ("/v1/mobile/cells", {"quantity": "pm25", "limit": 4, "datetime_from": "2026-11-03T00:00:00Z",
                              "datetime_to": "2026-11-04T00:00:00Z"}, None),
    ):
        header, rows, pages = walk(client, live_api, path, format="csv", **params)
        whole = client.get(path, params={**params, "limit": 1000}).json()["results"]
        assert len(rows) == len(whole) and pages > 1, (path, len(rows), pages)
        if expected is not None:
            assert len(rows) == expected, path
        assert len({tuple(r.values()) for r in rows}) == len(rows)  # each row once
        assert header, path


def test_the_empty_page_header_is_the_header_of_real_rows(client) -> None:
    """The CSV header of an empty page (from the documented row shape) is the header real rows give."""
    for path, params in ((f"/v1/zones/{ZONE}/series", {"quantity": "pm25"}),
                         ("/v1/stations/FR01011/series", {"quantity": "no2"}),
                         ("/v1/mobile/cells", {"quantity": "pm25"})):
        day = {"datetime_from": "2026-11-03T00:00:00Z", "datetime_to": "2026-11-04T00:00:00Z"}
        none = {"datetime_from": "2026-11-05T00:00:00Z", "datetime_to": "2026-11-06T00:00:00Z"}
        full = client.get(path, params={**params, **day, "format": "csv"}).text.splitlines()
        empty = client.get(path, params={**params, **none, "format": "csv"}).text.splitlines()
        assert len(full) > 1 and empty == full[:1], (path, full[:1], empty)

