"""docker/asterisk/entrypoint.py: secrets from the environment into /etc/asterisk, or no start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import astconf
import keybox_asterisk_entrypoint as entrypoint
import pytest

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "asterisk-conf"
DIALPLANS = ROOT / "dialplans"
SCRIPT = ROOT / "docker" / "asterisk" / "entrypoint.py"


def full_env() -> dict[str, str]:
    names = astconf.env_names((CONF / "asterisk.env.example").read_text())
    return {name: f"{name.lower()}-Xq7-long-enough" for name in names} | {"LINE_EXTERNAL_ADDRESS": "192.0.2.10"}


def test_renders_the_real_configuration(tmp_path: Path) -> None:
    env = full_env()
    used = entrypoint.render(CONF, tmp_path, env)
    assert set(used) >= {"QA1_PASSWORD", "AMI_SECRET", "ARI_PASSWORD", "LINE_EXTERNAL_ADDRESS"}
    for path in tmp_path.glob("*.conf"):
        assert entrypoint.placeholders(path.read_text()) == [], path.name
        assert path.stat().st_mode & 0o777 == 0o600, path.name
    pjsip = astconf.parse((tmp_path / "pjsip.conf").read_text(), "pjsip.conf")
    auths = {s.name: s.get("password") for s in pjsip.of_type("auth")}
    assert auths["qa1-auth"] == env["QA1_PASSWORD"] and auths["agent2-auth"] == env["AGENT2_PASSWORD"]
    assert {s.get("external_media_address") for s in pjsip.of_type("transport")} == {"192.0.2.10"}
    assert sorted(p.name for p in tmp_path.glob("*.conf")) == sorted(p.name for p in CONF.glob("*.conf"))


def test_placeholders_in_comments_are_left_alone() -> None:
    text = "; uses ${NOT_A_PLACEHOLDER}\npassword = ${REAL_PASSWORD} ; or ${ALSO_NOT}\nkey = a\\;${X}\n"
    assert entrypoint.placeholders(text) == ["REAL_PASSWORD", "X"]
    rendered = entrypoint.render_text(text, {"REAL_PASSWORD": "p", "X": "x"})
    assert rendered == "; uses ${NOT_A_PLACEHOLDER}\npassword = p ; or ${ALSO_NOT}\nkey = a\\;x\n"


@pytest.mark.parametrize(("change", "message"), [
    ({"QA1_PASSWORD": ""}, "QA1_PASSWORD is not set"),
    ({"ARI_PASSWORD": "Qz8-x1"}, "ARI_PASSWORD is shorter than 12"),
    ({"AMI_SECRET": "PasswordPassword"}, "AMI_SECRET is a well-known default"),
    ({"AGENT1_PASSWORD": "long-enough;but-ends-the-line"}, "AGENT1_PASSWORD holds a newline or ';'"),
    ({"LINE_EXTERNAL_ADDRESS": ""}, "LINE_EXTERNAL_ADDRESS is not set"),
])
def test_refuses_a_missing_or_weak_value(tmp_path: Path, change: dict[str, str], message: str) -> None:
    env = full_env() | change
    with pytest.raises(entrypoint.RefusedToStart) as caught:
        entrypoint.render(CONF, tmp_path / "out", env)
    assert message in str(caught.value)
    for value in change.values():
        if value:
            assert value not in str(caught.value), "a refused value must never be printed"
    assert not (tmp_path / "out").exists(), "nothing is written when the start is refused"


def test_an_unset_variable_is_refused_too(tmp_path: Path) -> None:
    env = full_env()
    del env["QA2_PASSWORD"]
    with pytest.raises(entrypoint.RefusedToStart, match="QA2_PASSWORD is not set"):
        entrypoint.render(CONF, tmp_path, env)


def test_dialplans_are_copied_untouched(tmp_path: Path) -> None:
    entrypoint.copy_dialplans(DIALPLANS, tmp_path)
    for path in DIALPLANS.glob("*.conf"):
        assert (tmp_path / "dialplans" / path.name).read_text() == path.read_text()
    assert "${IVR_TRANSFER}" in (tmp_path / "dialplans" / "keybox-operator.conf").read_text()


def test_links_each_languages_prompts(tmp_path: Path) -> None:
    prompts, sounds = tmp_path / "prompts", tmp_path / "sounds"
    (prompts / "fr" / "keybox").mkdir(parents=True)
    (prompts / "fr" / "keybox" / "welcome.wav").write_bytes(b"RIFF")
    (prompts / "de" / "keybox").mkdir(parents=True)
    (sounds / "en" / "keybox").mkdir(parents=True)  # a stale folder is replaced by the link
    made = entrypoint.link_prompts(prompts, sounds, ["en", "fr"])
    assert sorted(p.parent.name for p in made) == ["de", "en", "fr"]
    assert (sounds / "fr" / "keybox" / "welcome.wav").read_bytes() == b"RIFF"
    assert os.readlink(sounds / "en" / "keybox") == str(prompts / "en" / "keybox")
    entrypoint.link_prompts(prompts, sounds, ["en"])  # a second start replaces the links
    assert (sounds / "fr" / "keybox").is_symlink()


def test_names_the_languages_without_digits(tmp_path: Path) -> None:
    (tmp_path / "en" / "digits").mkdir(parents=True)
    (tmp_path / "en" / "digits" / "1.ulaw").write_bytes(b"x")
    (tmp_path / "fr" / "digits").mkdir(parents=True)
    assert entrypoint.missing_core_sounds(tmp_path, ["en", "fr", "es"]) == ["fr", "es"]


def _run(tmp_path: Path, env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    paths = {
        "KEYBOX_CONF_TEMPLATES": str(CONF), "KEYBOX_DIALPLANS": str(DIALPLANS),
        "KEYBOX_CONF_OUT": str(tmp_path / "etc"), "KEYBOX_PROMPTS": str(tmp_path / "prompts"),
        "KEYBOX_SOUNDS": str(tmp_path / "sounds"), "PATH": os.environ.get("PATH", ""),
    }
    return subprocess.run([sys.executable, str(SCRIPT), *command], env=paths | env, capture_output=True,
                          text=True, timeout=30, check=False)


def test_starts_the_command_without_the_secrets_in_its_environment(tmp_path: Path) -> None:
    env = full_env()
    done = _run(tmp_path, env, sys.executable, "-c", "import os, json; print(json.dumps(dict(os.environ)))")
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    used = {name for path in CONF.glob("*.conf") for name in entrypoint.placeholders(path.read_text())}
    assert used and not set(seen) & used, "Asterisk and its AGI programs never see the secrets"
    assert (tmp_path / "etc" / "dialplans" / "keybox-public.conf").is_file()
    assert (tmp_path / "sounds" / "es" / "keybox").is_symlink()
    for value in env.values():
        assert value not in done.stderr


def test_a_refused_start_exits_78_and_names_the_variable(tmp_path: Path) -> None:
    env = full_env() | {"AMI_SECRET": ""}
    done = _run(tmp_path, env, "/bin/true")
    assert done.returncode == 78
    assert "refusing to start" in done.stderr and "AMI_SECRET is not set" in done.stderr
    assert not (tmp_path / "etc").exists()
