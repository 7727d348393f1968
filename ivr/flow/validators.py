"""What makes an entry valid, per the contract (before anything is sent to KimVoice)."""

from __future__ import annotations

INT32_MAX = 2_147_483_647


def is_key_number(digits: str) -> bool:
    """5 to 10 digits, 10000 to 2147483647."""
    return digits.isdecimal() and digits.isascii() and 5 <= len(digits) <= 10 and 10_000 <= int(digits) <= INT32_MAX


def is_four_digits(digits: str) -> bool:
    """A PIN or shackle code: exactly four digits."""
    return len(digits) == 4 and digits.isdecimal() and digits.isascii()


def is_box_number(digits: str) -> bool:
    """1 to 10 digits, 1 to 2147483647."""
    return digits.isdecimal() and digits.isascii() and 1 <= len(digits) <= 10 and 1 <= int(digits) <= INT32_MAX
