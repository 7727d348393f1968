"""Settings: working defaults, and one clear line for a bad value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ivr.errors import SettingsError
from ivr.settings import load_settings


def test_defaults_work_on_one_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.kimvoice_url is None  # the embedded sandbox
    assert (settings.agi_host, settings.agi_port) == ("127.0.0.1", 4573)
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8080)
    assert settings.kimvoice_timeout == 8.0
    assert settings.data_dir.name == "keybox-ivr"


def test_the_sandbox_can_be_asked_for_by_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`IVR_KIMVOICE_URL=sandbox`: the embedded sandbox on purpose, as unset is by default."""
    monkeypatch.chdir(tmp_path)
    assert load_settings().embedded_sandbox
    monkeypatch.setenv("IVR_KIMVOICE_URL", "sandbox")
    settings = load_settings()
    assert settings.kimvoice_url == "sandbox" and settings.embedded_sandbox
    monkeypatch.setenv("IVR_KIMVOICE_URL", "http://sandbox:8081")
    assert not load_settings().embedded_sandbox


def test_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("IVR_AGI_PORT=4600\nIVR_LOG_FORMAT=JSON\n")
    monkeypatch.setenv("IVR_KIMVOICE_URL", "https://kimvoice.example.com")
    settings = load_settings()
    assert settings.agi_port == 4600 and settings.log_format == "json"
    assert str(settings.kimvoice_url) == "https://kimvoice.example.com/"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("IVR_AGI_PORT", "abc", "a TCP port, 0 to 65535"),
        ("IVR_HTTP_PORT", "70000", "a TCP port, 0 to 65535"),
        ("IVR_LOG_FORMAT", "xml", "json, console, or auto"),
        ("IVR_KIMVOICE_URL", "kimvoice", "the KimVoice base URL"),
        ("IVR_KIMVOICE_TIMEOUT", "-1", "seconds, more than 0"),
        ("IVR_SANDBOX_FAILURE_RATE", "1.5", "0 to 1"),
        ("IVR_KAZOO_PIVOT_ALLOW", "10.0.0.1/8", "10.0.0.1/8"),
        ("IVR_KAZOO_PIVOT_MARGIN", "0.1", "0.5 to 120"),
        ("IVR_KIMOBY_CUSTOMER_REFERENCE", "KH{key}", "{key_number}"),
        ("IVR_CODELOCKS_MONTHLY_BUDGET", "0", "1 to 10000000"),
        ("IVR_KIMOBY_WEBHOOK_URL", "ftp://ivr.example.com/", "an http(s) URL"),
        ("IVR_KIMOBY_WEBHOOK_URL", "https:///webhooks/kimoby", "an http(s) URL"),
        ("IVR_KIMOBY_WEBHOOK_URL", "https://ivr.example.com/web hooks", "without spaces"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{variable}={value} is not valid") and expected in message


def test_the_pivot_allow_list_may_be_empty_or_networks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings().kazoo_pivot_allow == ()
    monkeypatch.setenv("IVR_KAZOO_PIVOT_ALLOW", "192.0.2.0/24, 2001:db8::/32")
    assert [str(n) for n in load_settings().kazoo_pivot_allow] == ["192.0.2.0/24", "2001:db8::/32"]


@pytest.mark.parametrize(("url", "missing"), [
    ("IVR_KIMOBY_URL", "IVR_KIMOBY_API_SECRET"),
    ("IVR_CODELOCKS_URL", "IVR_CODELOCKS_LOCKS_FILE"),
    ("IVR_KIMOBY_WEBHOOK_URL", "IVR_KIMOBY_WEBHOOK_KEY"),
])
def test_a_backend_url_without_its_credentials_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, missing: str
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("IVR_KIMOBY_API_KEY", "IVR_CODELOCKS_API_KEY"):
        monkeypatch.setenv(name, "set")
    monkeypatch.setenv(url, "https://backend.example.test/v1")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith(missing) and f"required with {url}" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_webhook_url_is_kept_exactly_as_typed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Kimoby signs the URL as registered, byte for byte: no case, port or slash made canonical."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IVR_KIMOBY_WEBHOOK_KEY", "the-webhook-key")
    for typed in ("https://IVR.example.com:443/webhooks/kimoby", "https://ivr.example.com", "http://ivr.example.com/a%7eb"):
        monkeypatch.setenv("IVR_KIMOBY_WEBHOOK_URL", typed)
        assert load_settings().kimoby_webhook_url == typed


def test_a_bad_secret_is_not_echoed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IVR_KIMVOICE_CLIENT_SECRET", "")
    with pytest.raises(SettingsError, match=r"^IVR_KIMVOICE_CLIENT_SECRET is not valid"):
        load_settings()


def test_the_command_stops_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ivr", "kimvoice", "health-check"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "IVR_AGI_PORT": "abc"},
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr == "error: IVR_AGI_PORT=abc is not valid: expected a TCP port, 0 to 65535 (0: any free port)\n"
    assert result.stdout == ""
