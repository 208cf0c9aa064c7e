"""The pure parts of the sign-up: a posted form's fields, the SMTP URL, the confirmation mail."""

from __future__ import annotations

import pytest
from civicair.core.errors import SettingsError
from civicair.firmware_tools.mail import confirmation_message, smtp_target
from civicair.firmware_tools.schemas import SENSOR_MODELS, RegistrationRequest
from civicair.firmware_tools.signup import registration_fields
from hypothesis import given
from hypothesis import strategies as st

BASE = [("name", "n"), ("kind", "fixed"), ("transport", "mqtt"), ("lat", "48.5"), ("lon", "7.7"),
        ("email", "a@example.org")]


@given(st.lists(st.sampled_from(SENSOR_MODELS), min_size=1, max_size=8, unique=True), st.booleans())
def test_repeated_and_comma_separated_sensors_read_the_same(models: list[str], comma: bool) -> None:
    sent = [("sensors", ",".join(models))] if comma else [("sensors", m) for m in models]
    fields = registration_fields(BASE + sent)
    assert fields["sensors"] == models
    assert RegistrationRequest.model_validate(fields).sensors == models


def test_empty_optional_fields_and_unticked_consent_are_absent() -> None:
    fields = registration_fields(BASE + [("sensors", "SDS011"), ("owner_name", " "), ("chip_id", ""),
                                         ("dev_eui", ""), ("csrf_token", "t")], ignore=("csrf_token",))
    assert "csrf_token" not in fields and "chip_id" not in fields and "owner_name" not in fields
    req = RegistrationRequest.model_validate(fields)
    assert req.consent_public is False and req.chip_id is None
    ticked = registration_fields(BASE + [("sensors", "SDS011"), ("consent_public", "on")])
    assert RegistrationRequest.model_validate(ticked).consent_public is True


def test_an_empty_name_is_still_refused() -> None:
    fields = registration_fields([(k, "" if k == "name" else v) for k, v in BASE] + [("sensors", "SDS011")])
    with pytest.raises(ValueError, match="name"):
        RegistrationRequest.model_validate(fields)


def test_smtp_urls() -> None:
    t = smtp_target("smtp://user%40x:p%3Ass@mail.example.org:587")
    assert (t.host, t.port, t.tls, t.username, t.password) == ("mail.example.org", 587, False, "user@x", "p:ss")
    assert (smtp_target("smtps://mail.example.org").port, smtp_target("smtp://127.0.0.1").port) == (465, 25)
    for bad in ("http://mail.example.org", "smtp://", "mail.example.org:25"):
        with pytest.raises(SettingsError):
            smtp_target(bad)


def test_the_mail_carries_the_link_in_both_languages() -> None:
    msg = confirmation_message(sender="civicair <no-reply@air.example.org>", to="a@example.org",
                               link="https://air.example.org/volunteer/confirm?token=abc", sensor_name="balcony",
                               valid_hours=24)
    body = msg.get_content()
    assert body.count("https://air.example.org/volunteer/confirm?token=abc") == 2
    assert "Bonjour" in body and "Hello" in body and "24 h" in body
    assert msg["Message-ID"].endswith("@air.example.org>")
