"""The `line` fixture: a whole phone line on loopback (see `support.line`), once over FastAGI
(``agi``), once over ARI (``ari``) and once over Kazoo Pivot (``pivot``): every test that takes
`line` or `make_line` runs over all three."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from support.line import TRANSPORTS, Line, MakeLine, Transport, running_line

from ivr.backends.kimvoice.sandbox import Knobs


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> Transport:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def line(tmp_path: Path, transport: Transport) -> AsyncIterator[Line]:
    async with running_line(tmp_path, transport=transport) as running:
        yield running


@pytest.fixture
def make_line(tmp_path: Path, transport: Transport) -> MakeLine:
    """`async with make_line(knobs, operator="") as line:` for a line with other settings, over
    the test's transport (the same data directory each time: a restart keeps the database)."""

    def make(knobs: Knobs | None = None, **settings: Any) -> AbstractAsyncContextManager[Line]:
        return running_line(tmp_path, knobs, transport=transport, **settings)

    return make
