"""Asterisk's ARI: the Stasis application ``keybox`` as a transport for the call flow.

`AriApp` holds the events WebSocket and runs a handler per channel that enters
``Stasis(keybox[,route])``; `AriCall` is the flow's `ivr.flow.call.Call` over ARI's REST
requests and events; `AriRest` is the small REST subset both use. The service starts an
`AriApp` when ``IVR_ARI_URL`` is set::

    app = AriApp(handle, "http://asterisk:8088", "keybox", password, app="keybox")
    await app.start()
    ...
    await app.drain(30)
"""

from __future__ import annotations

from ivr.errors import AriError
from ivr.transports.ari._app import AriApp, AriCallHandler
from ivr.transports.ari._call import (
    DEFAULT_ROUTE,
    INPUT_EVENT,
    TRANSFER_CONTEXT,
    TRANSFER_VARIABLE,
    AriCall,
)
from ivr.transports.ari._rest import AriRest, ari_base_url

__all__ = [
    "DEFAULT_ROUTE",
    "INPUT_EVENT",
    "TRANSFER_CONTEXT",
    "TRANSFER_VARIABLE",
    "AriApp",
    "AriCall",
    "AriCallHandler",
    "AriError",
    "AriRest",
    "ari_base_url",
]
