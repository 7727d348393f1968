"""A simulated Kazoo: places a call into the service's Pivot URL and plays Kazoo's side of it.

`place_pivot_call` requests the pivot URL as Kazoo's `pivot_call.erl` does (GET, the
`kzt_kazoo:req_params/1` parameters appended to the URL's own query, `Digits[<collection>]`
after a `collect_dtmf`), runs the callflow JSON of each answer against a scripted `Caller`, and
follows each `pivot` back, until a `hangup`, a `callflow` (a transfer), the end of the callflow,
the caller hanging up, or a failure Kazoo would end the call on:

* an answer later than `request_timeout` (Kazoo's default 5 s, `request_timeout_ms`), a 4xx or
  5xx, an XML content type or none (Kazoo reads it as TwiML), JSON that is not a callflow: the
  pivot fails and, with nothing after it, Kazoo ends the call;
* an empty body: Kazoo ends the call (`pivot_call.erl` `process_resp/4`).

What the caller heard goes into the same `Transcript` as over FastAGI and ARI: our prompt URLs
(`/media/sounds/<lang>/keybox/<id>.wav`) are prompts, TTS URLs (`/media/tts/<hash>.wav`) TTS
text, and a run of TTS renders of one digit each is one `digits` event (how `PivotCall` says
digits: Kazoo has no `say`). Keys are asked for at `collect_dtmf`: a `get_data` request with the
prompt that any key could cut short just before it, else `wait_for_digit` for a one-key
collection. Sounds play instantly; the caller's `hangup_on` and `hangup_after` are honoured.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx

from ivr.sim._callers import DTMF_KEYS, Caller, InputRequest
from ivr.sim._sounds import SoundLibrary
from ivr.sim._transcript import PROMPT_PREFIX, Event, Transcript
from ivr.tts import SOUND_PREFIX as TTS_PREFIX

__all__ = ["KAZOO_REQUEST_TIMEOUT", "PivotCallResult", "pivot_call", "place_pivot_call"]

KAZOO_REQUEST_TIMEOUT = 5.0
"""Seconds Kazoo waits for a pivot answer (`pivot_call.erl`, `request_timeout_ms` default)."""

_MAX_REQUESTS = 500
_numbers = itertools.count(1)


@dataclass(frozen=True)
class PivotCallResult:
    """How one simulated Kazoo call went.

    `ended_by`: ``service`` (a `hangup`), ``transfer`` (a `callflow` module), ``flow_end`` (the
    callflow ran out of modules: Kazoo hangs up), ``caller``, ``failure`` (see `failure`), or
    ``gave_up`` (the call lasted past `timeout`). `answer_seconds`: how long each pivot request
    took to be answered.
    """

    transcript: Transcript
    call_id: str
    ended_by: str | None
    requests: int
    answer_seconds: tuple[float, ...]
    failure: str | None
    duration: float
    transferred_to: str | None = None

    @property
    def unique_id(self) -> str:
        """The Call-ID: what the service records as the call id."""
        return self.call_id

    @property
    def slowest(self) -> float:
        return max(self.answer_seconds, default=0.0)


@dataclass
class _Kazoo:
    """One call's state on Kazoo's side."""

    caller: Caller
    sounds: SoundLibrary
    language: str
    transcript: Transcript = field(default_factory=Transcript)
    collections: dict[str, str] = field(default_factory=dict)
    answered: bool = False
    digits: str = ""
    ended_by: str | None = None
    transferred_to: str | None = None
    hangup_at: float | None = None

    def record(self, event: Event) -> None:
        if event.kind != "digits" and self.digits:
            pending, self.digits = self.digits, ""
            self.record(Event("digits", pending))
        self.transcript.add(event)
        self.caller.observe(event)

    def answer(self) -> None:
        if not self.answered:
            self.answered = True
            self.record(Event("answer"))

    def hang_up(self, who: str) -> None:
        self.record(Event("hangup", who))
        self.ended_by = who

    def flush(self) -> None:
        if self.digits:
            pending, self.digits = self.digits, ""
            self.record(Event("digits", pending))

    def caller_left(self) -> bool:
        return self.hangup_at is not None and time.monotonic() >= self.hangup_at

    def plan_hangup(self, sound: str) -> bool:
        """Whether the caller hangs up while `sound` plays; notes a later planned hang-up."""
        later = self.caller.hangup_after(sound)
        if later is not None and self.hangup_at is None:
            self.hangup_at = time.monotonic() + later
        return self.caller.hangup_on(sound)


async def place_pivot_call(
    url: str,
    route: str = "keybox",
    *,
    secret: str | None = None,
    query: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> PivotCallResult:
    """A Kazoo call to the service at `url` (its base URL): the callflow's pivot module requests
    ``{url}/kazoo/pivot/{route}?secret=...&<query>`` with ``req_format: kazoo``, method GET."""
    own = {**({"secret": secret} if secret is not None else {}), **(query or {})}
    voice_url = f"{url.rstrip('/')}/kazoo/pivot/{quote(route, safe='')}" + (f"?{urlencode(own)}" if own else "")
    return await pivot_call(voice_url, **kwargs)


async def pivot_call(
    voice_url: str,
    *,
    caller: Caller,
    sounds: SoundLibrary,
    call_id: str | None = None,
    caller_id: str = "+15555550100",
    caller_name: str = "Caller",
    to: str = "+15555550000",
    account_id: str = "0" * 32,
    language: str = "en",
    custom_vars: Mapping[str, str] | None = None,
    request_timeout: float = KAZOO_REQUEST_TIMEOUT,
    timeout: float = 60.0,
    client: httpx.AsyncClient | None = None,
) -> PivotCallResult:
    """A Kazoo call whose callflow's pivot module has `voice_url` (as provisioned: the secret in
    it), played from the first request to the end of the call."""
    call_id = call_id or f"pivot-{next(_numbers)}-{uuid.uuid4().hex[:12]}"
    params = {
        "Account-ID": account_id, "Api-Version": "4.x", "Call-ID": call_id, "Caller-ID-Name": caller_name,
        "Caller-ID-Number": caller_id, "Direction": "inbound", "From": caller_id.lstrip("+"), "Language": language,
        "Request": to.lstrip("+"), "To": to.lstrip("+"),
        **{f"Custom-Application-Vars[{k}]": v for k, v in (custom_vars or {}).items()},
    }
    kazoo = _Kazoo(caller, sounds, language)
    answer_seconds: list[float] = []
    failure: str | None = None
    started = time.monotonic()
    own_client = client is None
    http = client or httpx.AsyncClient(trust_env=False)
    try:
        async with asyncio.timeout(timeout):
            for _ in range(_MAX_REQUESTS):
                flow, failure = await _request(http, voice_url, params, kazoo, request_timeout, answer_seconds)
                if flow is None:
                    kazoo.ended_by = kazoo.ended_by or ("failure" if failure else "flow_end")
                    break
                voice_url_next = await _run(flow, kazoo)
                if voice_url_next is None:
                    break
                voice_url = voice_url_next
            else:
                failure, kazoo.ended_by = f"more than {_MAX_REQUESTS} pivot requests", "failure"
    except TimeoutError:
        kazoo.transcript.note(f"the caller gave up: the call was still going after {timeout:g} s")
        kazoo.ended_by = "gave_up"
    finally:
        if own_client:
            await http.aclose()
    kazoo.flush()
    if failure:
        kazoo.transcript.note(f"pivot failed: {failure}; Kazoo ends the call")
    return PivotCallResult(
        transcript=kazoo.transcript, call_id=call_id, ended_by=kazoo.ended_by, requests=len(answer_seconds),
        answer_seconds=tuple(answer_seconds), failure=failure, duration=time.monotonic() - started,
        transferred_to=kazoo.transferred_to,
    )


async def _request(
    http: httpx.AsyncClient, voice_url: str, params: dict[str, str], kazoo: _Kazoo, request_timeout: float,
    answer_seconds: list[float],
) -> tuple[dict[str, Any] | None, str | None]:
    """One pivot request: the callflow to run, or None and why not (None: an empty body)."""
    pairs = {**params, **{f"Digits[{name}]": value for name, value in kazoo.collections.items()}}
    # kz_http_util:json_to_querystring leaves keys (and their brackets) as they are
    query = "&".join(f"{key}={quote(value, safe='')}" for key, value in pairs.items())
    target = f"{voice_url}{'&' if urlsplit(voice_url).query else '?'}{query}"
    began = time.monotonic()
    wait = request_timeout
    if kazoo.hangup_at is not None:
        wait = min(wait, max(0.0, kazoo.hangup_at - began))
    try:
        async with asyncio.timeout(wait):
            response = await http.get(target)
    except TimeoutError:
        answer_seconds.append(time.monotonic() - began)
        if kazoo.caller_left():
            kazoo.hang_up("caller")
            return None, None
        return None, f"no answer within {request_timeout:g} s"
    except httpx.HTTPError as exc:
        answer_seconds.append(time.monotonic() - began)
        return None, f"request failed: {type(exc).__name__}"
    answer_seconds.append(time.monotonic() - began)
    if kazoo.caller_left():
        kazoo.hang_up("caller")
        return None, None
    if response.status_code >= 400:
        return None, f"HTTP {response.status_code}"
    if not response.content:
        kazoo.transcript.note("empty pivot answer: Kazoo ends the call")
        return None, None
    # kzt_translator:find_candidate_translators/1: XML types and none at all are TwiML only;
    # application/json is Kazoo JSON; any other type is tried as both
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("", "text/xml", "application/xml"):
        return None, f"content type {content_type or '(none)'} is read as TwiML"
    try:
        flow = json.loads(response.content)
    except ValueError:
        return None, "invalid JSON"
    if not isinstance(flow, dict) or not isinstance(flow.get("module"), str):
        return None, "not a callflow"
    return flow, None


async def _run(flow: dict[str, Any], kazoo: _Kazoo) -> str | None:
    """Run one callflow; the URL of the pivot it ends on, or None when the call is over."""
    module: Any = flow
    prompt: str | None = None  # the sound just before, that any key could cut short
    while isinstance(module, dict):
        if kazoo.caller_left():
            kazoo.hang_up("caller")
            return None
        name, data = module.get("module"), module.get("data") or {}
        match name:
            case "play":
                heard = _play(kazoo, str(data.get("id", "")))
                if heard is None:
                    return None
                prompt = heard if "terminators" not in data else None
            case "tts":
                kazoo.answer()
                kazoo.record(Event("tts", str(data.get("text", ""))))
                prompt = None
            case "collect_dtmf":
                kazoo.answer()
                if not await _collect(kazoo, data, prompt):
                    return None
                prompt = None
            case "set_variables":
                for key, value in (data.get("custom_application_vars") or {}).items():
                    kazoo.record(Event("variable", f"{key}={value}"))
            case "set_variable":
                kazoo.record(Event("variable", f"{data.get('variable')}={data.get('value')}"))
            case "pivot":
                if data.get("req_format") != "kazoo":
                    kazoo.transcript.note("a pivot without req_format kazoo: Kazoo sends TwiML parameters")
                return str(data.get("voice_url", ""))
            case "hangup" | "response":
                kazoo.hang_up("service")
                return None
            case "callflow":
                kazoo.transferred_to = str(data.get("id", ""))
                kazoo.record(Event("transfer", kazoo.transferred_to))
                kazoo.ended_by = "transfer"
                return None
            case _:
                kazoo.transcript.note(f"module {name!r} is not simulated: skipped")
        children = module.get("children") or {}
        module = children.get("_") if isinstance(children, dict) else None
    kazoo.hang_up("service")
    kazoo.ended_by = "flow_end"
    kazoo.transcript.note("the callflow ran out of modules: Kazoo hangs up")
    return None


def _play(kazoo: _Kazoo, url: str) -> str | None:
    """Play one URL; the sound's name, '' for one we cannot name, None when the caller hung up."""
    kazoo.answer()
    sound, language = _sound_of(url)
    if sound is None:
        kazoo.record(Event("missing", url))
        return ""
    if language is not None and language != kazoo.language:
        kazoo.language = language
        kazoo.record(Event("language", language))
    if not kazoo.sounds.exists(sound, kazoo.language):
        kazoo.record(Event("missing", sound))
        return sound
    event = kazoo.sounds.describe(sound)
    if event.kind == "tts" and len(event.value) == 1 and event.value.isdecimal():
        if kazoo.plan_hangup(f"digits/{event.value}"):
            kazoo.digits += event.value
            kazoo.flush()
            kazoo.hang_up("caller")
            return None
        kazoo.digits += event.value
        return sound
    kazoo.record(event)
    if kazoo.plan_hangup(sound):
        kazoo.hang_up("caller")
        return None
    return sound


async def _collect(kazoo: _Kazoo, data: Mapping[str, Any], prompt: str | None) -> bool:
    """`cf_collect_dtmf`: up to `max_digits`, ended by the terminator (not kept) or the timeout;
    False when the caller hung up instead."""
    kazoo.flush()
    max_digits = int(data.get("max_digits") or 1)
    timeout_ms = int(data.get("timeout") or 5000)
    terminators = data.get("terminators") or [data.get("terminator") or "#"]
    one_key = max_digits == 1 and prompt is None
    request = InputRequest("wait_for_digit" if one_key else "get_data",
                           prompt if prompt and prompt.startswith(PROMPT_PREFIX) else None, max_digits, timeout_ms)
    keys = await kazoo.caller.keys_for(request)
    if keys is None or kazoo.caller_left():
        kazoo.hang_up("caller")
        return False
    keys = "".join(key for key in keys if key in DTMF_KEYS)
    kazoo.record(Event("pressed", keys) if keys else Event("silence"))
    entry = ""
    for key in keys:
        if key in terminators or len(entry) >= max_digits:
            break
        entry += key
    kazoo.collections[str(data.get("collection_name") or "default")] = entry
    return True


def _sound_of(url: str) -> tuple[str | None, str | None]:
    """`.../media/sounds/<lang>/keybox/<id>.wav` -> (`keybox/<id>`, lang); `.../media/tts/<h>.wav`
    -> (`tts/<h>`, None); anything else (None, None)."""
    parts = urlsplit(url).path.split("/")
    if len(parts) >= 3 and parts[-3:-1] == ["media", "tts"] and parts[-1].endswith(".wav"):
        return TTS_PREFIX + parts[-1].removesuffix(".wav"), None
    if len(parts) >= 4 and parts[-4] == "sounds" and parts[-2] == "keybox" and parts[-1].endswith(".wav"):
        return PROMPT_PREFIX + parts[-1].removesuffix(".wav"), parts[-3]
    return None, None
