"""The systems that know key holders, boxes and codes: one subpackage per backend.

`kimvoice` is the one the line uses today (with its stand-in server, `kimvoice.sandbox`); a new
backend (Kimoby, Codelocks) goes here beside it.
"""
