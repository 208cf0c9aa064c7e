"""Signed session tokens and CSRF tokens (pure): round trip, tampering, expiry, key rotation."""

from __future__ import annotations

import pytest
from civicair.core import sessions as s
from hypothesis import given
from hypothesis import strategies as st

KEY = s.derive_key("a secret", "session")
OLD = s.derive_key("the previous secret", "session")


def make(now: float = 1000.0, ttl: int = 60) -> s.Session:
    return s.new_session("12", "partner", session_id="sid-1", now=now, ttl_s=ttl, data={"name": "ATMO"})


def test_a_signed_session_round_trips_until_it_expires() -> None:
    token = s.sign(make(), KEY)
    back = s.verify(token, [KEY], 1059.0)
    assert (back.subject, back.kind, back.session_id, back.data) == ("12", "partner", "sid-1", {"name": "ATMO"})
    with pytest.raises(s.InvalidSession, match="expired"):
        s.verify(token, [KEY], 1060.0)
    with pytest.raises(s.InvalidSession, match="not a volunteer"):
        s.verify(token, [KEY], 1001.0, kind="volunteer")


def test_keys_rotate_new_tokens_use_the_first_old_ones_still_verify() -> None:
    old_token = s.sign(make(), OLD)
    assert s.verify(old_token, [KEY, OLD], 1001.0).subject == "12"
    with pytest.raises(s.InvalidSession, match="signature"):
        s.verify(old_token, [KEY], 1001.0)  # the old key retired
    with pytest.raises(s.InvalidSession):
        s.verify(old_token, [], 1001.0)


def test_keys_are_derived_per_purpose() -> None:
    assert s.derive_key("a secret", "session") != s.derive_key("a secret", "pseudonym")
    assert len(KEY) == 32


@given(st.integers(min_value=0, max_value=200), st.sampled_from("AZaz09-_."))
def test_any_change_to_a_token_is_refused(position: int, char: str) -> None:
    token = s.sign(make(), KEY)
    i = position % len(token)
    if token[i] == char:
        return
    forged = token[:i] + char + token[i + 1:]
    with pytest.raises(s.InvalidSession):
        s.verify(forged, [KEY], 1001.0)


def test_a_forged_payload_with_a_valid_looking_signature_is_refused() -> None:
    a, b = s.sign(make(), KEY), s.sign(s.new_session("1", "operator", session_id="x", now=1000, ttl_s=60), KEY)
    mixed = a.split(".")[0] + "." + b.split(".")[1]
    with pytest.raises(s.InvalidSession):
        s.verify(mixed, [KEY], 1001.0)
    for bad in ("", "nodot", ".sig", "payload.", "a.b.c"):
        with pytest.raises(s.InvalidSession):
            s.verify(bad, [KEY], 1001.0)


def test_csrf_tokens_are_bound_to_their_session() -> None:
    token = s.csrf_token("sid-1", KEY)
    assert s.check_csrf(token, "sid-1", [KEY]) and s.check_csrf(token, "sid-1", [OLD, KEY])
    assert not s.check_csrf(token, "sid-2", [KEY])
    assert not s.check_csrf(None, "sid-1", [KEY]) and not s.check_csrf(token, None, [KEY])
    assert not s.check_csrf(s.csrf_token("sid-1", OLD), "sid-1", [KEY])
