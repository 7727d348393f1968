"""The ARI settings, and the URLs the transport derives from them."""

from __future__ import annotations

import pytest

from ivr.errors import SettingsError
from ivr.settings import load_settings
from ivr.transports.ari import AriApp, ari_base_url


def test_ari_is_off_unless_its_url_is_set() -> None:
    settings = load_settings()
    assert settings.ari_url is None
    assert (settings.ari_user, settings.ari_app, settings.ari_timeout) == ("keybox", "keybox", 5.0)


def test_the_password_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVR_ARI_URL", "http://asterisk:8088")
    monkeypatch.setenv("IVR_ARI_PASSWORD", "hunter2-ari")
    settings = load_settings()
    assert str(settings.ari_url) == "http://asterisk:8088/"
    assert settings.ari_password.get_secret_value() == "hunter2-ari"
    assert "hunter2-ari" not in repr(settings)


def test_a_bad_application_name_is_refused_with_one_line() -> None:
    with pytest.raises(SettingsError, match=r"^IVR_ARI_APP=key box is not valid: expected the Stasis application"):
        load_settings(ari_app="key box")


@pytest.mark.parametrize("url", ["http://asterisk:8088", "http://asterisk:8088/", "http://asterisk:8088/ari/"])
def test_the_rest_base_url(url: str) -> None:
    assert ari_base_url(url) == "http://asterisk:8088/ari/"


async def test_the_events_url_carries_no_credentials() -> None:
    async def handler(call: object) -> None: ...

    plain = AriApp(handler, "http://asterisk:8088", "keybox", "secret", app="keybox")
    tls = AriApp(handler, "https://pbx.example.com/ari", "keybox", "secret", app="keybox")
    assert plain.events_url == "ws://asterisk:8088/ari/events?app=keybox&subscribeAll=false"
    assert tls.events_url == "wss://pbx.example.com/ari/events?app=keybox&subscribeAll=false"


async def test_credentials_in_the_url_stay_out_of_the_events_url() -> None:
    async def handler(call: object) -> None: ...

    app = AriApp(handler, "http://keybox:secret@asterisk:8088", "keybox", "secret")
    assert app.events_url == "ws://asterisk:8088/ari/events?app=keybox&subscribeAll=false"
