"""A Kimoby stand-in that speaks the part of its API the line uses, signs and retries its
webhooks as Kimoby's guide says, and has fault knobs: for tests, the demo and `ivr kimoby-sandbox`.

Its customers are the KimVoice sandbox's test keys (`SEED_CUSTOMERS`, by reference): texts to
most are delivered; one has no cell phone, one is unsubscribed, one's texts end `undelivered`,
one's `failed`. Webhooks registered through its API get every event, signed, on the retry
schedule (the `retry_schedule` knob: the guide's ten hours, or a few hundredths of a second in tests).
"""

from ivr.backends.kimoby.sandbox._app import create_app
from ivr.backends.kimoby.sandbox._knobs import KIMOBY_RETRY_SCHEDULE, KimobyKnobs
from ivr.backends.kimoby.sandbox._sender import Delivery
from ivr.backends.kimoby.sandbox._server import KimobySandboxServer, serve_kimoby_sandbox
from ivr.backends.kimoby.sandbox._state import (
    FAILED_NUMBER,
    SANDBOX_API_KEY,
    SANDBOX_API_SECRET,
    SEED_CUSTOMERS,
    UNDELIVERED_NUMBER,
    UNKNOWN_REFERENCE,
    KimobySandbox,
    Refused,
    SeedCustomer,
    customer_id_for,
    seed_customer_lines,
)

__all__ = [
    "FAILED_NUMBER",
    "KIMOBY_RETRY_SCHEDULE",
    "SANDBOX_API_KEY",
    "SANDBOX_API_SECRET",
    "SEED_CUSTOMERS",
    "UNDELIVERED_NUMBER",
    "UNKNOWN_REFERENCE",
    "Delivery",
    "KimobyKnobs",
    "KimobySandbox",
    "KimobySandboxServer",
    "Refused",
    "SeedCustomer",
    "create_app",
    "customer_id_for",
    "seed_customer_lines",
    "serve_kimoby_sandbox",
]
