"""KimVoice: the backend that knows keys, key holders and their codes.

`KimVoiceClient` is the production client (retries within the deadline, a `CircuitBreaker`);
`KimVoice` is the interface the call flow uses;
`ivr.backends.kimvoice.sandbox` is a stand-in server that speaks the same wire.
"""

from ivr.backends.kimvoice._breaker import BreakerState, CircuitBreaker
from ivr.backends.kimvoice._client import ATTEMPT_SHARE, KimVoice, KimVoiceClient
from ivr.backends.kimvoice._connect import check_sandbox_use, open_kimvoice
from ivr.backends.kimvoice._methods import METHODS, Method
from ivr.backends.kimvoice._models import (
    CbsCode,
    CodeType,
    HealthCheck,
    IdentifiedKeyHolder,
    KeyHolder,
    KeyHolders,
    Member,
    OperationalMode,
    UpdateCode,
    Validation,
)
from ivr.backends.kimvoice._token import Token

__all__ = [
    "ATTEMPT_SHARE",
    "METHODS",
    "BreakerState",
    "CbsCode",
    "CircuitBreaker",
    "CodeType",
    "HealthCheck",
    "IdentifiedKeyHolder",
    "KeyHolder",
    "KeyHolders",
    "KimVoice",
    "KimVoiceClient",
    "Member",
    "Method",
    "OperationalMode",
    "Token",
    "UpdateCode",
    "Validation",
    "check_sandbox_use",
    "open_kimvoice",
]
