"""`KimobyTexts`: the call flow's "send it by text message" (`ivr.flow.texts.CodeTexts`) over
Kimoby, the key holder's customer found by a reference made from the key number."""

from __future__ import annotations

from ivr.backends.kimoby._client import KimobyClient, Unsubscribed

__all__ = ["KimobyTexts"]


class KimobyTexts:
    """`reference` is the template of a key holder's customer reference (`IVR_KIMOBY_CUSTOMER_REFERENCE`,
    `{key_number}` by default); `unsubscribed` our own record of who unsubscribed (the webhooks
    tell it), checked before every text; `timeout` bounds the whole send, look-up included, so
    that a caller waits seconds at most."""

    def __init__(
        self, client: KimobyClient, *, reference: str = "{key_number}", unsubscribed: Unsubscribed | None = None,
        timeout: float = 6.0,
    ) -> None:
        self.client = client
        self._reference = reference
        self._unsubscribed = unsubscribed
        self._timeout = timeout

    def reference(self, key_number: int) -> str:
        return self._reference.replace("{key_number}", str(key_number))

    async def send(self, key_number: int, text: str) -> str:
        message = await self.client.send_code(self.reference(key_number), text, unsubscribed=self._unsubscribed,
                                              timeout=self._timeout)
        return message.id
