"""Placing a simulated call into a Stasis application over the simulated ARI.

`place_ari_call` is `place_call`'s counterpart for the ARI transport: the channel enters
``Stasis(<app>,<route>)``, the application hears ``StasisStart`` on its WebSocket, and the
scripted caller plays their part until the service hangs up or transfers, or the caller hangs
up or gives up. What the caller heard is in the same `Transcript` as over FastAGI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ivr.sim._ari_asterisk import SimulatedAri
from ivr.sim._callers import Caller
from ivr.sim._transcript import Transcript

__all__ = ["AriCallResult", "place_ari_call"]

CONNECT_TIMEOUT = 2.0
"""How long a call waits for the application's WebSocket before Stasis() would fail."""


@dataclass(frozen=True)
class AriCallResult:
    """How one simulated ARI call went.

    `ended_by`: ``service`` (it hung up), ``transfer`` (continued to the operator context with
    ``IVR_TRANSFER`` set), ``dialplan`` (continued elsewhere), ``caller``. `requests_after_end`:
    REST requests the service made for the channel after it was gone or out of Stasis.
    `lost_events`: events Asterisk could not deliver because the application was not connected.
    """

    transcript: Transcript
    channel_id: str
    ended_by: str | None
    requests: int
    requests_after_end: int
    lost_events: int
    duration: float

    @property
    def unique_id(self) -> str:
        """The channel id: what the service records as the call id (as `CallResult.unique_id`)."""
        return self.channel_id


async def place_ari_call(
    ari: SimulatedAri,
    route: str | None = "keybox",
    *,
    caller: Caller,
    app: str = "keybox",
    args: Sequence[str] = (),
    language: str = "en",
    caller_id: str | None = "+15555550100",
    answered: bool = False,
    variables: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    connect_timeout: float = CONNECT_TIMEOUT,
) -> AriCallResult:
    """A call entering ``Stasis(<app>,<route>[,<args>…])`` (`route` None: ``Stasis(<app>)``).

    Raises `ConnectionError` when application `app` has no WebSocket within `connect_timeout`
    (Asterisk's Stasis() fails for an application nobody serves). `timeout` bounds the call;
    `variables` are channel variables the dialplan set before Stasis().
    """
    try:
        await ari.wait_connected(app, connect_timeout)
    except TimeoutError:
        raise ConnectionError(f"no application {app!r} is connected to the simulated ARI") from None
    stasis_args = ([route] if route is not None else []) + list(args)
    channel = ari.new_channel(app, stasis_args, caller=caller, language=language, caller_id=caller_id,
                              answered=answered, variables=variables, timeout=timeout)
    loop = asyncio.get_running_loop()
    started = loop.time()
    transcript = await channel.run()
    return AriCallResult(
        transcript=transcript,
        channel_id=channel.id,
        ended_by=channel.ended_by,
        requests=channel.requests,
        requests_after_end=channel.requests_after_end,
        lost_events=channel.lost_events,
        duration=loop.time() - started,
    )
