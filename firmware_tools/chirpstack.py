"""ChirpStack v4 provisioning over gRPC (chirpstack-api): create the device and its OTAA keys.

Idempotent: a device that already exists is updated, keys that already exist are replaced.
LoRaWAN 1.0.x devices carry their AppKey in `nwk_key` (ChirpStack's naming follows 1.1, where
the 1.0.x AppKey became NwkKey). gRPC errors become `ProvisioningError` with one clear line.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import grpc
from chirpstack_api.api import device_pb2, device_pb2_grpc
from civicair.core.errors import CivicairError


class ProvisioningError(CivicairError):
    status = 502
    title = "ChirpStack provisioning failed"


@dataclass(frozen=True)
class ChirpStackTarget:
    url: str  # http://host:8080, https://host, or host:port
    api_key: str
    application_id: str
    device_profile_id: str
    timeout_s: float = 10.0


@dataclass(frozen=True)
class ProvisionedDevice:
    dev_eui: str
    created: bool  # False: it existed and was updated
    keys_created: bool  # False: keys existed and were replaced
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        what = "created" if self.created else "already existed, updated"
        keys = "keys set" if self.keys_created else "keys replaced"
        return f"ChirpStack: device {self.dev_eui} {what}, {keys}"


def _channel(url: str) -> grpc.Channel:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    host = parts.hostname or "127.0.0.1"
    if parts.scheme in ("https", "grpcs"):
        return grpc.secure_channel(f"{host}:{parts.port or 443}", grpc.ssl_channel_credentials())
    return grpc.insecure_channel(f"{host}:{parts.port or 8080}")


def _explain(exc: grpc.RpcError, target: ChirpStackTarget, step: str) -> ProvisioningError:
    code = exc.code()
    detail = (exc.details() or "").strip()
    if code == grpc.StatusCode.UNAUTHENTICATED:
        msg = ("ChirpStack rejected the API key (CIVICAIR_CHIRPSTACK_API_KEY): create one under "
               "API keys in the ChirpStack UI")
    elif code == grpc.StatusCode.PERMISSION_DENIED:
        msg = (f"the ChirpStack API key may not {step} in application {target.application_id} "
               "(CIVICAIR_CHIRPSTACK_APPLICATION_ID): use a tenant or admin key")
    elif code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT,
                  grpc.StatusCode.FAILED_PRECONDITION) and step == "create devices":
        msg = (f"ChirpStack refused the device: check CIVICAIR_CHIRPSTACK_DEVICE_PROFILE_ID "
               f"({target.device_profile_id}) and CIVICAIR_CHIRPSTACK_APPLICATION_ID "
               f"({target.application_id}) exist and belong to the same tenant")
    elif code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        msg = f"cannot reach ChirpStack at {target.url} (CIVICAIR_CHIRPSTACK_URL)"
    else:
        msg = f"ChirpStack could not {step}"
    return ProvisioningError(f"{msg} [{code.name}: {detail}]" if detail else f"{msg} [{code.name}]")


def provision_device(
    target: ChirpStackTarget,
    *,
    dev_eui: str,
    join_eui: str,
    app_key: str,
    name: str,
    description: str = "",
    tags: dict[str, str] | None = None,
) -> ProvisionedDevice:
    """Create (or update) the device and set (or replace) its OTAA keys."""
    metadata = (("authorization", f"Bearer {target.api_key}"),)
    device = device_pb2.Device(
        dev_eui=dev_eui, name=name, description=description, application_id=target.application_id,
        device_profile_id=target.device_profile_id, join_eui=join_eui, tags=tags or {},
    )
    keys = device_pb2.DeviceKeys(dev_eui=dev_eui, nwk_key=app_key)  # app_key: 1.1.x only
    with _channel(target.url) as channel:
        stub = device_pb2_grpc.DeviceServiceStub(channel)

        def create_or_update(create: Callable[..., object], update: Callable[..., object], action: str) -> bool:
            """True when created; an existing one (ALREADY_EXISTS) is updated instead."""
            try:
                create(metadata=metadata, timeout=target.timeout_s)
                return True
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                    raise _explain(exc, target, action) from None
            try:
                update(metadata=metadata, timeout=target.timeout_s)
            except grpc.RpcError as exc:
                raise _explain(exc, target, action) from None
            return False

        created = create_or_update(
            functools.partial(stub.Create, device_pb2.CreateDeviceRequest(device=device)),
            functools.partial(stub.Update, device_pb2.UpdateDeviceRequest(device=device)), "create devices")
        keys_created = create_or_update(
            functools.partial(stub.CreateKeys, device_pb2.CreateDeviceKeysRequest(device_keys=keys)),
            functools.partial(stub.UpdateKeys, device_pb2.UpdateDeviceKeysRequest(device_keys=keys)),
            "set device keys")
    return ProvisionedDevice(dev_eui=dev_eui, created=created, keys_created=keys_created)


def delete_device(target: ChirpStackTarget, dev_eui: str) -> str:
    """Delete the device from ChirpStack (its uplinks stop reaching the MQTT integration); one that
    does not exist (already deleted) is fine. The one-line outcome."""
    metadata = (("authorization", f"Bearer {target.api_key}"),)
    with _channel(target.url) as channel:
        stub = device_pb2_grpc.DeviceServiceStub(channel)
        try:
            stub.Delete(device_pb2.DeleteDeviceRequest(dev_eui=dev_eui), metadata=metadata, timeout=target.timeout_s)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return f"ChirpStack: device {dev_eui} was not there"
            raise _explain(exc, target, "delete devices") from None
    return f"ChirpStack: device {dev_eui} deleted"
