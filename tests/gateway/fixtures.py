"""Wire-format messages written from the published formats (ChirpStack v4 docs / TTS v3 docs),
carrying our own payloads. The vendor fixtures in ../shared/data are read by the tests directly."""

from __future__ import annotations

import base64
import json
import uuid

from civicair.gateway.codecs import cayenne, civicair_binary

BINARY = civicair_binary.encode(pm1=4.2, pm25=7.5, pm10=11.0, temperature=18.25, humidity=55.5,
                                pressure=1008.4, battery_v=3.71)
MOBILE_BINARY = civicair_binary.encode(pm25=9.9, pm10=15.1, lat=52.0907, lon=5.1214, alt=12, battery_v=3.9)
CAYENNE = (cayenne.encode_value(2, 2, 12.5) + cayenne.encode_value(3, 125, 420)
           + cayenne.encode_value(5, 103, 21.4) + cayenne.encode_value(6, 104, 60.5)
           + cayenne.encode_value(7, 115, 1012.3) + cayenne.encode_value(8, 116, 3.3))


def chirpstack_up(dev_eui: str, data: bytes | None, *, f_port: int | None = 1, f_cnt: int | None = 7,
                  dedup: str | None = None, obj: dict | None = None,
                  drop: tuple[str, ...] = ()) -> bytes:
    doc = {
        "deduplicationId": dedup or str(uuid.uuid4()),  # ChirpStack: a fresh UUID per uplink
        "time": "2026-01-15T10:00:00.123456+00:00",
        "deviceInfo": {"tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242", "tenantName": "Metropole",
                       "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97", "applicationName": "civicair",
                       "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad", "deviceProfileName": "civicair-v1",
                       "deviceName": "balcony-1", "devEui": dev_eui, "tags": {"site": "balcony"}},
        "devAddr": "00189440", "adr": True, "dr": 5, "fCnt": f_cnt, "fPort": f_port, "confirmed": False,
        "data": base64.b64encode(data).decode() if data is not None else None,
        "rxInfo": [
            {"gatewayId": "0016c001f153a14c", "uplinkId": 4217106255, "rssi": -112, "snr": -3.5,
             "channel": 4, "location": {"latitude": 48.58, "longitude": 7.75},
             "context": "EFwMtA==", "nsTime": "2026-01-15T10:00:00.200000+00:00", "crcStatus": "CRC_OK"},
            {"gatewayId": "0016c001f1500812", "uplinkId": 4217106256, "rssi": -95, "snr": 7.25,
             "channel": 4, "location": {"latitude": 48.59, "longitude": 7.74},
             "context": "EFwMtB==", "nsTime": "2026-01-15T10:00:00.210000+00:00", "crcStatus": "CRC_OK"},
        ],
        "txInfo": {"frequency": 868100000,
                   "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 7, "codeRate": "CR_4_5"}}},
    }
    if obj is not None:
        doc["object"] = obj
    for key in drop:
        doc.pop(key, None)
    return json.dumps(doc).encode()


def chirpstack_status(dev_eui: str, level: float | None = 87.5) -> bytes:
    doc = {"deduplicationId": "5b0e5b1a-1f3d-4c55-9a6a-1a1a2b2b3c3c", "time": "2026-01-15T10:00:00+00:00",
           "deviceInfo": {"devEui": dev_eui, "deviceName": "balcony-1"}, "margin": 9,
           "externalPowerSource": False, "batteryLevelUnavailable": level is None}
    if level is not None:
        doc["batteryLevel"] = level
    return json.dumps(doc).encode()


def tts_up(device_id: str, data: bytes | None, *, dev_eui: str | None = None, f_port: int = 1,
           f_cnt: int = 0, decoded: dict | None = None) -> bytes:
    """TTS omits zero, empty and false fields: f_cnt 0 and absent dev_eui are left out."""
    ids: dict = {"device_id": device_id, "application_ids": {"application_id": "civicair"},
                 "join_eui": "0000000000000000", "dev_addr": "260B1234"}
    if dev_eui:
        ids["dev_eui"] = dev_eui.upper()
    up: dict = {"session_key_id": "AXAWYbtxgUllLtJWdZrW0Q==", "f_port": f_port,
                "rx_metadata": [{"gateway_ids": {"gateway_id": "eui-b827ebfffe9f2da9", "eui": "B827EBFFFE9F2DA9"},
                                 "time": "2026-01-15T10:00:00Z", "timestamp": 436812492, "rssi": -101,
                                 "channel_rssi": -101, "snr": 6.5, "channel_index": 6}],
                "settings": {"data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 9}},
                             "coding_rate": "4/5", "frequency": "868100000", "timestamp": 436812492},
                "received_at": "2026-01-15T10:00:00.234172599Z"}
    if data is not None:
        up["frm_payload"] = base64.b64encode(data).decode()
    if f_cnt:
        up["f_cnt"] = f_cnt
    if decoded is not None:
        up["decoded_payload"] = decoded
    doc = {"end_device_ids": ids, "correlation_ids": [f"as:up:01HTEST{device_id[:10].upper()}{f_cnt}"],
           "received_at": "2026-01-15T10:00:00.447941836Z", "uplink_message": up}
    return json.dumps(doc).encode()
