"""How calls reach the flow: one subpackage per telephony transport.

Each implements the `Call` interface the flow owns (`ivr.flow.call`) and runs each call under
`ivr.sessions.CallSessions`: `agi` (FastAGI and classic AGI) and `ari` (the Asterisk REST
Interface). A later transport (a Kazoo pivot) goes here beside them. A transport may import the
flow's interfaces, never the reverse.
"""
