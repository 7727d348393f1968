"""The lock directory: what a caller's lock number finds, who may have its NetCode, and the one
line an operator reads when the file breaks a rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.backends.codelocks import MAX_LOCKS_FILE_BYTES, LockDirectory, load_locks
from ivr.backends.codelocks.sandbox import SAMPLE_LOCKS_FILE, SANDBOX_LOCKS
from ivr.errors import SettingsError

GOOD = """
[[lock]]
number = 4711
id = "202011161623"
model = "KL1060C2"
identifier = "451254"
timezone = "Europe/London"
duration = 4
members = [5001, 6001]
"""


def _entry(number: int, **changes: str) -> str:
    fields = {"number": str(number), "id": '"202011161623"', "model": '"KL1060C2"', "identifier": '"451254"',
              "timezone": '"Europe/London"', "duration": "4", **changes}
    return "[[lock]]\n" + "".join(f"{key} = {value}\n" for key, value in fields.items()) + "\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "locks.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _refusal(path: Path) -> str:
    with pytest.raises(SettingsError) as caught:
        load_locks(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_a_lock_number_finds_its_lock(tmp_path: Path) -> None:
    locks = load_locks(_write(tmp_path, GOOD))
    lock = locks.find("4711")
    assert lock is not None
    assert (lock.id, lock.model, lock.identifier, lock.duration) == ("202011161623", "KL1060C2", "451254", 4)
    assert lock.zone.key == "Europe/London"
    assert locks.find(4711) == lock
    assert locks.find("04711") == lock  # keyed with a leading zero: the same number


FULL_WIDTH_4711 = "\uff14\uff17\uff11\uff11"


@pytest.mark.parametrize("keyed", ["4712", "", "47a1", "12345678901", FULL_WIDTH_4711])
def test_an_unknown_lock_number_finds_nothing(tmp_path: Path, keyed: str) -> None:
    assert load_locks(_write(tmp_path, GOOD)).find(keyed) is None


def test_only_the_members_listed_may_have_the_netcode(tmp_path: Path) -> None:
    text = GOOD + _entry(4712, members="[]") + _entry(4713)
    locks = load_locks(_write(tmp_path, text))
    restricted, empty, absent = locks.find(4711), locks.find(4712), locks.find(4713)
    assert restricted is not None and empty is not None and absent is not None
    assert restricted.allows(5001) and restricted.allows(6001)
    assert not restricted.allows(7002)
    assert not restricted.allows(None)
    assert empty.allows(7002) and absent.allows(7002) and empty.allows(None)


def test_a_bad_time_zone_is_one_line_naming_the_entry(tmp_path: Path) -> None:
    text = _entry(1000) + _entry(1001) + _entry(4711, timezone='"Europe/Lodnon"')
    message = _refusal(_write(tmp_path, text))
    assert message.endswith("lock #3 (number 4711): timezone: 'Europe/Lodnon' is not a time zone")
    assert message.startswith("IVR_CODELOCKS_LOCKS_FILE ")


def test_duplicate_lock_numbers_are_refused(tmp_path: Path) -> None:
    message = _refusal(_write(tmp_path, _entry(4711) + _entry(12) + _entry(4711)))
    assert message.endswith("lock #3 (number 4711): number: 4711 is already lock #1's")


def test_an_unknown_key_is_refused(tmp_path: Path) -> None:
    message = _refusal(_write(tmp_path, _entry(4711, colour='"red"')))
    assert message.endswith("lock #1 (number 4711): colour: unknown key")


def test_an_unknown_top_level_key_is_refused(tmp_path: Path) -> None:
    message = _refusal(_write(tmp_path, "version = 2\n" + GOOD))
    assert "unknown key 'version'" in message


@pytest.mark.parametrize(("change", "rule"), [
    ({"duration": "12"}, "duration: 12 (1 day) is not a duration of KL1060G3 (ids 0-11)"),
    ({"duration": "19"}, "duration: 19 is not a duration of KL1060G3 (ids 0-11)"),
    ({"model": '"KL9999"'}, "model: Input should be 'KL1060', 'KL1060C2', 'KL1060G3', 'KL1550' or 'K3CONNECT'"),
    ({"id": '"../admin"'}, "id: 1 to 64 letters and digits"),
    ({"members": '["x"]'}, "members.0: Input should be a valid integer, unable to parse string as an integer"),
    ({"members": "[-1]"}, "members.0: Input should be greater than or equal to 0"),
])
def test_an_entry_breaking_a_rule_names_it(tmp_path: Path, change: dict[str, str], rule: str) -> None:
    fields = {"model": '"KL1060G3"', "duration": "1", **change}
    message = _refusal(_write(tmp_path, _entry(4711, **fields)))
    assert message.endswith(f"lock #1 (number 4711): {rule}")


def test_a_lock_number_of_more_than_ten_digits_is_refused(tmp_path: Path) -> None:
    message = _refusal(_write(tmp_path, _entry(12345678901)))
    assert message.endswith("lock #1 (number 12345678901): number: 1 to 10 digits")


def test_a_missing_field_is_named(tmp_path: Path) -> None:
    text = "[[lock]]\nnumber = 4711\nid = \"1\"\nmodel = \"KL1060\"\ntimezone = \"UTC\"\nduration = 0\n"
    assert _refusal(_write(tmp_path, text)).endswith("lock #1 (number 4711): identifier: missing")


def test_the_identifier_is_never_echoed(tmp_path: Path) -> None:
    message = _refusal(_write(tmp_path, _entry(4711, identifier='"secret-451254"')))
    assert message.endswith("identifier: 1 to 64 letters and digits")
    assert "451254" not in message


def test_a_file_too_large_is_refused(tmp_path: Path) -> None:
    text = GOOD + "#" * MAX_LOCKS_FILE_BYTES
    assert "larger than" in _refusal(_write(tmp_path, text))


def test_a_file_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    assert "not TOML" in _refusal(_write(tmp_path, "[[lock]\nnumber = 1\n"))


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    assert "cannot be read" in _refusal(tmp_path / "absent.toml")


def test_the_sample_directory_holds_the_sandbox_locks() -> None:
    locks: LockDirectory = load_locks(SAMPLE_LOCKS_FILE)
    assert {(lock.id, lock.model, lock.identifier) for lock in locks.values()} == {
        (lock.lock_id, lock.model, lock.identifier) for lock in SANDBOX_LOCKS}
