"""The call flow: what a caller hears and presses, route by route (see the call-flow contract)."""
