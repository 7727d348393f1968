"""The spoken texts of the fixed prompts, one TOML file per language under `prompts/`.

Asterisk answers a missing sound file exactly as it answers a hang-up, so every prompt the
flow can play must exist in every configured language. The sounds are built from these
texts; `PromptCatalog.problems` is the check that nothing is missing before they are built.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ivr.errors import SettingsError

PROMPT_IDS: tuple[str, ...] = (
    "welcome",
    "dr-notice",
    "system-unavailable",
    "please-wait",
    "choose-language",
    "enter-key-number",
    "enter-pin",
    "invalid-entry",
    "invalid-credentials",
    "too-many-attempts",
    "key-locked",
    "choose-key-holder",
    "choose-member",
    "choose-pod",
    "press",
    "choose-code-type",
    "choose-code-type-netcode",  # not in the contract's list: choose-code-type with 3, lock NetCode
    "not-authorized",
    "press-zero-for-operator",
    "enter-box-number",
    "enter-shackle-code",
    "invalid-box",
    "invalid-shackle",
    "your-update-code-is",
    "your-cbs-code-is",
    "your-netcode-is",
    "enter-lock-number",
    "after-code-menu",
    "after-code-menu-sms",  # not in the contract's list: after-code-menu with 3, by text message
    "sms-sent",
    "sms-unavailable",
    "transferring",
    "goodbye",
    "identify-enter-key-number",
    "identify-result-intro",
    "identify-menu",
    "unknown-key",
    "announce-menu",  # not in the contract's list: the announce route's "press 1 to hear it again"
)
"""The prompt ids of the call-flow contract, in its order; each is `sounds/<lang>/keybox/<id>.wav`."""


def default_prompts_dir() -> Path:
    """The repository's `prompts/` folder, so tools and tests need no path setting to find it.

    `ivr/prompts` is a link to it in a checkout and a real folder in an installed wheel (the
    texts ship as package data), so one path serves both; resolved, so messages name `prompts/`.
    """
    return (Path(__file__).resolve().parent / "prompts").resolve()


def _read_language(path: Path) -> dict[str, str]:
    """One language file as prompt id -> text.

    A file that cannot be read as TOML, or a value that is not a quoted text, stops the load
    with one line naming the file: a half-read catalog would build sounds with holes in them.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        # The message of TOMLDecodeError ends with "(at line N, column M)".
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{path}: not valid TOML: the file is not UTF-8 text") from None
    texts: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(value, str):
            raise SettingsError(f'{path}: {key} must be a text in double quotes, like {key} = "..."')
        texts[key] = value
    return texts


@dataclass(frozen=True)
class PromptCatalog:
    """The prompt texts of every language found, as language -> prompt id -> text.

    It holds the files as they are, including unknown keys and empty texts, so that
    `problems` can report them instead of the load hiding them.
    """

    texts: Mapping[str, Mapping[str, str]]

    @classmethod
    def load(cls, directory: Path) -> PromptCatalog:
        """Read every `*.toml` in `directory`; each file's stem is its language, e.g. `en`."""
        if not directory.is_dir():
            raise SettingsError(f"{directory}: the prompts folder does not exist")
        return cls({path.stem: _read_language(path) for path in sorted(directory.glob("*.toml"))})

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages found, in file-name order."""
        return tuple(sorted(self.texts))

    def text(self, prompt_id: str, language: str) -> str:
        """The text of one prompt in one language; `KeyError` names what is missing."""
        try:
            return self.texts[language][prompt_id]
        except KeyError:
            raise KeyError(f"no text for prompt {prompt_id!r} in language {language!r}") from None

    def problems(self) -> list[str]:
        """Every reason the catalog cannot build a complete set of sounds, one sentence each.

        An empty list means every contract prompt has a text in every language found.
        """
        if not self.texts:
            return ["No language file was found, so no prompt has any text."]
        found: list[str] = []
        known = set(PROMPT_IDS)
        for language in self.languages:
            texts = self.texts[language]
            found.extend(
                f"Language {language!r} has no text for prompt {prompt_id!r}."
                for prompt_id in PROMPT_IDS
                if prompt_id not in texts
            )
            for key, value in texts.items():
                if key not in known:
                    found.append(f"Language {language!r} has key {key!r}, which is not a prompt id of the contract.")
                elif not value.strip():
                    found.append(f"Language {language!r} has an empty text for prompt {key!r}.")
        return found
