"""The platforms that place outbound calls, one folder each: `asterisk` (AMI), `ictcore`
(and `kazoo`, later). Each implements `ivr.outbound.Platform`."""
