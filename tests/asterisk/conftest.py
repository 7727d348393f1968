"""Load the Asterisk configuration reader (`astconf.py`) and the container entrypoint
(`docker/asterisk/entrypoint.py`) as modules: the test files of this folder import them by name.

Neither folder is a package on the import path, so they are loaded from their files, once.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path) -> None:
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


_load("astconf", Path(__file__).with_name("astconf.py"))
_load("keybox_asterisk_entrypoint", ROOT / "docker" / "asterisk" / "entrypoint.py")
