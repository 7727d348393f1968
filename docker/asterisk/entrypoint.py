#!/usr/bin/env python3
"""Start Asterisk on the line's configuration: render it, link the sounds, exec asterisk.

What it does, in order (the asterisk container of docker-compose.yml runs it as its entrypoint):

1. Renders every `*.conf` of the template folder (`asterisk-conf/`, mounted read-only at
   KEYBOX_CONF_TEMPLATES) into KEYBOX_CONF_OUT (`/etc/asterisk`, a tmpfs: the rendered secrets
   never reach a disk). A placeholder is `${NAME}` (upper case, digits, `_`) outside a `;`
   comment; it is replaced by the environment variable NAME. The start is refused, with one
   line naming each variable (never its value), when a placeholder's variable is unset or
   empty, when a password or secret (a name ending in _PASSWORD or _SECRET) is shorter than 12
   characters or a well-known default, or when a value holds a character that would end the
   configuration line (newline, `;`).
2. Copies the dialplan folder (`dialplans/`, KEYBOX_DIALPLANS) to KEYBOX_CONF_OUT/dialplans
   as it is: Asterisk's own `${EXTEN}`-style variables there are not placeholders.
3. Links each language's prompt sounds, built by `ivr prompts build --out DIR` as
   `DIR/<lang>/keybox/<id>.wav` (DIR mounted at KEYBOX_PROMPTS), into Asterisk's sound folder
   as `<sounds>/<lang>/keybox`, so `STREAM FILE keybox/welcome` finds them in the channel's
   language.
4. Removes the placeholder variables from the environment (Asterisk and the AGI programs it
   starts never see them) and execs Asterisk with the arguments given, or the default ones.

Python 3.11+ standard library only: it runs on the image's own python3.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
SECRET_SUFFIXES = ("_PASSWORD", "_SECRET")
MIN_SECRET_LENGTH = 12
WELL_KNOWN = frozenset({
    "password", "secret", "changeme", "change-me", "admin", "asterisk", "123456789012",
    "passwordpassword", "mysecret", "amp111", "1234", "12345678",
})
FORBIDDEN = ("\n", "\r", "\0", ";")
DEFAULT_COMMAND = ("/usr/sbin/asterisk", "-f", "-n", "-T")
"""Foreground (the container's process), no colours, timestamps. Never `-d`: at debug level
Asterisk logs every key a caller presses (PINs). Never `-v`: at verbose level 3 it logs every
digit file it plays, spelling out the codes read to callers (asterisk-conf/logger.conf)."""
DEFAULT_LANGUAGES = ("en", "fr", "es")


class RefusedToStart(Exception):
    """The configuration cannot be rendered; the message names what is wrong, never a value."""


def _code_and_comment(line: str) -> tuple[str, str]:
    """Split a configuration line at its first unescaped `;` (Asterisk's comment start)."""
    escaped = False
    for index, char in enumerate(line):
        if char == ";" and not escaped:
            return line[:index], line[index:]
        escaped = char == "\\" and not escaped
    return line, ""


def placeholders(text: str) -> list[str]:
    """The placeholder names of a configuration text, in order, comments left out."""
    found: list[str] = []
    for line in text.splitlines():
        code, _ = _code_and_comment(line)
        found.extend(PLACEHOLDER.findall(code))
    return found


def problems(names: Iterable[str], env: Mapping[str, str]) -> list[str]:
    """Why the values of `names` in `env` cannot go into the configuration, one line each."""
    found: list[str] = []
    for name in sorted(set(names)):
        value = env.get(name, "")
        if not value:
            found.append(f"{name} is not set (see asterisk.env.example)")
            continue
        if any(char in value for char in FORBIDDEN):
            found.append(f"{name} holds a newline or ';', which would end the configuration line")
        if name.endswith(SECRET_SUFFIXES):
            if len(value) < MIN_SECRET_LENGTH:
                found.append(f"{name} is shorter than {MIN_SECRET_LENGTH} characters")
            elif value.lower() in WELL_KNOWN:
                found.append(f"{name} is a well-known default")
    return found


def render_text(text: str, env: Mapping[str, str]) -> str:
    """`text` with every placeholder outside comments replaced by its value from `env`."""
    lines = []
    for line in text.splitlines(keepends=True):
        code, comment = _code_and_comment(line)
        lines.append(PLACEHOLDER.sub(lambda match: env[match.group(1)], code) + comment)
    return "".join(lines)


def render(templates: Path, out: Path, env: Mapping[str, str]) -> list[str]:
    """Render every `*.conf` of `templates` into `out`; return the placeholder names used.

    Raises `RefusedToStart` (nothing written) when a value is missing or unfit.
    """
    sources = sorted(templates.glob("*.conf"))
    if not sources:
        raise RefusedToStart(f"no *.conf in {templates}: is asterisk-conf/ mounted there?")
    texts = {source.name: source.read_text(encoding="utf-8") for source in sources}
    names = [name for text in texts.values() for name in placeholders(text)]
    wrong = problems(names, env)
    if wrong:
        raise RefusedToStart("; ".join(wrong))
    out.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        target = out / name
        target.write_text(render_text(text, env), encoding="utf-8")
        target.chmod(0o600)
    return sorted(set(names))


def copy_dialplans(source: Path, out: Path) -> None:
    """Copy `source/*.conf` to `out/dialplans/`, untouched."""
    target = out / "dialplans"
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.conf")):
        shutil.copyfile(path, target / path.name)


def link_prompts(prompts: Path, sounds: Path, languages: Iterable[str]) -> list[Path]:
    """Make `<sounds>/<lang>/keybox` a link to `<prompts>/<lang>/keybox` for each language
    (the built ones and `languages`); a link to a folder not built yet is made all the same."""
    built = {path.parent.name for path in prompts.glob("*/keybox") if path.is_dir()}
    made = []
    for language in sorted(built | set(languages)):
        link = sounds / language / "keybox"
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.is_dir():
            shutil.rmtree(link)
        link.symlink_to(prompts / language / "keybox", target_is_directory=True)
        made.append(link)
    return made


def missing_core_sounds(sounds: Path, languages: Iterable[str]) -> list[str]:
    """The languages without Asterisk's digits (SAY DIGITS would be silent in them)."""
    return [lang for lang in languages if not any((sounds / lang / "digits").glob("1.*"))]


def main(argv: list[str]) -> None:
    env = os.environ
    templates = Path(env.get("KEYBOX_CONF_TEMPLATES", "/etc/keybox/asterisk-conf"))
    dialplans = Path(env.get("KEYBOX_DIALPLANS", "/etc/keybox/dialplans"))
    out = Path(env.get("KEYBOX_CONF_OUT", "/etc/asterisk"))
    prompts = Path(env.get("KEYBOX_PROMPTS", "/var/lib/keybox-prompts"))
    sounds = Path(env.get("KEYBOX_SOUNDS", "/var/lib/asterisk/sounds"))
    languages = env.get("KEYBOX_LANGUAGES", " ".join(DEFAULT_LANGUAGES)).replace(",", " ").split()
    try:
        used = render(templates, out, env)
    except RefusedToStart as exc:
        print(f"keybox-asterisk: refusing to start: {exc}", file=sys.stderr)
        sys.exit(78)  # EX_CONFIG
    copy_dialplans(dialplans, out)
    for link in link_prompts(prompts, sounds, languages):
        if not link.exists():
            print(f"keybox-asterisk: {link} points at {os.readlink(link)}, not built yet", file=sys.stderr)
    for language in missing_core_sounds(sounds, languages):
        print(f"keybox-asterisk: no digits in {sounds / language}: codes would not be heard in {language}",
              file=sys.stderr)
    clean = {key: value for key, value in env.items() if key not in used}
    command = argv or list(DEFAULT_COMMAND)
    print(f"keybox-asterisk: configuration rendered in {out}; starting {' '.join(command)}", file=sys.stderr)
    sys.stderr.flush()
    os.execve(command[0], command, clean)


if __name__ == "__main__":
    main(sys.argv[1:])
