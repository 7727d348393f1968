"""The one settings object: `IVR_*` environment variables and an optional `.env` file.

Every setting has a default that works on one machine with nothing else running: with
`IVR_KIMVOICE_URL` unset the service starts the embedded KimVoice sandbox.
"""

from __future__ import annotations

import os
import shlex
import urllib.parse
from functools import cache
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ivr.errors import SettingsError
from ivr.netallow import parse_networks

ENV_PREFIX = "IVR_"

#: The client the embedded sandbox knows; also the default credentials of the service.
SANDBOX_CLIENT_ID = "ivr-sandbox"
SANDBOX_CLIENT_SECRET = "sandbox-secret"

#: `IVR_KIMVOICE_URL=sandbox`: the embedded sandbox, asked for by name (`ivr serve` then runs it
#: even when it listens beyond loopback).
SANDBOX_URL = "sandbox"

#: The placeholders of `IVR_TTS_COMMAND`, each replaced inside one argument by the command engine
#: (`ivr.tts.CommandEngine`).
PLACEHOLDERS = ("{text}", "{out}", "{voice}", "{lang}")


def parse_command(template: str) -> list[str]:
    """The template as an argument list; `ValueError` when it cannot be one."""
    try:
        argv = shlex.split(template)
    except ValueError as exc:
        raise ValueError(f"cannot split the command line: {exc}") from None
    if not argv:
        raise ValueError("the command line is empty")
    if any(p in argv[0] for p in PLACEHOLDERS):
        raise ValueError("the program itself cannot be a placeholder")
    return argv


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "keybox-ivr"


_PORT = "a TCP port, 0 to 65535 (0: any free port)"


class Settings(BaseSettings):
    """Everything the service can be told; read once at start-up.

    Each field's description says what the variable accepts: it is what the error line shows.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        extra="ignore",
        frozen=True,
    )

    kimvoice_url: AnyHttpUrl | Literal["sandbox"] | None = Field(
        None, description="the KimVoice base URL, e.g. https://kimvoice.example.com, or sandbox: the embedded "
        "sandbox by name (unset: the embedded sandbox, with listeners on loopback only)",
    )
    kimvoice_client_id: str = Field(SANDBOX_CLIENT_ID, min_length=1, description="a non-empty client id")
    kimvoice_client_secret: SecretStr = Field(
        SecretStr(SANDBOX_CLIENT_SECRET), min_length=1, description="a non-empty client secret"
    )
    kimvoice_timeout: float = Field(8.0, gt=0, le=120, description="seconds, more than 0 and at most 120")
    kimvoice_health_timeout: float = Field(2.0, gt=0, le=30, description="seconds, more than 0 and at most 30")
    kimvoice_breaker_seconds: float = Field(
        5.0, gt=0, le=300, description="seconds KimVoice is not asked once most of its recent answers failed, "
        "before a few trial requests (more than 0, at most 300)",
    )

    agi_host: str = Field("127.0.0.1", min_length=1, description="a host name or IP address to listen on")
    agi_port: int = Field(4573, ge=0, le=65535, description=_PORT)
    agi_env_timeout: float = Field(
        2.0, gt=0, le=60, description="seconds a FastAGI connection may take to send its AGI environment, "
        "more than 0 and at most 60"
    )
    agi_allow: Annotated[tuple[IPv4Network | IPv6Network, ...], NoDecode] = Field(
        (IPv4Network("127.0.0.0/8"), IPv6Network("::1/128")), min_length=1,
        description="1 or more comma-separated networks in CIDR notation that FastAGI connections may come "
        "from, e.g. 127.0.0.0/8,::1/128 or 172.28.73.0/24",
    )
    http_host: str = Field("127.0.0.1", min_length=1, description="a host name or IP address to listen on")
    http_port: int = Field(8080, ge=0, le=65535, description=_PORT)
    http_max_connections: int = Field(
        256, ge=1, le=10000, description="open HTTP connections at most, 1 to 10000; past it a new one replaces the "
        "oldest not being answered"
    )
    http_allow: Annotated[tuple[IPv4Network | IPv6Network, ...], NoDecode] = Field(
        (IPv4Network("127.0.0.0/8"), IPv6Network("::1/128")), min_length=1,
        description="1 or more comma-separated networks in CIDR notation that may connect to the HTTP port "
        "(health, metrics, media), e.g. 127.0.0.0/8,::1/128 or 172.28.73.0/24",
    )
    http_header_timeout: float = Field(
        5.0, gt=0, le=60,
        description="seconds a client may take to send a whole HTTP request, more than 0 and at most 60",
    )
    media_allow: Annotated[tuple[IPv4Network | IPv6Network, ...], NoDecode] = Field(
        (IPv4Network("127.0.0.0/8"), IPv6Network("::1/128")), min_length=1,
        description="1 or more comma-separated networks in CIDR notation that may fetch sounds from /media, "
        "e.g. 127.0.0.0/8,::1/128 or 172.28.73.0/24",
    )

    ari_url: AnyHttpUrl | None = Field(
        None, description="Asterisk's HTTP server for ARI, e.g. http://asterisk:8088 (unset: ARI off)"
    )
    ari_user: str = Field("keybox", min_length=1, description="a non-empty ARI user name (ari.conf)")
    ari_password: SecretStr = Field(SecretStr(""), description="the ARI user's password")
    ari_app: str = Field(
        "keybox", pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="the Stasis application name: 1 to 64 of A-Z a-z 0-9 _ . -",
    )
    ari_timeout: float = Field(5.0, gt=0, le=60, description="seconds, more than 0 and at most 60")
    ari_announce_input: bool = Field(
        False, description="true or false: send the user event IvrInput before each question (one more "
        "REST request each; the simulated Asterisk needs it to know when the line waits for keys)",
    )

    log_format: Literal["json", "console", "auto"] = Field(
        "auto", description="json, console, or auto (console on a terminal, json otherwise)"
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="debug, info, warning or error"
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="a readable directory, or a path where one can be created",
    )

    languages: Annotated[list[str], NoDecode] = Field(
        ["en"], min_length=1, max_length=3,
        description="1 to 3 different language codes of prompts/, comma-separated, e.g. en,fr,es",
    )
    operator: str = Field(
        "Queue(keybox-agents)",
        description="the dialplan application that reaches an agent, e.g. Queue(keybox-agents); empty: none",
    )
    entry_timeout_ms: int = Field(6000, ge=1000, le=60000, description="milliseconds, 1000 to 60000")
    please_wait_after: float = Field(1.5, ge=0, le=30, description="seconds, 0 to 30")
    lockout_key_failures: int = Field(5, ge=1, description="a whole number, 1 or more")
    lockout_caller_failures: int = Field(10, ge=1, description="a whole number, 1 or more")
    lockout_window: float = Field(900, gt=0, description="seconds, more than 0")
    lockout_duration: float = Field(900, gt=0, description="seconds, more than 0")
    lockout_withheld_failures: int = Field(
        20, ge=1, description="a whole number, 1 or more: wrong guesses all withheld numbers share per window"
    )
    lockout_global_failures: int = Field(
        100, ge=1, description="a whole number, 1 or more: wrong guesses on the whole line per window before "
        "sign-ins are paced"
    )
    lockout_pace: float = Field(
        2.0, gt=0, le=60, description="seconds between sign-ins while paced, more than 0, at most 60"
    )
    lockout_pace_wait: float = Field(
        20.0, gt=0, le=120, description="seconds a caller may wait for a paced sign-in, more than 0, at most 120"
    )
    lockout_pace_queue: int = Field(
        20, ge=1, le=1000, description="callers waiting for a paced sign-in at most, 1 to 1000"
    )
    record_days: float = Field(90, gt=0, description="days call records are kept, more than 0")
    max_calls: int = Field(
        1000, ge=1, description="calls in progress at most, a whole number, 1 or more; past it callers hear "
        "system-unavailable"
    )
    drain_seconds: float = Field(30, ge=0, le=3600, description="seconds, 0 to 3600")

    tts_engine: Literal["espeak", "command", "http", "none"] = Field(
        "espeak", description="espeak, command, http, or none (backend text kept as text, no audio)"
    )
    tts_voices: Annotated[dict[str, str], NoDecode] = Field(
        {}, description="comma-separated language=voice pairs, e.g. en=en-us,fr=fr-fr,es=es-419 "
        "(empty: the engine's own voice per language)",
    )
    tts_command: str = Field(
        "", validate_default=True,
        description="a TTS command line with {text}, {out}, {voice}, {lang} placeholders, e.g. "
        "pico2wave -l {voice} -w {out} {text} (without {text}: text on stdin; without {out}: audio on "
        "stdout); required when IVR_TTS_ENGINE=command",
    )
    tts_url: AnyHttpUrl | None = Field(
        None, validate_default=True,
        description="the URL a TTS service takes POSTed text at, answering audio; required when IVR_TTS_ENGINE=http",
    )
    tts_timeout: float = Field(
        15.0, gt=0, le=120, description="seconds one render may take, more than 0 and at most 120"
    )
    tts_cache_mb: float = Field(200, gt=0, description="megabytes of runtime TTS renders kept on disk, more than 0")
    sounds_dir: Path = Field(
        None, validate_default=True,  # <IVR_DATA_DIR>/sounds when unset: _default_sounds_dir
        description="a directory path for the built prompt sounds (default: <IVR_DATA_DIR>/sounds)",
    )

    outbound_via: Literal["asterisk", "ictcore", "kazoo"] = Field(
        "asterisk", description="asterisk, ictcore or kazoo: the platform of a job that names none"
    )
    ami_host: str | None = Field(
        None, description="the Asterisk Manager's host name or address (unset: the simulated Asterisk, embedded)"
    )
    ami_port: int = Field(5038, ge=1, le=65535, description="a TCP port, 1 to 65535")
    ami_username: str = Field("keybox", min_length=1, description="a non-empty AMI user name (manager.conf)")
    ami_secret: SecretStr = Field(SecretStr(""), description="the AMI user's secret")
    outbound_dial: str = Field(
        "PJSIP/{number}@carrier", pattern=r"^[A-Za-z0-9]+/[^,&|\s]*\{number\}[^,&|\s]*$",
        description="a dial string holding {number} once, e.g. PJSIP/{number}@carrier",
    )
    outbound_caller_id: str = Field(
        "", max_length=80, pattern=r"^[^\r\n]*$", description="the caller id shown, e.g. \"Key office\" <5551000>"
    )
    outbound_ring_seconds: float = Field(30, ge=5, le=120, description="seconds a call rings, 5 to 120")
    ictcore_url: AnyHttpUrl | None = Field(None, description="ICTCore's API root URL (unset: no ICTCore)")
    ictcore_username: str = Field("keybox", min_length=1, description="a non-empty ICTCore user name")
    ictcore_password: SecretStr = Field(SecretStr(""), description="the ICTCore user's password")
    kazoo_url: AnyHttpUrl | None = Field(None, description="Kazoo crossbar's URL, /v2 included (unset: no Kazoo)")
    kazoo_account_id: str = Field("", pattern=r"^([0-9a-f]{32})?$", description="a Kazoo account id (32 hex digits)")
    kazoo_username: str = Field("", max_length=128, description="a Kazoo user name (user_auth)")
    kazoo_password: SecretStr = Field(SecretStr(""), description="that user's password")
    kazoo_account_name: str = Field("", max_length=128, description="the account name of user_auth")
    kazoo_api_key: SecretStr = Field(SecretStr(""), description="a Kazoo API key (api_auth), instead of a user")
    kazoo_agents_callflow: str = Field(
        "", pattern=r"^([0-9a-f]{32})?$",
        description="the Kazoo callflow id (32 hex digits) a pivot call goes to for an agent (empty: no transfer)",
    )
    kazoo_notice_number: str = Field(
        "", pattern=r"^[0-9+*#]{0,20}$",
        description="the number of the Kazoo callflow that pivots to this service's announce route (empty: no "
                    "notices via Kazoo)",
    )
    kazoo_pivot_secret: SecretStr = Field(
        SecretStr(""), description="the secret Kazoo's pivot requests carry (?secret=), 16 to 256 characters"
    )
    kazoo_pivot_allow: Annotated[tuple[IPv4Network | IPv6Network, ...], NoDecode] = Field(
        (), description="comma-separated networks in CIDR notation that Kazoo's pivot requests may come from "
        "(empty: any address IVR_HTTP_ALLOW admits; the secret is asked either way when set)",
    )
    kazoo_pivot_margin: float = Field(
        10.0, ge=0.5, le=120, description="seconds, 0.5 to 120, past a question's timeout and its sounds after "
        "which a pivot call whose next request has not come is taken as hung up",
    )
    kazoo_pivot_play_seconds: float = Field(
        5.0, ge=0, le=60, description="seconds, 0 to 60, each sound of a pivot answer is allowed to play before "
        "Kazoo's next request is due",
    )
    kimoby_url: AnyHttpUrl | Literal["sandbox"] | None = Field(
        None, description="Kimoby's API root, e.g. https://api.kimoby.com/v1, or sandbox for the embedded Kimoby "
        "sandbox (unset: no text messages)",
    )
    kimoby_api_key: str = Field(
        "", max_length=256, validate_default=True,
        description="the Kimoby API key, required with IVR_KIMOBY_URL (but for the sandbox)",
    )
    kimoby_api_secret: SecretStr = Field(
        SecretStr(""), validate_default=True, description="the Kimoby API secret, required with IVR_KIMOBY_URL"
    )
    kimoby_webhook_url: str | None = Field(
        None, max_length=2048, description="the webhook URL exactly as registered with Kimoby, an http(s) URL "
        "of at most 2048 characters without spaces, e.g. https://ivr.example.com/webhooks/kimoby (unset: "
        "delivery statuses are not received)",
    )
    kimoby_webhook_key: SecretStr = Field(
        SecretStr(""), validate_default=True,
        description="the webhook's key_authentication from Kimoby, required with IVR_KIMOBY_WEBHOOK_URL",
    )
    kimoby_customer_reference: str = Field(
        "{key_number}", pattern=r"^[A-Za-z0-9_.:-]{0,32}\{key_number\}[A-Za-z0-9_.:-]{0,32}$",
        description="the Kimoby customer reference of a key holder: {key_number} with up to 32 letters, digits "
        "or _.:- around it, e.g. KH{key_number}",
    )
    codelocks_url: AnyHttpUrl | Literal["sandbox"] | None = Field(
        None, description="Codelocks Connect's root, e.g. https://api-connect.codelocks.io, or sandbox for the "
        "embedded Codelocks sandbox and its sample locks (unset: no NetCodes)",
    )
    codelocks_api_key: SecretStr = Field(
        SecretStr(""), validate_default=True, description="the Codelocks x-api-key, required with IVR_CODELOCKS_URL"
    )
    codelocks_locks_file: Path | None = Field(
        None, validate_default=True, description="the lock directory, a TOML file, required with IVR_CODELOCKS_URL"
    )
    codelocks_monthly_budget: int = Field(
        1000, ge=1, le=10_000_000, description="NetCode calls to Codelocks allowed per month, 1 to 10000000"
    )
    outbound_hours: str = Field(
        "08:00-21:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-4]):[0-5][0-9]$",
        description="HH:MM-HH:MM, when notices may ring (24 h clock, in IVR_TIMEZONE)",
    )
    timezone: str = Field("UTC", min_length=1, description="an IANA time zone, e.g. America/Toronto")
    outbound_max_active: int = Field(10, ge=1, le=1000, description="calls in progress per platform, 1 to 1000")
    outbound_rate: float = Field(5, gt=0, le=100, description="new calls per second per platform, more than 0 "
                                                              "and at most 100")
    outbound_retry_seconds: float = Field(120, ge=1, le=86400, description="seconds, 1 to 86400")
    outbound_max_attempts: int = Field(3, ge=1, le=10, description="a whole number, 1 to 10")
    api: Literal["on", "off"] = Field("on", description="on or off: the outbound HTTP API")
    api_tokens: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        (), description="comma-separated bearer tokens of the HTTP API, each 16 to 256 printable characters"
    )
    public_url: AnyHttpUrl | None = Field(
        None, description="the service's HTTP base URL as platforms reach it (default: http://IVR_HTTP_HOST:PORT)"
    )

    sandbox_mode: Literal["Normal", "DisasterRecovery"] = Field(
        "Normal", description="Normal or DisasterRecovery"
    )
    sandbox_latency: float = Field(0.0, ge=0, le=60, description="seconds added to every answer, 0 to 60")
    sandbox_failure_rate: float = Field(0.0, ge=0, le=1, description="a fraction of requests that fail, 0 to 1")
    sandbox_failure_status: Literal[500, 502, 503, 504] = Field(
        503, description="how they fail: 503 (with ApiError 9001), or a bare 500, 502 or 504")
    sandbox_token_lifetime: float = Field(
        48 * 3600, gt=0, description="seconds a sandbox token lives, more than 0"
    )

    @property
    def embedded_sandbox(self) -> bool:
        """Whether KimVoice is the embedded sandbox: `IVR_KIMVOICE_URL` unset or `sandbox`."""
        return self.kimvoice_url is None or self.kimvoice_url == SANDBOX_URL

    @field_validator("languages", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        """Every check here, on the text as given: the error line then shows what was typed."""
        if isinstance(value, str):
            value = [part.strip().lower() for part in value.split(",") if part.strip()]
        if isinstance(value, list) and all(isinstance(part, str) for part in value):
            if not 1 <= len(value) <= 3:
                raise ValueError(f"{len(value)} languages")
            if twice := sorted({part for part in value if value.count(part) > 1}):
                raise ValueError(f"{', '.join(twice)} given twice")
            if unknown := set(value) - set(_prompt_languages()):
                raise ValueError(f"no prompts in {', '.join(sorted(unknown))}")
        return value

    @field_validator("data_dir")
    @classmethod
    def _data_dir(cls, value: Path) -> Path:
        """A data directory that cannot be used fails here, in one line, not in a traceback later."""
        existing = next(p for p in (value, *value.parents) if p.exists() or p == p.parent)
        if not existing.is_dir() or not os.access(existing, os.R_OK | os.X_OK):
            raise ValueError(f"{existing} is {'not readable' if existing.is_dir() else 'not a directory'}")
        return value

    @field_validator("agi_allow", "http_allow", "media_allow", "kazoo_pivot_allow", mode="before")
    @classmethod
    def _networks(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        networks = parse_networks(value)
        if not networks and info.field_name != "kazoo_pivot_allow":
            raise ValueError("no network")
        return networks

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _tokens(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        tokens = [part.strip() for part in value.split(",") if part.strip()]
        if any(not 16 <= len(t) <= 256 or not t.isprintable() or " " in t for t in tokens):
            raise ValueError("a token is not 16 to 256 printable characters")
        return tuple(SecretStr(t) for t in tokens)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"no time zone {value!r}") from None
        return value

    @field_validator("outbound_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        start, end = value.split("-")
        if start == end:
            raise ValueError("the hours are empty")
        return value

    @field_validator("api", mode="before")
    @classmethod
    def _on_off(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _default_sounds_dir(cls, data: object) -> object:
        if isinstance(data, dict) and not data.get("sounds_dir"):
            data = {**data, "sounds_dir": Path(data.get("data_dir") or _default_data_dir()) / "sounds"}
        return data

    @field_validator("sandbox_failure_status", mode="before")
    @classmethod
    def _status_number(cls, value: object) -> object:
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value

    @field_validator("tts_engine", mode="before")
    @classmethod
    def _tts_engine(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("tts_voices", mode="before")
    @classmethod
    def _tts_voices(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        pairs: dict[str, str] = {}
        for part in filter(str.strip, value.split(",")):
            language, sep, voice = part.partition("=")
            if not sep or not language.strip() or not voice.strip():
                raise ValueError(f"{part.strip()!r} is not language=voice")
            pairs[language.strip().lower()] = voice.strip()
        return pairs

    @field_validator("tts_command")
    @classmethod
    def _tts_command(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("tts_engine") == "command":
            parse_command(value)
        return value

    @field_validator("kimoby_api_key", "kimoby_api_secret", "codelocks_api_key", "codelocks_locks_file")
    @classmethod
    def _required_with_url(cls, value: Any, info: ValidationInfo) -> Any:
        backend = (info.field_name or "").split("_")[0]
        shown = value.get_secret_value() if isinstance(value, SecretStr) else value
        if info.data.get(f"{backend}_url") not in (None, SANDBOX_URL) and not shown:
            raise ValueError(f"required with IVR_{backend.upper()}_URL")
        return value

    @field_validator("kimoby_webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        """Checked, and kept as typed: the webhooks' signature covers the URL byte for byte as
        registered with Kimoby, and a URL type would normalise it (host case, :443, a slash)."""
        if value is None:
            return value
        if any(ch.isspace() or not ch.isprintable() for ch in value):
            raise ValueError("a space or a control character")
        try:
            parts = urllib.parse.urlsplit(value)
            usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
        except ValueError:  # a port that is not a number, or past 65535
            usable = False
        if not usable:
            raise ValueError("not an http(s) URL with a host")
        return value

    @field_validator("kimoby_webhook_key")
    @classmethod
    def _webhook_key(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        if info.data.get("kimoby_webhook_url") is not None and not value.get_secret_value():
            raise ValueError("required with IVR_KIMOBY_WEBHOOK_URL")
        return value

    @field_validator("tts_url")
    @classmethod
    def _tts_url(cls, value: AnyHttpUrl | None, info: ValidationInfo) -> AnyHttpUrl | None:
        if value is None and info.data.get("tts_engine") == "http":
            raise ValueError("a URL is required with IVR_TTS_ENGINE=http")
        return value


@cache
def _prompt_languages() -> tuple[str, ...]:
    """The languages prompts/ has texts for: a language without them would play nothing."""
    from ivr.catalog import PromptCatalog, default_prompts_dir

    return PromptCatalog.load(default_prompts_dir()).languages


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, or raise `SettingsError` with one line per bad variable.

    The line names the variable and what it accepts; a secret's value is never echoed.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        field = str(error["loc"][0]) if error["loc"] else "?"
        info = Settings.model_fields.get(field)
        accepts = info.description if info and info.description else error["msg"]
        variable = ENV_PREFIX + field.upper()
        hidden = any(word in field for word in ("secret", "password", "token", "api_key", "webhook_key"))
        shown = "" if hidden else f"={_short(error.get('input'))}"
        reason = str(error["ctx"]["error"]) if error["type"] == "value_error" else ""
        why = f" ({reason})" if reason and shown and reason not in accepts else ""
        lines.append(f"{variable}{shown} is not valid: expected {accepts}{why}")
    return "\n".join(dict.fromkeys(lines))  # a union's members each fail: one line still


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."
