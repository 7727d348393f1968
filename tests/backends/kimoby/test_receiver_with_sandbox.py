"""The webhook receiver behind a real loopback listener, fed by the sandbox's signed, retried
deliveries: the path a text's delivery status takes back to the call record."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from ivr.backends.kimoby import DeliveryUpdate, KimobyClient, MessageStatus, SubscriptionChange
from ivr.backends.kimoby.sandbox import KimobySandbox, KimobySandboxServer, customer_id_for

TEXT = "Your update code is 7654321."


async def settled(sandbox: KimobySandbox, hook: Any, message_id: str) -> None:
    """Until the message has ended, every delivery (retries included) is done and every event handled."""
    async with asyncio.timeout(5):
        while not MessageStatus(sandbox.messages[int(message_id)]["status"]).final:
            await asyncio.sleep(0.005)
        await sandbox.sender.idle()
        await hook.receiver.join()


async def test_delivery_statuses_arrive_signed_and_are_handled_once_despite_retries(
        server: KimobySandboxServer, client: KimobyClient, hook: Any) -> None:
    webhook = await client.create_webhook(hook.url)
    assert webhook.authentication_key
    hook.use(webhook.authentication_key)
    hook.lose_answers = 2  # the first two accepted deliveries look failed to Kimoby: it delivers them again

    message = await client.send_code("123456", TEXT)
    await settled(server.sandbox, hook, message.id)

    updates = [e for e in hook.events.seen if isinstance(e, DeliveryUpdate)]
    assert sorted(u.status.value for u in updates) == ["delivered", "queued", "sent"]
    assert {u.message_id for u in updates} == {message.id}
    assert len({u.event_id for u in updates}) == 3
    deliveries = server.sandbox.sender.deliveries
    assert len(deliveries) == 5 and sum(d.attempt > 1 for d in deliveries) == 2
    assert hook.answers.count(500) == 2 and hook.answers.count(200) == 3


async def test_an_undelivered_text_brings_its_error(server: KimobySandboxServer, client: KimobyClient,
                                                    hook: Any) -> None:
    hook.use((await client.create_webhook(hook.url, ["message_updated"])).authentication_key)
    message = await client.send_code("345678", TEXT)
    await settled(server.sandbox, hook, message.id)
    last = [e for e in hook.events.seen if isinstance(e, DeliveryUpdate)][-1]
    assert last.status is MessageStatus.UNDELIVERED and last.error == "Unreachable destination handset"


async def test_a_delivery_signed_with_another_key_has_no_effect(server: KimobySandboxServer, client: KimobyClient,
                                                                hook: Any) -> None:
    await client.create_webhook(hook.url)
    hook.use("a key Kimoby never gave us")
    message = await client.send_code("123456", TEXT)
    await settled(server.sandbox, hook, message.id)
    assert hook.events.seen == []
    assert set(hook.answers) == {401} and len(hook.answers) == 3 * 6  # every attempt of every event refused


async def test_an_unsubscribe_reaches_the_receiver(server: KimobySandboxServer, client: KimobyClient,
                                                   hook: Any) -> None:
    hook.use((await client.create_webhook(hook.url)).authentication_key)
    server.sandbox.set_unsubscribed("234567", True)
    async with asyncio.timeout(5):
        await server.sandbox.sender.idle()
        await hook.receiver.join()
    assert [(e.customer_id, e.unsubscribed) for e in hook.events.seen if isinstance(e, SubscriptionChange)] == [
        (customer_id_for("234567"), True)]


async def test_no_log_line_holds_the_text_or_the_code(server: KimobySandboxServer, client: KimobyClient,
                                                      hook: Any, log_text: io.StringIO) -> None:
    webhook = await client.create_webhook(hook.url)
    hook.use(webhook.authentication_key)
    message = await client.send_code("123456", TEXT)
    await settled(server.sandbox, hook, message.id)
    logged = log_text.getvalue()
    assert "kimoby.delivery_status" in logged and message.id in logged
    assert "7654321" not in logged and "Your update code" not in logged
    assert webhook.authentication_key not in logged
