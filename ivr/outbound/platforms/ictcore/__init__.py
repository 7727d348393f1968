"""ICTCore (github.com/ictinnovations/ictcore) as an outbound platform, for `notice` jobs.

`IctCorePlatform` places a notice as a contact, a TTS program, a transmission and one send, then
polls the transmission's status; `IctCoreClient` is the REST client under it. The sandbox that
stands in for ICTCore in tests and demos is `ivr.outbound.platforms.ictcore.sandbox`.
"""

from ivr.outbound.platforms.ictcore._client import IctCoreClient, SendAnswer, Spool, digits_only
from ivr.outbound.platforms.ictcore._platform import FOLLOW_LIMIT, IctCorePlatform, outcome_of, program_text

__all__ = [
    "FOLLOW_LIMIT",
    "IctCoreClient",
    "IctCorePlatform",
    "SendAnswer",
    "Spool",
    "digits_only",
    "outcome_of",
    "program_text",
]
