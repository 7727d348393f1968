"""A secret of this installation, kept in the data directory and never sent anywhere.

File names and database keys derived from caller input (a TTS render's text, a key number
that may hold a PIN) are keyed digests of it: without this key nobody can tell from a name
what it stands for, nor test a guess against it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEY_FILE = "install.key"
_KEY_BYTES = 32


def install_key(data_dir: Path) -> bytes:
    """The installation's key, made (0600) on first use; the same one on every later start.

    Two processes starting at once both end up with the first one written (`O_EXCL`).
    """
    path = data_dir / KEY_FILE
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(_KEY_BYTES)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return install_key(data_dir)
        with os.fdopen(fd, "wb") as file:
            file.write(key)
        return key
    if len(key) != _KEY_BYTES:
        raise ValueError(f"{path} is not a key of this installation ({len(key)} bytes, expected {_KEY_BYTES})")
    return key


def keyed_digest(key: bytes, text: str, length: int = 32) -> str:
    """HMAC-SHA256 of `text` under `key`, as `length` hex digits."""
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:length]
