import httpx
from tests.open_export.fixture import seed
def test_twice(db, settings, live_api):
    seed(db.engine)
    with httpx.Client(base_url=live_api) as c:
        for path in ["/v1/devices", "/v1/devices", "/v1/zones", "/v1/zones"]:
            try:
                r = c.get(path); print(path, r.status_code, len(r.content), r.headers.get("content-length"), r.headers.get("content-encoding"))
            except Exception as e:
                print(path, "ERR", e)
    assert 0
