"""docker-compose.yml and the Dockerfile, checked statically (no Docker engine on CI)."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
import yaml

from ivr.cli import cli

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_the_test_profile() -> None:
    services = COMPOSE["services"]
    assert set(services) >= {"kimvoice", "ivr", "sim"}
    assert services["sim"]["profiles"] == ["test"]
    assert "profiles" not in services["ivr"] and "profiles" not in services["kimvoice"]


@pytest.mark.parametrize("name", ["kimvoice", "ivr", "sim"])
def test_each_command_is_a_real_ivr_command(name: str) -> None:
    command = COMPOSE["services"][name]["command"]
    with click.Context(cli) as ctx:
        sub = cli.get_command(ctx, command[0])
        assert sub is not None, f"{name}: no `ivr {command[0]}`"
        sub.make_context(command[0], list(command[1:]), parent=ctx)  # raises on an unknown option


def test_services_reach_each_other_by_name() -> None:
    services = COMPOSE["services"]
    assert services["ivr"]["environment"]["IVR_KIMVOICE_URL"] == "http://kimvoice:8081"
    assert "ivr:4573" in services["sim"]["command"]
    for name, service in services.items():
        assert set(service.get("depends_on", [])) <= set(services), name
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this host"


def test_dockerfile_installs_what_the_image_runs() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for copied in ("pyproject.toml", "ivr", "prompts"):
        assert f"COPY {copied}" in dockerfile
        assert (ROOT / copied).exists()
    assert 'ENTRYPOINT ["ivr"]' in dockerfile
