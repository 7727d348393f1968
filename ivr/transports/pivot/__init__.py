"""Kazoo Pivot: the flow's calls over Kazoo's pivot HTTP requests and callflow JSON answers.

`PivotApp` holds the routes ``/kazoo/pivot/{route}`` (the secret and allow list checked) and the
suspended flows (`PivotCalls`); `PivotCall` is the flow's `ivr.flow.call.Call` over them. The
service mounts the routes on its HTTP app and drains the calls on stop::

    pivot = PivotApp(handle, public_url="https://ivr.example.com", secret=secret, tts=services.tts)
    app = Starlette(routes=[*pivot.routes, ...])
    ...
    await pivot.drain(30)
"""

from __future__ import annotations

from ivr.transports.pivot._app import MAX_BODY, PivotApp
from ivr.transports.pivot._call import ANSWER_WITHIN, HANGUP_MARGIN, PLAY_ALLOWANCE, PivotBusyError, PivotCall
from ivr.transports.pivot._calls import TURN, PivotCallHandler, PivotCalls
from ivr.transports.pivot._kazoo import COLLECTION, INVALID_ENTRY, MAX_DIGITS_LENGTH, callflow, digits_of

__all__ = [
    "ANSWER_WITHIN",
    "COLLECTION",
    "HANGUP_MARGIN",
    "INVALID_ENTRY",
    "MAX_BODY",
    "MAX_DIGITS_LENGTH",
    "PLAY_ALLOWANCE",
    "TURN",
    "PivotApp",
    "PivotBusyError",
    "PivotCall",
    "PivotCallHandler",
    "PivotCalls",
    "callflow",
    "digits_of",
]
