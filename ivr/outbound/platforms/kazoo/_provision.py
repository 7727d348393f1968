"""The callflows that send numbers to the service's pivot routes: `provision_pivot` makes one (or
finds it made), `pivot_callflows` lists those of an account. What `ivr kazoo provision` and
`ivr kazoo status` do, here so that a test or a deployment script can do it without the CLI.

A callflow is ours when its first module is a `pivot` whose `voice_url` starts with
`{public_url}/kazoo/pivot/`: the route follows, and the secret is the URL's `secret` parameter.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from ivr.errors import PlatformRejectedError
from ivr.outbound.platforms.kazoo._client import Callflow, KazooClient, pivot_flow

__all__ = ["PivotCallflow", "Provisioned", "pivot_callflows", "provision_pivot", "same_number"]


@dataclass(frozen=True)
class Provisioned:
    """What `provision_pivot` did: `created`, `updated` or `unchanged`, and to which callflow."""

    action: str
    callflow_id: str
    name: str


@dataclass(frozen=True)
class PivotCallflow:
    """A callflow whose pivot goes to the service: its route, and the secret its URL carries."""

    callflow_id: str
    name: str
    numbers: tuple[str, ...]
    route: str
    secret: str | None = field(repr=False)


async def provision_pivot(
    client: KazooClient, *, number: str, public_url: str, route: str, secret: str, name: str | None = None,
    replace: bool = False,
) -> Provisioned:
    """Make the callflow of `number` one `pivot` to `{public_url}/kazoo/pivot/{route}` with the
    secret: created, updated, or left as it is. A number held by a callflow that does not pivot to
    `public_url` is refused (`PlatformRejectedError` naming it, in the words of `ivr kazoo
    provision`) unless `replace`."""
    voice_url = f"{public_url}/kazoo/pivot/{route}?{urlencode({'secret': secret})}"
    flow = pivot_flow(voice_url)
    holders = [c for c in await client.callflows() if any(same_number(n, number) for n in c.numbers)]
    if not holders:
        made = await client.create_callflow(name=name or f"keybox {route}", numbers=[number], flow=flow)
        return Provisioned("created", made.callflow_id, made.name)
    try:
        found = await client.callflow(holders[0].callflow_id) or holders[0]
    except ValueError:  # an id the client will not put in a path
        raise PlatformRejectedError(f"Kazoo lists number {number} in a callflow with an unusable id") from None
    current = _pivot_of(found.flow, public_url)
    if current is None and not replace:
        raise PlatformRejectedError(
            f"number {number} belongs to callflow {found.callflow_id} ({_escaped(found.name)[:60]}), "
            "which does not pivot to IVR_PUBLIC_URL: --replace to take it over")
    if current is None and any(not same_number(n, number) for n in found.numbers):
        raise PlatformRejectedError(
            f"callflow {found.callflow_id} also has other numbers "
            f"({_escaped(', '.join(found.numbers))[:120]}): take the number off it in Kazoo first")
    # Ours keeps its name unless told; one taken over gets ours.
    wanted = name or (found.name if current is not None else "") or f"keybox {route}"
    data = (found.flow or {}).get("data") or {}
    if (current is not None and wanted == found.name and data.get("voice_url") == voice_url
            and data.get("req_format") == "kazoo" and str(data.get("method") or "get").lower() == "get"
            and not (found.flow or {}).get("children")):
        return Provisioned("unchanged", found.callflow_id, found.name)
    made = await client.update_callflow(found.callflow_id, name=wanted, numbers=list(found.numbers), flow=flow)
    return Provisioned("updated", made.callflow_id, made.name)


async def pivot_callflows(client: KazooClient, public_url: str, *, limit: int = 200) -> list[PivotCallflow]:
    """The account's callflows whose first module pivots to `public_url` (the first `limit`
    callflows are looked at: a listing carries no flow, each is fetched)."""
    listed = (await client.callflows())[:limit]
    gate = asyncio.Semaphore(8)

    async def fetch(callflow_id: str) -> Callflow | None:
        async with gate:
            try:
                return await client.callflow(callflow_id)
            except ValueError:  # an id the client will not put in a path: not one of ours
                return None

    found = []
    for callflow in await asyncio.gather(*(fetch(c.callflow_id) for c in listed)):
        pivot = _pivot_of(callflow.flow, public_url) if callflow is not None else None
        if callflow is not None and pivot is not None:
            found.append(PivotCallflow(callflow.callflow_id, callflow.name, callflow.numbers, *pivot))
    return found


def _pivot_of(flow: Any, public_url: str) -> tuple[str, str | None] | None:
    """(route, secret) of a flow whose first module pivots to `public_url`; None otherwise."""
    if not isinstance(flow, dict) or flow.get("module") != "pivot" or not isinstance(flow.get("data"), dict):
        return None
    url = flow["data"].get("voice_url")
    base = f"{public_url}/kazoo/pivot/"
    if not isinstance(url, str) or not url.startswith(base):
        return None
    path, _, query = url[len(base):].partition("?")
    secrets_given = [value for key, value in parse_qsl(query) if key == "secret"]
    return _escaped(path)[:40], (secrets_given[0] if secrets_given else None)


def same_number(stored: str, number: str) -> bool:
    """Whether Kazoo's stored callflow number is `number`: Kazoo keeps numbers as its default
    E.164 converters make them (`knm_converter_regex.erl`), e.g. 4155550900 as +14155550900."""
    return _e164(stored) == _e164(number)


def _e164(number: str) -> str:
    if number.startswith("+"):
        return number
    if nanp := re.fullmatch(r"(?:\+?1)?([2-9][0-9]{2}[2-9][0-9]{6})", number):
        return "+1" + nanp.group(1)
    if international := re.fullmatch(r"011(\d{5,})|00(\d{5,})", number):
        return "+" + (international.group(1) or international.group(2))
    return "+" + number if re.fullmatch(r"[2-9]\d{7,}", number) else number


def _escaped(text: str) -> str:
    """`text` with control characters escaped: a name from Kazoo must not drive a terminal."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
