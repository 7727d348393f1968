"""keybox-ivr: the phone line real-estate key holders call for their codes."""
