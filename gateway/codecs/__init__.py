"""LoRaWAN payload codecs (pure): civicair compact binary v1 and CayenneLPP.

The codec of a LoRaWAN `data` field is chosen by fPort (documented in the README):

* fPort 1 — civicair compact binary v1 (`gateway.codecs.civicair_binary`)
* fPort 2 — CayenneLPP with the civicair channel convention (`gateway.codecs.cayenne`)

Any other port has no codec here: the network server must decode it (`object` /
`decoded_payload`), otherwise the message goes to the dead letters with its raw bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from civicair.core.domain import Position, RawValue
from civicair.core.errors import InvalidPayload
from civicair.gateway.codecs import cayenne, civicair_binary

PORT_CIVICAIR_BINARY = 1
PORT_CAYENNE = 2


@dataclass(frozen=True, slots=True)
class DecodedPayload:
    values: tuple[RawValue, ...] = ()
    position: Position | None = None
    battery_v: float | None = None
    time: datetime | None = None
    sensor_error: int | None = None


def decode_port_payload(f_port: int | None, data: bytes) -> DecodedPayload:
    """Decode LoRaWAN application bytes by fPort; raises InvalidPayload only."""
    if f_port == PORT_CIVICAIR_BINARY:
        f = civicair_binary.decode(data)
        return DecodedPayload(f.raw_values(), f.position, f.battery_v, None, f.sensor_error)
    if f_port == PORT_CAYENNE:
        c = cayenne.decode(data)
        return DecodedPayload(c.values, c.position, c.battery_v, c.time)
    raise InvalidPayload(f"no codec for fPort {f_port} (1 = civicair binary v1, 2 = CayenneLPP)")


__all__ = ["DecodedPayload", "decode_port_payload", "PORT_CAYENNE", "PORT_CIVICAIR_BINARY",
           "cayenne", "civicair_binary"]
