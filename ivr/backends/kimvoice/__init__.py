"""KimVoice: the backend that knows keys, key holders and their codes.

`KimVoiceClient` is the production client; `KimVoice` is the interface the call flow uses;
`ivr.kimvoice.sandbox` is a stand-in server that speaks the same wire.
"""

from ivr.kimvoice._client import KimVoice, KimVoiceClient
from ivr.kimvoice._connect import check_sandbox_use, open_kimvoice
from ivr.kimvoice._methods import METHODS, Method
from ivr.kimvoice._models import (
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
from ivr.kimvoice._token import Token

__all__ = [
    "METHODS",
    "CbsCode",
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
