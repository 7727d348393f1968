"""Stasis() without a route, an ARI-only case (the other route tests run over both transports in tests/e2e)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.records import Outcome

if TYPE_CHECKING:
    from support.line import MakeLine


async def test_stasis_without_a_route_is_the_keybox_route(make_ari_line: MakeLine) -> None:
    async with make_ari_line() as line:
        call = await line.call("123456#2580#19", route=None)
    assert call.record.route == "keybox"
    assert call.record.outcome is Outcome.UPDATE_CODE_READ
