"""The `line` fixture: a whole phone line on loopback (see `support.line`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.line import Line, running_line


@pytest.fixture
async def line(tmp_path: Path) -> AsyncIterator[Line]:
    async with running_line(tmp_path) as running:
        yield running
