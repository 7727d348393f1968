"""CIDR allow lists, as `IVR_MEDIA_ALLOW` and `IVR_AGI_ALLOW` read them and peers are matched."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network

import pytest

from ivr.netallow import allowed, is_loopback, parse_networks


def test_a_list_is_read_with_spaces_and_empty_entries_and_bare_addresses() -> None:
    assert parse_networks(" 10.0.0.0/8, ,::1/128,192.168.1.7 ,") == (
        IPv4Network("10.0.0.0/8"), IPv6Network("::1/128"), IPv4Network("192.168.1.7/32"))
    assert parse_networks(["172.28.73.0/24"]) == (IPv4Network("172.28.73.0/24"),)


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "asterisk.local", "10.0.0.1/8", "::1/129", "10.0.0/8"])
def test_a_bad_entry_is_named_in_the_error(entry: str) -> None:
    with pytest.raises(ValueError, match=f"'{entry}' is not a network in CIDR notation"):
        parse_networks(f"127.0.0.0/8,{entry}")


@pytest.mark.parametrize(("peer", "expected"), [
    ("10.1.2.3", True),
    ("11.1.2.3", False),
    ("::1", True),
    ("::2", False),
    ("::ffff:10.1.2.3", True),  # IPv4-mapped, as a dual-stack socket reports an IPv4 peer
    ("::ffff:11.1.2.3", False),
    ("fe80::1%eth0", False),
    (None, False),
    ("", False),
    ("/run/ivr.sock", False),
])
def test_a_peer_is_matched_ipv4_mapped_included(peer: str | None, expected: bool) -> None:
    assert allowed(parse_networks("10.0.0.0/8,::1/128"), peer) is expected


def test_an_ipv6_entry_with_a_scoped_peer() -> None:
    assert allowed(parse_networks("fe80::/10"), "fe80::1%eth0")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "10.0.0.5", "172.28.73.2", "fe80::1", "ivr.example.com", "::ffff:0.0.0.0"]
)
def test_hosts_beyond_loopback(host: str) -> None:
    assert not is_loopback(host)
