"""IVR_AGI_ALLOW and IVR_AGI_ENV_TIMEOUT: what they accept, and what docker-compose.yml sets."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml

from ivr.errors import SettingsError
from ivr.netallow import allowed
from ivr.settings import load_settings

COMPOSE = Path(__file__).resolve().parents[3] / "docker-compose.yml"


@pytest.fixture(autouse=True)
def _no_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)


def test_defaults_answer_this_machine_only() -> None:
    settings = load_settings()
    assert settings.agi_env_timeout == 2.0
    assert [str(n) for n in settings.agi_allow] == ["127.0.0.0/8", "::1/128"]


@pytest.mark.parametrize(
    ("peer", "expected"),
    [("127.0.0.1", True), ("127.9.9.9", True), ("::1", True), ("::ffff:127.0.0.1", True),
     ("10.0.0.1", False), ("::ffff:10.0.0.1", False), ("fe80::1", False)],
)
def test_the_default_matches_loopback_and_ipv4_mapped_loopback(peer: str, expected: bool) -> None:
    assert allowed(load_settings().agi_allow, peer) is expected


def test_a_comma_separated_list_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVR_AGI_ALLOW", " 172.28.73.0/24, fd00::/8 ,10.1.2.3")
    monkeypatch.setenv("IVR_AGI_ENV_TIMEOUT", "0.5")
    settings = load_settings()
    assert [str(n) for n in settings.agi_allow] == ["172.28.73.0/24", "fd00::/8", "10.1.2.3/32"]
    assert settings.agi_env_timeout == 0.5
    assert allowed(settings.agi_allow, "::ffff:172.28.73.10")


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("IVR_AGI_ALLOW", "10.0.0.1/8", "networks in CIDR notation"),
        ("IVR_AGI_ALLOW", "127.0.0.0/8,nope", "networks in CIDR notation"),
        ("IVR_AGI_ALLOW", " , ", "1 or more"),
        ("IVR_AGI_ENV_TIMEOUT", "0", "more than 0 and at most 60"),
        ("IVR_AGI_ENV_TIMEOUT", "soon", "seconds"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{variable}={value} is not valid") and expected in message


def test_compose_lets_the_line_network_in_and_nothing_else() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    [subnet] = [entry["subnet"] for entry in compose["networks"]["default"]["ipam"]["config"]]
    asterisk = compose["services"]["asterisk"]["networks"]["default"]["ipv4_address"]
    settings = load_settings(agi_allow=compose["services"]["ivr"]["environment"]["IVR_AGI_ALLOW"])

    assert [str(n) for n in settings.agi_allow] == [subnet]
    assert allowed(settings.agi_allow, asterisk)
    assert ipaddress.ip_address(asterisk) in ipaddress.ip_network(subnet)
