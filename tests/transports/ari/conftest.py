"""`make_ari_line`: a whole phone line over ARI on loopback (see `support.line`), for the tests
that concern ARI alone (the branch tests run over both transports in tests/e2e)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from support.line import Line, MakeLine, running_line

from ivr.backends.kimvoice.sandbox import Knobs


@pytest.fixture
def make_ari_line(tmp_path: Path) -> MakeLine:
    """`async with make_ari_line(knobs, operator="") as line:` for a line over ARI."""

    def make(knobs: Knobs | None = None, **settings: Any) -> AbstractAsyncContextManager[Line]:
        return running_line(tmp_path, knobs, transport="ari", **settings)

    return make
