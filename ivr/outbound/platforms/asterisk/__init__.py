"""Asterisk as an outbound platform: `Originate` over the Manager interface (AMI).

`AsteriskPlatform` places and follows the calls; `AmiConnection` is the one wrapper of
panoramisk, where its known defects are handled.
"""

from ivr.outbound.platforms.asterisk._ami import AmiConnection, AmiMessage, ConnectionLost, EventStream
from ivr.outbound.platforms.asterisk._platform import AsteriskPlatform

__all__ = ["AmiConnection", "AmiMessage", "AsteriskPlatform", "ConnectionLost", "EventStream"]
