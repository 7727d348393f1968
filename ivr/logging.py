"""The one logging configuration: structlog for our events, stdlib logging routed through it.

Every event, ours or a library's (httpx and uvicorn log through stdlib `logging`), passes the
same pipeline: call context (the call id bound with `bind_call`), level, time, redaction, then
JSON lines or console output. Redaction is the last step before rendering, so nothing reaches
the output without it.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = ["ThrottledWarning", "bind_call", "configure_logging", "get_logger", "mask_code", "redact"]

REDACTED = "[REDACTED]"

# Keys compared without case, `_` or `-`.
_SECRET_KEYS = frozenset(
    {"pin", "shacklecode", "clientsecret", "secret", "password", "token", "jwt", "authorization", "accesstoken"}
)
_CODE_KEYS = frozenset({"code", "updatecode", "cbscode", "netcode"})

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+")
# `pin=1234`, `"pin": "1234"`, `shackleCode: 1234`, in URLs, JSON and free text alike.
_SECRET_PAIR = re.compile(
    r"(?i)(?P<key>\b(?:pin|shackle[_-]?code|client[_-]?secret|password)\b[\"']?\s*[=:]\s*[\"']?)"
    r"(?P<value>[^&\s\"',;}]*)"
)
_CODE_PAIR = re.compile(
    r"(?i)(?P<key>\b(?:update[_-]?code|cbs[_-]?code|net[_-]?code)\b[\"']?\s*[=:]\s*[\"']?)"
    r"(?P<value>[0-9]+)"
)


def mask_code(code: object) -> str:
    """A code as it may appear in a log or record: every digit hidden but the last two."""
    text = str(code)
    return "*" * max(len(text) - 2, 0) + text[-2:] if len(text) > 2 else "*" * len(text)


def redact(value: Any, key: str | None = None) -> Any:
    """Return `value` with secrets removed and codes masked, recursing into containers."""
    if key is not None:
        norm = key.replace("_", "").replace("-", "").lower()
        if norm in _SECRET_KEYS:
            return REDACTED if value not in (None, "") else value
        if norm in _CODE_KEYS and isinstance(value, (str, int)) and not isinstance(value, bool):
            return mask_code(value)
    if isinstance(value, str):
        return _redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact(v) for v in value]
    if hasattr(value, "get_secret_value"):
        return REDACTED
    return value


def _redact_text(text: str) -> str:
    text = _JWT.sub("[JWT]", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _SECRET_PAIR.sub(lambda m: m.group("key") + (REDACTED if m.group("value") else ""), text)
    return _CODE_PAIR.sub(lambda m: m.group("key") + mask_code(m.group("value")), text)


def _redact_event(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    return {k: redact(v, k) for k, v in event_dict.items()}


def configure_logging(
    fmt: Literal["json", "console", "auto"] = "auto",
    level: str = "info",
    stream: TextIO | None = None,
) -> None:
    """Configure structlog and stdlib logging once for the process (later calls replace it)."""
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    tail: list[Processor] = [structlog.processors.format_exc_info, _redact_event]
    numeric_level = logging.getLevelNamesMapping()[level.upper()]

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    # httpx logs every request line, query string included, at INFO; our client and the
    # sandbox log their own requests, and uvicorn's start-up chatter is noise in a CLI.
    # aiosqlite logs every statement with its parameters at DEBUG: a job's code in full, the
    # keyed digests of keys and callers. None of it may reach a log, whatever the level.
    for noisy in ("httpx", "httpcore", "uvicorn.access", "uvicorn.error", "aiosqlite"):
        logging.getLogger(noisy).setLevel(max(numeric_level, logging.WARNING))


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A logger for a module; events go through the configured pipeline."""
    return structlog.stdlib.get_logger(name)


@contextmanager
def bind_call(call_id: str, **context: Any) -> Iterator[None]:
    """Within this block every log line (in this task) carries `call_id` and `context`."""
    with structlog.contextvars.bound_contextvars(call_id=call_id, **context):
        yield


class ThrottledWarning:
    """One warning event for something a peer can make happen at will (a refused connection,
    a made-up route): the first at once, then at most one line every `every` seconds, with
    the count of those since the last line, so that a flood is not also a flood of log lines."""

    def __init__(self, logger: Any, event: str, every: float = 1.0) -> None:
        self._log, self._event, self._every = logger, event, every
        self._count = 0
        self._quiet_until = 0.0

    def note(self, **fields: Any) -> None:
        self._count += 1
        now = time.monotonic()
        if now >= self._quiet_until:
            self._log.warning(self._event, count=self._count, **fields)
            self._count, self._quiet_until = 0, now + self._every
