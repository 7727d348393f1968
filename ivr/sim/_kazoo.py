"""Kazoo's media side for the Kazoo sandbox: a quickcall that reaches a pivot callflow is played.

The crossbar sandbox (`ivr.outbound.platforms.kazoo.sandbox`) places quickcall legs but has no
media: `KazooMediaSide` plugs into its `on_callflow_call` hook and, for a callflow whose first
module is `pivot`, plays Kazoo's side of that call with `pivot_call` — the pivot module's
`voice_url` (the secret in it, as provisioned), the leg's call id, and the quickcall's custom
application variables as `Custom-Application-Vars` (`job`, `attempt`: what the `announce` route
reads) — against a scripted callee who listens and presses nothing unless told to. When the
call is over the leg is hung up (`NORMAL_CLEARING`), which writes its CDR: the platform's follow
then finds it, as with a real Kazoo.

What each callee heard goes to `heard_dir/<job>.txt` with codes masked, as the simulated
Asterisk's callees leave it. Only `req_format: kazoo` with `method: get` is played (the pivot
driver speaks Kazoo JSON over GET); any other callflow gets the sandbox's default (the call is
answered, lasts `call_seconds`, ends). The calls driven at once are capped; past the cap a call
gets the default too. Nothing is requested but the callflows' own URLs.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from ivr.catalog import PromptCatalog, default_prompts_dir
from ivr.logging import get_logger
from ivr.outbound.platforms.kazoo.sandbox import CallflowCall, KazooSandbox
from ivr.sim._callers import Caller, ScriptedCaller
from ivr.sim._heard import masked_lines, write_heard
from ivr.sim._pivot import KAZOO_REQUEST_TIMEOUT, PivotCallResult, pivot_call
from ivr.sim._sounds import SoundLibrary

__all__ = ["MAX_DRIVEN_CALLS", "KazooMediaSide"]

log = get_logger("ivr.sim")

MAX_DRIVEN_CALLS = 50
"""Pivot calls played at once by default; past it a call gets the sandbox's default talk."""
_RESULTS_KEPT = 200
_CALL_TIMEOUT = 300.0
"""Seconds a driven call may last before the callee gives up (a pivot loop without end)."""


class KazooMediaSide:
    """Plays the pivot callflows a `KazooSandbox` reaches; `attach` hooks it in, `close` ends it.

    `sounds`: what the callee can hear (the service's TTS cache makes its renders readable);
    `keys`: what the default callee types (a `ScriptedCaller` script; empty: listens, presses
    nothing); `callee`: a callee per call instead. `heard_dir`: where each played call leaves
    its transcript (None: nowhere). `results`: the newest calls played, in the order they ended.
    """

    def __init__(
        self, sandbox: KazooSandbox, *, sounds: SoundLibrary, catalog: PromptCatalog | None = None,
        heard_dir: Path | None = None, keys: str = "", callee: Callable[[CallflowCall], Caller] | None = None,
        max_calls: int = MAX_DRIVEN_CALLS, request_timeout: float = KAZOO_REQUEST_TIMEOUT,
        call_timeout: float = _CALL_TIMEOUT,
    ) -> None:
        if max_calls < 1:
            raise ValueError("max_calls: at least 1")
        self.sandbox = sandbox
        self.sounds = sounds
        self.catalog = catalog or PromptCatalog.load(default_prompts_dir())
        self.heard_dir = heard_dir
        self.callee = callee or (lambda _: ScriptedCaller(keys))
        self.max_calls = max_calls
        self.results: collections.deque[PivotCallResult] = collections.deque(maxlen=_RESULTS_KEPT)
        self._request_timeout = request_timeout
        self._call_timeout = call_timeout
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None

    @property
    def active(self) -> int:
        """Calls being played now."""
        return len(self._tasks)

    def attach(self) -> KazooMediaSide:
        """From now on the sandbox's callflow calls come here."""
        self.sandbox.on_callflow_call = self.on_callflow_call
        return self

    async def __aenter__(self) -> KazooMediaSide:
        return self.attach()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Detach, end the calls being played (their legs hung up) and close the HTTP client."""
        if self.sandbox.on_callflow_call == self.on_callflow_call:
            self.sandbox.on_callflow_call = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def wait_calls(self) -> None:
        """Until every call being played has ended and left its transcript."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def on_callflow_call(self, call: CallflowCall) -> bool | None:
        """The sandbox's hook: True when the call is ours to play (then it lasts until we hang up)."""
        voice_url = _pivot_url(call.callflow.get("flow"))
        if voice_url is None:
            return None
        if len(self._tasks) >= self.max_calls:
            log.warning("kazoo_media.over_capacity", call_id=call.call_id, limit=self.max_calls)
            return None
        task = asyncio.get_running_loop().create_task(self._play(call, voice_url))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _play(self, call: CallflowCall, voice_url: str) -> None:
        job = call.variables.get("job", "")
        # The URL carries the pivot secret: only its path goes into a log line.
        log.info("kazoo_media.call", call_id=call.call_id, number=call.number, path=urlsplit(voice_url).path,
                 job_id=job[:64])
        try:
            result = await pivot_call(
                voice_url, caller=self.callee(call), sounds=self.sounds, call_id=call.call_id,
                custom_vars=call.variables, caller_id=call.caller_id_number or "+15555550100", to=call.number,
                account_id=call.account_id, request_timeout=self._request_timeout, timeout=self._call_timeout,
                client=self._client())
            self.results.append(result)
            log.info("kazoo_media.ended", call_id=call.call_id, ended_by=result.ended_by,
                     requests=result.requests, failure=result.failure)
            if self.heard_dir is not None:
                lines = masked_lines(result.transcript.render(self.catalog, "en"))
                await asyncio.to_thread(write_heard, self.heard_dir, job or call.call_id, lines)
        except (ValueError, TypeError) as exc:  # an answer Kazoo could not run either: the call ends
            log.warning("kazoo_media.broken_callflow", call_id=call.call_id, error=type(exc).__name__)
        except OSError as exc:  # the transcript could not be written: the call is over all the same
            log.warning("kazoo_media.heard_not_written", call_id=call.call_id, error=type(exc).__name__)
        finally:
            self.sandbox.hang_up(call.call_id, "NORMAL_CLEARING")

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            # trust_env off: no proxy or .netrc from the environment, only the callflows' URLs
            self._http = httpx.AsyncClient(trust_env=False, follow_redirects=False,
                                           limits=httpx.Limits(max_connections=self.max_calls))
        return self._http


def _pivot_url(flow: Any) -> str | None:
    """The `voice_url` of a callflow whose first module is a pivot this side can play, else None."""
    if not isinstance(flow, dict) or flow.get("module") != "pivot":
        return None
    data = flow.get("data")
    data = data if isinstance(data, dict) else {}
    url, method = data.get("voice_url"), str(data.get("method") or "get").lower()
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        return None
    if method != "get" or data.get("req_format", "kazoo") != "kazoo":
        log.warning("kazoo_media.not_simulated", method=method, req_format=str(data.get("req_format"))[:16])
        return None
    return url
