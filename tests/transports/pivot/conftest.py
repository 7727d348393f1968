"""`make_pivot_line` and `pivot_line`: the service over Kazoo Pivot on loopback (`support.pivot_line`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from support.pivot_line import MakePivotLine, PivotLine, running_pivot_line

from ivr.backends.kimvoice.sandbox import Knobs


@pytest.fixture
def make_pivot_line(tmp_path: Path) -> MakePivotLine:
    def make(knobs: Knobs | None = None, **settings: Any) -> AbstractAsyncContextManager[PivotLine]:
        return running_pivot_line(tmp_path, knobs, **settings)

    return make


@pytest.fixture
async def pivot_line(make_pivot_line: MakePivotLine) -> AsyncIterator[PivotLine]:
    async with make_pivot_line() as line:
        yield line
