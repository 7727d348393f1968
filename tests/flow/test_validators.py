"""Entries the contract accepts (unit tests of the validators)."""

from __future__ import annotations

import pytest

from ivr.flow.validators import is_box_number, is_four_digits, is_key_number


@pytest.mark.parametrize(("digits", "ok"), [
    ("10000", True), ("2147483647", True), ("123456", True),
    ("9999", False), ("2147483648", False), ("09999", False), ("", False), ("12345*", False),
    ("١٢٣٤٥", False), ("12345678901", False),
])
def test_key_number(digits: str, ok: bool) -> None:
    assert is_key_number(digits) is ok


@pytest.mark.parametrize(("digits", "ok"), [
    ("0000", True), ("2580", True), ("123", False), ("12345", False), ("12*4", False), ("", False),
])
def test_four_digits(digits: str, ok: bool) -> None:
    assert is_four_digits(digits) is ok


@pytest.mark.parametrize(("digits", "ok"), [("1", True), ("90210", True), ("0", False), ("2147483648", False)])
def test_box_number(digits: str, ok: bool) -> None:
    assert is_box_number(digits) is ok
