"""`ivr serve` never answers real callers from the embedded sandbox by accident, and says when it is in use."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from ivr.backends.kimvoice import check_sandbox_use
from ivr.errors import SettingsError
from ivr.settings import load_settings


def warnings_of(**settings: object) -> list[tuple[str, dict[str, object]]]:
    with capture_logs() as logs:
        check_sandbox_use(load_settings(**settings))
    return [(e["event"], e) for e in logs if e["log_level"] == "warning"]


@pytest.mark.parametrize(("listener", "variable"), [
    ({"agi_host": "0.0.0.0"}, "IVR_AGI_HOST=0.0.0.0"),
    ({"http_host": "::"}, "IVR_HTTP_HOST=::"),
    ({"agi_host": "172.28.73.2"}, "IVR_AGI_HOST=172.28.73.2"),
    ({"http_host": "ivr.example.com"}, "IVR_HTTP_HOST=ivr.example.com"),
])
def test_unset_beyond_loopback_is_refused_in_one_line(listener: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as refused:
        check_sandbox_use(load_settings(**listener))
    message = str(refused.value)
    assert "\n" not in message
    assert "IVR_KIMVOICE_URL is unset" in message and variable in message
    assert "IVR_KIMVOICE_URL=sandbox" in message, "says how to ask for it on purpose"


def test_both_listeners_are_named() -> None:
    with pytest.raises(SettingsError, match=r"IVR_AGI_HOST=0\.0\.0\.0 and IVR_HTTP_HOST=0\.0\.0\.0 reach beyond"):
        check_sandbox_use(load_settings(agi_host="0.0.0.0", http_host="0.0.0.0"))


@pytest.mark.parametrize("hosts", [
    {}, {"agi_host": "localhost", "http_host": "::1"}, {"agi_host": "127.0.0.2"},
])
def test_on_loopback_the_default_sandbox_runs_with_a_warning(hosts: dict[str, str]) -> None:
    [(event, fields)] = warnings_of(**hosts)
    assert event == "kimvoice.sandbox_in_use" and fields["reason"] == "IVR_KIMVOICE_URL is unset"


def test_asked_for_by_name_it_runs_beyond_loopback_with_a_warning() -> None:
    [(event, fields)] = warnings_of(kimvoice_url="sandbox", agi_host="0.0.0.0", http_host="0.0.0.0")
    assert event == "kimvoice.sandbox_in_use" and fields["reason"] == "IVR_KIMVOICE_URL=sandbox"


def test_a_real_url_with_the_sandbox_credentials_is_a_warning() -> None:
    [(event, fields)] = warnings_of(kimvoice_url="https://kimvoice.example.com", agi_host="0.0.0.0")
    assert event == "kimvoice.sandbox_credentials"
    assert fields["variables"] == ["IVR_KIMVOICE_CLIENT_ID", "IVR_KIMVOICE_CLIENT_SECRET"]
    [(_, fields)] = warnings_of(kimvoice_url="https://kimvoice.example.com", kimvoice_client_id="keybox-line")
    assert fields["variables"] == ["IVR_KIMVOICE_CLIENT_SECRET"]
    assert "sandbox-secret" not in str(fields)


def test_a_real_url_with_its_own_credentials_says_nothing() -> None:
    assert warnings_of(kimvoice_url="https://kimvoice.example.com", agi_host="0.0.0.0",
                       kimvoice_client_id="keybox-line", kimvoice_client_secret="s3cret") == []
