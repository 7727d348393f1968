"""The AGI environment: the ``agi_*: value`` lines Asterisk sends before the first command.

res_agi.c's ``setup_env`` writes ``agi_request``, ``agi_channel``, ``agi_language``, …,
``agi_arg_1`` … ``agi_arg_N`` one per line as ``"%s: %s\\n"`` and ends with an empty line;
for FastAGI ``launch_netscript`` first sends ``agi_network: yes`` and, when the URL
``agi://host[:port]/script`` has a script part, ``agi_network_script: script`` (everything after
the first ``/``, query string included). Values are raw channel data: they may hold ``: ``,
be empty, or be bytes that are not UTF-8 (a caller name), so nothing here raises.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import parse_qsl

__all__ = ["AgiEnvironment"]

# res_agi passes at most MAX_ARGS (128) arguments; a longer number is no argument (nor an int()
# past Python's 4,300-digit limit).
_ARG_KEY = re.compile(r"agi_arg_(\d{1,4})")
# res_agi.c sends "unknown" when the caller's number or name is not valid (S_COR in setup_env).
_UNKNOWN = "unknown"


@dataclass(frozen=True)
class AgiEnvironment:
    """The environment of one AGI session, with typed accessors for what the call flow reads.

    `values` holds every well-formed line as sent (last one wins for a repeated key).
    """

    values: Mapping[str, str]

    @classmethod
    def from_lines(cls, lines: Iterable[bytes | str]) -> AgiEnvironment:
        """Parse environment lines (without the blank end line; line endings optional).

        A line without ``": "`` is skipped, except ``key:`` (an empty value whose trailing
        space was lost); the value is split on the first ``": "`` only.
        """
        values: dict[str, str] = {}
        for line in lines:
            text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
            text = text.rstrip("\r\n")
            key, sep, value = text.partition(": ")
            if not sep:
                if not text.endswith(":"):
                    continue
                key, value = text[:-1], ""
            if key:
                values[key] = value
        return cls(MappingProxyType(values))

    def get(self, key: str, default: str = "") -> str:
        """The raw value of `key` (e.g. ``"agi_dnid"``), or `default`."""
        return self.values.get(key, default)

    @property
    def request(self) -> str:
        """``agi_request``: the script path, or the whole ``agi://`` URL for FastAGI."""
        return self.get("agi_request")

    @property
    def channel(self) -> str:
        return self.get("agi_channel")

    @property
    def language(self) -> str:
        """The channel's language, ``"en"`` when Asterisk sent none."""
        return self.get("agi_language") or "en"

    @property
    def unique_id(self) -> str:
        """``agi_uniqueid``: the call id of the call record."""
        return self.get("agi_uniqueid")

    @property
    def caller_id(self) -> str | None:
        """The caller's number, or `None` when withheld (Asterisk sends ``unknown``)."""
        return _known(self.get("agi_callerid"))

    @property
    def caller_id_name(self) -> str | None:
        """The caller's name, or `None` when Asterisk has none (``unknown``)."""
        return _known(self.get("agi_calleridname"))

    @property
    def extension(self) -> str:
        return self.get("agi_extension")

    @property
    def context(self) -> str:
        return self.get("agi_context")

    @property
    def network_script(self) -> str:
        """``agi_network_script``: the part of ``agi://host/…`` after the host, as sent."""
        return self.get("agi_network_script")

    @property
    def args(self) -> tuple[str, ...]:
        """``agi_arg_1`` … ``agi_arg_N`` in order, up to the first missing number."""
        numbered = {int(m[1]): value for key, value in self.values.items() if (m := _ARG_KEY.fullmatch(key))}
        args: list[str] = []
        while len(args) + 1 in numbered:
            args.append(numbered[len(args) + 1])
        return tuple(args)

    @property
    def route(self) -> str:
        """The route name: the FastAGI script without slashes or query (``/keybox?x=1`` →
        ``keybox``); for classic AGI, which has no script, the first argument.
        """
        return self._script[0]

    @property
    def query(self) -> Mapping[str, str]:
        """The script's query string as a mapping (``keybox?lang=fr`` → ``{"lang": "fr"}``)."""
        return self._script[1]

    @property
    def _script(self) -> tuple[str, Mapping[str, str]]:
        script = self.network_script or next(iter(self.args), "")
        path, _, query = script.partition("?")
        return path.strip("/"), MappingProxyType(dict(parse_qsl(query, keep_blank_values=True)))


def _known(value: str) -> str | None:
    return None if value in ("", _UNKNOWN) else value
