"""Device secrets (pure, no I/O): LoRaWAN OTAA keys, MQTT passwords (hashed with
`gateway.mosquitto_auth.hash_mosquitto_password`) and the signed confirmation token of an erase
request. Randomness comes from `secrets` (CSPRNG)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets

DEFAULT_JOIN_EUI = "0000000000000000"


def new_app_key() -> str:
    """A LoRaWAN AppKey: 16 random bytes, 32 lowercase hex."""
    return secrets.token_hex(16)


def new_dev_eui() -> str:
    """A random EUI-64 marked locally administered (bit 1 of byte 0 set) and unicast (bit 0 clear),
    so it cannot collide with an IEEE-assigned DevEUI."""
    raw = bytearray(secrets.token_bytes(8))
    raw[0] = (raw[0] | 0x02) & 0xFE
    return raw.hex()


def new_mqtt_password() -> str:
    return secrets.token_urlsafe(24)


def erase_confirmation(secret: str, uid: str, expires_at: int) -> str:
    """A token proving the owner asked to erase `uid` and must repeat the request before
    `expires_at` (unix seconds). Stateless: HMAC over (uid, expiry)."""
    mac = hmac.new(secret.encode(), f"erase:{uid}:{expires_at}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{expires_at}.{mac}"


def check_erase_confirmation(secret: str, uid: str, token: str, now: int) -> str | None:
    """None when valid, else the reason it is not."""
    expires, _, _ = token.partition(".")
    if not (expires.isascii() and expires.isdigit()):  # "²".isdigit() is True, int() fails
        return "malformed confirmation token"
    if not hmac.compare_digest(erase_confirmation(secret, uid, int(expires)), token):
        return "confirmation token does not match this device"
    if int(expires) < now:
        return "confirmation token expired; ask again"
    return None


def client_key(secret: str, address: str) -> str:
    """The key the registration rate limit counts under: the client's IPv4 address or its IPv6
    /64 (one subscriber's whole prefix), as an HMAC so that no address is stored."""
    try:
        ip = ipaddress.ip_address(address)
        network = str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else str(ip)
    except ValueError:
        network = address[:100]  # not an IP (a test client's "testclient"): counted as given
    return hmac.new(secret.encode(), f"registration:{network}".encode(), hashlib.sha256).hexdigest()[:32]
