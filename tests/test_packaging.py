"""The project as a newcomer meets it: the README's set-up commands, and the package built as a wheel.

A wheel is what `pip install .` installs; the prompt texts must travel inside it, or `ivr demo`,
`ivr call` and `ivr prompts build` have nothing to say once installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ivr.backends.kimvoice.sandbox import update_code_for

ROOT = Path(__file__).resolve().parents[1]


def _fresh_machine_commands() -> list[str]:
    """The shell commands of the README's "Set-up on a fresh machine" section, in order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Set-up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S)]


def test_the_readme_gives_two_commands_one_demo_one_tests() -> None:
    commands = _fresh_machine_commands()
    assert len(commands) == 2, commands
    demo, tests = commands
    assert "\n" not in demo and demo.endswith("ivr demo")
    assert "\n" not in tests and tests.endswith("-m pytest")
    for command in commands:
        # PEP 668: a stock Debian or Ubuntu refuses `pip install` into the system Python.
        assert "python3 -m venv .venv" in command
        assert "python3 -m pip" not in command


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    commands = [line for line in lines if line and not line.startswith(("#", "set ", "cd "))]
    assert commands == [_fresh_machine_commands()[1]]


def _outer_site_dirs() -> list[str]:
    """Where this interpreter finds installed distributions: the wheel's dependencies are there."""
    return [entry for entry in sys.path if entry.endswith(("site-packages", "dist-packages"))]


def test_ivr_demo_from_an_installed_wheel(tmp_path: Path) -> None:
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "ivr", source / "ivr", symlinks=True, ignore=ignore)
    shutil.copytree(ROOT / "prompts", source / "prompts", ignore=ignore)
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("keybox_ivr-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    # The dependencies come from this environment, after the venv's own packages: no network.
    Path(purelib, "outer-environment.pth").write_text("\n".join(_outer_site_dirs()) + "\n")
    installed = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                               capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "IVR_DATA_DIR": str(tmp_path / "data")}
    where = subprocess.run([str(python), "-c", "from ivr.catalog import default_prompts_dir as d; print(d())"],
                           capture_output=True, text=True, cwd=elsewhere, env=env, timeout=60)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout + where.stderr

    before = datetime.now(UTC)
    demo = subprocess.run([str(venv / "bin" / "ivr"), "demo"], capture_output=True, text=True, cwd=elsewhere,
                          env=env, timeout=120)
    assert demo.returncode == 0, demo.stderr
    assert "Traceback" not in demo.stderr
    days = {(before + timedelta(seconds=s)).date().isoformat() for s in (0, 120)}
    spoken = {" ".join(update_code_for(123456, 5001, 5001, 1, day)) for day in days}
    assert any(f"[digits] {code}" in demo.stdout for code in spoken), demo.stdout
    assert "update_code_read" in demo.stdout


def _program(path: Path, script: str) -> None:
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(0o755)


def test_install_system_packages_adds_the_venv_module_where_debian_left_it_out(tmp_path: Path) -> None:
    """Debian's python3 without python3.X-venv: `python3 -m venv` fails, so the script installs it.

    apt-get is a stand-in that writes down what it was asked: the test must not change the machine.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    for name in ("espeak-ng", "sox"):
        _program(bin_dir / name, "exit 0")
    _program(bin_dir / "python3", f'case "$*" in *ensurepip*) exit 1;; esac\nexec "{sys.executable}" "$@"')
    _program(bin_dir / "apt-get", f'echo "$*" >> "{log}"')
    _program(bin_dir / "sudo", 'exec "$@"')
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["sh", str(ROOT / "scripts" / "install-system-packages")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    version = "{}.{}".format(*sys.version_info[:2])
    assert f"installing: python{version}-venv" in done.stderr
    assert log.read_text().splitlines()[-1] == f"install -y -qq python{version}-venv"

    # With the venv module present, nothing to do and apt-get is not called.
    _program(bin_dir / "python3", f'exec "{sys.executable}" "$@"')
    log.unlink()
    again = subprocess.run(["sh", str(ROOT / "scripts" / "install-system-packages")], env=env,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and again.stderr == ""
    assert not log.exists()
