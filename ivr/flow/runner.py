"""Run one call: pick its route, end it cleanly whatever happens, keep exactly one record.

The endings live here, once: goodbye, the operator transfer, `system-unavailable` when a
backend fails, silence when the caller has hung up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from ivr.errors import (
    ChannelHangupError,
    ChannelProtocolError,
    KimVoiceError,
    NetCodeError,
    SignInThrottledError,
    StoreError,
)
from ivr.flow.announce import announce
from ivr.flow.call import Call
from ivr.flow.dialog import Dialog, EndCall, GaveUp, OperatorRequested, TooManyAttempts
from ivr.flow.identify import identify
from ivr.flow.keybox import keybox
from ivr.flow.services import Services
from ivr.logging import ThrottledWarning, get_logger
from ivr.records import CallRecord, Outcome

log = get_logger("ivr.flow")
_unknown_route = ThrottledWarning(log, "flow.unknown_route")  # the route is what the peer asked for

Route = Callable[[Dialog, Services], Awaitable[Outcome]]

ROUTES: dict[str, Route] = {"keybox": keybox, "identify": identify, "announce": announce}


async def run_call(call: Call, services: Services, *, refuse: str | None = None) -> CallRecord:
    """Run the route `call.route` asks for, to its end; return the call's one record.

    With `refuse` (why), the caller hears `system-unavailable` at once and no backend is asked:
    what an overloaded service does rather than fail every call slowly.
    """
    record = CallRecord(call_id=call.call_id, route=call.route, caller_id=call.caller_id, language=call.language)
    dialog = Dialog(call, record, services.tts, services.dialog_config)
    try:
        record.outcome = await (_refuse(dialog, refuse) if refuse else _run(dialog, services))
    except asyncio.CancelledError:
        record.outcome, record.detail = Outcome.ERROR, "cancelled (service stopping)"
        raise
    finally:
        dialog.close_steps()
        record.ended = time.time()
        await _keep(record, services)
    return record


async def _run(d: Dialog, s: Services) -> Outcome:
    route = ROUTES.get(d.call.route)
    try:
        if d.call.language not in s.settings.languages:
            await d.call.set_language(s.settings.languages[0])
            d.record.language = s.settings.languages[0]
        if route is None:  # a dialplan naming a route this service lacks: the caller still hears why,
            _unknown_route.note(route=d.call.route[:64])  # and the record says `error`, transferred or not
            await d.call.answer()
            await _after(d, "system-unavailable", "error", Outcome.ERROR, f"unknown route {d.call.route!r}")
            return Outcome.ERROR
        return await route(d, s)
    except EndCall as end:
        d.record.detail = end.detail
        await _quietly(_goodbye(d))
        return end.outcome
    except GaveUp as gone:
        d.record.detail = gone.detail
        return gone.outcome
    except ChannelHangupError:
        d.record.detail = f"hung up during {d.record.last_step or 'the start'}"
        return Outcome.CALLER_HANGUP
    except OperatorRequested as wish:
        return await _after(d, None, "operator_requested", Outcome.TRANSFERRED, f"asked for an agent at {wish}")
    except TooManyAttempts as exc:
        return await _after(d, "too-many-attempts", "too_many_attempts", Outcome.TOO_MANY_ATTEMPTS,
                            f"at {exc.question}")
    except (KimVoiceError, NetCodeError) as exc:
        log.warning("flow.backend_failed", error=str(exc), step=d.record.last_step)
        return await _after(d, "system-unavailable", "unavailable", Outcome.UNAVAILABLE, type(exc).__name__)
    except (StoreError, SignInThrottledError) as exc:
        log.warning("flow.sign_in_refused", error=str(exc), step=d.record.last_step)
        return await _after(d, "system-unavailable", "unavailable", Outcome.UNAVAILABLE, type(exc).__name__)
    except ChannelProtocolError as exc:
        log.error("flow.channel_protocol_error", error=str(exc), step=d.record.last_step)
        d.record.detail = "channel protocol error"
        return Outcome.ERROR
    except Exception:
        log.exception("flow.failed", step=d.record.last_step)
        return await _after(d, "system-unavailable", "error", Outcome.ERROR, "unexpected error")


async def _refuse(d: Dialog, why: str) -> Outcome:
    log.warning("flow.refused", reason=why)
    try:
        await d.call.answer()
    except ChannelHangupError:
        d.record.detail = why
        return Outcome.CALLER_HANGUP
    return await _after(d, "system-unavailable", "unavailable", Outcome.UNAVAILABLE, why)


async def _after(d: Dialog, prompt: str | None, reason: str, outcome: Outcome, detail: str) -> Outcome:
    """Say what went wrong, then an agent if there is one, else goodbye; never silence."""
    d.record.detail = detail
    try:
        if prompt:
            await d.play(prompt)
        if d.config.operator:
            await _transfer(d, reason)
            return Outcome.TRANSFERRED
        await _goodbye(d)
    except ChannelHangupError:
        d.record.detail = f"{detail}; hung up before the end"
        return Outcome.CALLER_HANGUP if outcome is Outcome.TRANSFERRED else outcome
    except ChannelProtocolError as exc:
        log.error("flow.channel_protocol_error", error=str(exc), step=d.record.last_step)
    return outcome


async def _transfer(d: Dialog, reason: str) -> None:
    """`transferring`, the variables an agent's screen shows, and on to the agents."""
    last_step = d.record.last_step
    d.step("transfer")
    await d.play("transferring")
    await d.call.set_variable("IVR_KEY_NUMBER", d.record.key_shown)
    await d.call.set_variable("IVR_LAST_STEP", last_step)
    await d.call.set_variable("IVR_OUTCOME", reason)
    # The record's id: the agent finds the call with `ivr calls <IVR_CALL_ID>` (keybox-operator).
    await d.call.set_variable("IVR_CALL_ID", d.record.call_id)
    await d.call.transfer(d.config.operator)


async def _goodbye(d: Dialog) -> None:
    d.step("goodbye")
    await d.play("goodbye")
    await d.call.hangup()


async def _quietly(action: Awaitable[None]) -> None:
    try:
        await action
    except ChannelHangupError:
        pass


async def _keep(record: CallRecord, services: Services) -> None:
    """Hand the record to every sink; one sink failing loses nothing in the others."""
    log.info("call.record", **record.model_dump(mode="json", exclude={"steps", "backend"}),
             steps=[s.name for s in record.steps], backend=[f"{b.method}:{b.result}:{b.ms}" for b in record.backend])
    for sink in services.sinks:
        try:
            await sink(record)
        except Exception:
            log.exception("call.record_sink_failed", sink=getattr(sink, "__qualname__", repr(sink)))
