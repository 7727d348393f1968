"""Allow lists of networks (CIDR), shared by every listener that answers only some peers.

`IVR_MEDIA_ALLOW` and `IVR_AGI_ALLOW` are both parsed and matched here, so both read and
behave the same.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str | Iterable[str]) -> tuple[Network, ...]:
    """Networks from `"10.0.0.0/8, ::1/128"` (or a list of entries); a bare address is a /32 or /128.

    Raises `ValueError` naming the first bad entry. Host bits set (`10.0.0.1/8`) are refused:
    such an entry is usually a typo.
    """
    parts = value.split(",") if isinstance(value, str) else value
    networks: list[Network] = []
    for part in parts:
        entry = part.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry))
        except ValueError:
            raise ValueError(f"{entry!r} is not a network in CIDR notation, e.g. 10.0.0.0/8 or ::1/128") from None
    return tuple(networks)


def is_loopback(host: str) -> bool:
    """Whether a listener on `host` is reachable from this machine only: ``localhost``,
    127.0.0.0/8 or ``::1``. Anything else (``0.0.0.0``, ``::``, another address, a host name that
    might resolve anywhere) reaches beyond it."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def allowed(networks: Iterable[Network], peer_host: str | None) -> bool:
    """Whether `peer_host` (an address as a socket reports it) is in one of `networks`.

    An IPv4-mapped IPv6 peer (`::ffff:10.0.0.5`, seen on dual-stack sockets) matches IPv4
    entries. Anything that is not an address (None, a Unix socket path) is not allowed.
    """
    if not peer_host:
        return False
    try:
        address = ipaddress.ip_address(peer_host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)
