"""ChirpStack provisioning against a real gRPC server started here that implements chirpstack-api's
DeviceService (ChirpStack itself cannot run in the test environment) and records what it gets."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import pytest
import sqlalchemy as sa
from chirpstack_api.api import device_pb2, device_pb2_grpc
from civicair.core import tables
from civicair.core.broker import free_port
from civicair.core.db import Database
from civicair.core.settings import Settings
from civicair.firmware_tools.chirpstack import ChirpStackTarget, ProvisioningError, provision_device
from civicair.firmware_tools.schemas import RegistrationRequest
from civicair.firmware_tools.service import register_device
from google.protobuf import empty_pb2
from pydantic import SecretStr

API_KEY = "test-api-key"
PROFILE = "3f1e8a52-0000-4000-8000-000000000001"


@dataclass
class FakeChirpStack(device_pb2_grpc.DeviceServiceServicer):
    devices: dict[str, device_pb2.Device] = field(default_factory=dict)
    keys: dict[str, device_pb2.DeviceKeys] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def _auth(self, context: grpc.ServicerContext) -> None:
        md = dict(context.invocation_metadata())
        if md.get("authorization") != f"Bearer {API_KEY}":
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "authorization token is invalid")

    def Create(self, request, context):  # noqa: N802 - gRPC method name
        self._auth(context)
        self.calls.append(("Create", request.device.dev_eui))
        if request.device.device_profile_id != PROFILE:
            context.abort(grpc.StatusCode.NOT_FOUND, "Object does not exist (id: device_profile)")
        if request.device.dev_eui in self.devices:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, "Object already exists")
        self.devices[request.device.dev_eui] = request.device
        return empty_pb2.Empty()

    def Update(self, request, context):  # noqa: N802
        self._auth(context)
        self.calls.append(("Update", request.device.dev_eui))
        self.devices[request.device.dev_eui] = request.device
        return empty_pb2.Empty()

    def CreateKeys(self, request, context):  # noqa: N802
        self._auth(context)
        self.calls.append(("CreateKeys", request.device_keys.dev_eui))
        if request.device_keys.dev_eui in self.keys:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, "Object already exists")
        self.keys[request.device_keys.dev_eui] = request.device_keys
        return empty_pb2.Empty()

    def UpdateKeys(self, request, context):  # noqa: N802
        self._auth(context)
        self.calls.append(("UpdateKeys", request.device_keys.dev_eui))
        self.keys[request.device_keys.dev_eui] = request.device_keys
        return empty_pb2.Empty()

    def Delete(self, request, context):  # noqa: N802
        self._auth(context)
        self.calls.append(("Delete", request.dev_eui))
        if request.dev_eui not in self.devices:
            context.abort(grpc.StatusCode.NOT_FOUND, "Object does not exist")
        del self.devices[request.dev_eui]
        self.keys.pop(request.dev_eui, None)
        return empty_pb2.Empty()


@pytest.fixture
def chirpstack() -> Iterator[tuple[FakeChirpStack, str]]:
    fake = FakeChirpStack()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    device_pb2_grpc.add_DeviceServiceServicer_to_server(fake, server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    yield fake, f"http://127.0.0.1:{port}"
    server.stop(None).wait()


def target(url: str, **changes: str) -> ChirpStackTarget:
    values = {"url": url, "api_key": API_KEY, "application_id": "app-1", "device_profile_id": PROFILE}
    values.update(changes)
    return ChirpStackTarget(**values, timeout_s=5)


def test_create_then_idempotent(chirpstack: tuple[FakeChirpStack, str]) -> None:
    fake, url = chirpstack
    app_key = "00112233445566778899aabbccddeeff"
    first = provision_device(target(url), dev_eui="70b3d57ed0001234", join_eui="0000000000000000",
                             app_key=app_key, name="ca-1")
    assert first.created and first.keys_created
    dev = fake.devices["70b3d57ed0001234"]
    assert (dev.application_id, dev.device_profile_id, dev.name) == ("app-1", PROFILE, "ca-1")
    keys = fake.keys["70b3d57ed0001234"]
    assert keys.nwk_key == app_key and keys.app_key == ""  # LoRaWAN 1.0.x: AppKey goes in nwk_key
    again = provision_device(target(url), dev_eui="70b3d57ed0001234", join_eui="0000000000000000",
                             app_key="ff" * 16, name="ca-1")
    assert not again.created and not again.keys_created
    assert fake.keys["70b3d57ed0001234"].nwk_key == "ff" * 16
    assert [c[0] for c in fake.calls] == ["Create", "CreateKeys", "Create", "Update", "CreateKeys", "UpdateKeys"]


def test_clear_errors(chirpstack: tuple[FakeChirpStack, str]) -> None:
    fake, url = chirpstack
    kwargs = {"dev_eui": "70b3d57ed0001234", "join_eui": "0" * 16, "app_key": "11" * 16, "name": "x"}
    with pytest.raises(ProvisioningError, match="rejected the API key.*UNAUTHENTICATED"):
        provision_device(target(url, api_key="wrong"), **kwargs)
    with pytest.raises(ProvisioningError, match="CIVICAIR_CHIRPSTACK_DEVICE_PROFILE_ID.*NOT_FOUND"):
        provision_device(target(url, device_profile_id="nope"), **kwargs)
    assert fake.devices == {} and fake.keys == {}


def test_registration_provisions_when_configured(chirpstack: tuple[FakeChirpStack, str], settings: Settings,
                                                 db: Database) -> None:
    fake, url = chirpstack
    conf = settings.model_copy(update={"chirpstack_url": url, "chirpstack_api_key": SecretStr(API_KEY),
                                       "chirpstack_application_id": "app-1", "chirpstack_device_profile_id": PROFILE})
    req = RegistrationRequest(name="roof", kind="fixed", sensors=["SPS30"], transport="lorawan", lat=43.6, lon=1.44,
                              email="dan@example.org")
    with db.engine.begin() as conn:
        res = register_device(conn, conf, req)
    assert res.chirpstack and "created" in res.chirpstack
    eui = res.credentials.lorawan.dev_eui
    assert fake.keys[eui].nwk_key == res.credentials.lorawan.app_key
    assert fake.devices[eui].tags["civicair_uid"] == res.uid
    # an auth problem aborts the registration: nothing half-created in our database
    bad = conf.model_copy(update={"chirpstack_api_key": SecretStr("wrong")})
    with pytest.raises(ProvisioningError), db.engine.begin() as conn:
        register_device(conn, bad, req)
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.devices)).scalar_one() == 1
