"""The shipped prompt texts cover the contract, and the check that says so can fail."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from ivr.catalog import PROMPT_IDS, PromptCatalog, default_prompts_dir
from ivr.errors import SettingsError

SHIPPED_LANGUAGES = ("en", "fr", "es")


@pytest.fixture(scope="module")
def shipped() -> PromptCatalog:
    return PromptCatalog.load(default_prompts_dir())


def test_contract_and_our_three_make_38_distinct_prompt_ids() -> None:
    """The contract's 35, the announce route's menu, and the two menus that offer a third
    choice (a NetCode, a text message) only where that backend is configured."""
    assert len(PROMPT_IDS) == 38
    assert len(set(PROMPT_IDS)) == 38
    assert PROMPT_IDS[-1] == "announce-menu"
    assert PROMPT_IDS.index("choose-code-type-netcode") == PROMPT_IDS.index("choose-code-type") + 1
    assert PROMPT_IDS.index("after-code-menu-sms") == PROMPT_IDS.index("after-code-menu") + 1


def test_shipped_catalog_has_no_problems(shipped: PromptCatalog) -> None:
    assert shipped.problems() == []
    assert set(SHIPPED_LANGUAGES) <= set(shipped.languages)


@pytest.mark.parametrize("language", SHIPPED_LANGUAGES)
@pytest.mark.parametrize("prompt_id", PROMPT_IDS)
def test_shipped_prompt_has_text(shipped: PromptCatalog, prompt_id: str, language: str) -> None:
    assert shipped.text(prompt_id, language).strip()


@pytest.mark.parametrize("language", SHIPPED_LANGUAGES)
def test_shipped_file_lists_ids_in_contract_order(language: str) -> None:
    path = default_prompts_dir() / f"{language}.toml"
    assert tuple(tomllib.loads(path.read_text(encoding="utf-8"))) == PROMPT_IDS


def _write_complete(directory: Path, language: str) -> None:
    lines = [f'{prompt_id} = "text of {prompt_id}"' for prompt_id in PROMPT_IDS]
    (directory / f"{language}.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_problems_reports_missing_unknown_and_empty(tmp_path: Path) -> None:
    _write_complete(tmp_path, "en")
    kept = [prompt_id for prompt_id in PROMPT_IDS if prompt_id not in ("goodbye", "welcome")]
    lines = [f'{prompt_id} = "texte"' for prompt_id in kept if prompt_id != "press"]
    lines += ['press = "  "', 'good-bye = "Au revoir."']
    (tmp_path / "fr.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")

    catalog = PromptCatalog.load(tmp_path)

    assert catalog.languages == ("en", "fr")
    problems = catalog.problems()
    assert len(problems) == 4, problems
    assert any("'fr'" in p and "'goodbye'" in p and "no text" in p for p in problems)
    assert any("'fr'" in p and "'welcome'" in p and "no text" in p for p in problems)
    assert any("'fr'" in p and "'good-bye'" in p and "not a prompt id" in p for p in problems)
    assert any("'fr'" in p and "'press'" in p and "empty" in p for p in problems)


def test_problems_reports_an_empty_folder(tmp_path: Path) -> None:
    assert PromptCatalog.load(tmp_path).problems() != []


def test_text_of_a_missing_prompt_names_it(tmp_path: Path) -> None:
    _write_complete(tmp_path, "en")
    with pytest.raises(KeyError, match=r"'welcome'.*'de'"):
        PromptCatalog.load(tmp_path).text("welcome", "de")


def test_malformed_toml_raises_settings_error_naming_file_and_line(tmp_path: Path) -> None:
    _write_complete(tmp_path, "en")
    (tmp_path / "fr.toml").write_text('welcome = "Bienvenue."\ngoodbye "Au revoir."\n', encoding="utf-8")

    with pytest.raises(SettingsError) as caught:
        PromptCatalog.load(tmp_path)

    message = str(caught.value)
    assert "fr.toml" in message
    assert "line 2" in message
    assert "\n" not in message


def test_a_value_that_is_not_text_raises_settings_error(tmp_path: Path) -> None:
    (tmp_path / "es.toml").write_text("welcome = 1\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"es\.toml.*welcome"):
        PromptCatalog.load(tmp_path)


def test_missing_folder_raises_settings_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        PromptCatalog.load(tmp_path / "nowhere")
