"""docker-compose.yml and the Dockerfiles, checked statically (no Docker engine on CI).

The compose file is validated against the Compose Specification's JSON schema (the copy that
check-jsonschema ships, so no network is needed), then structurally: every image pinned, every
command a real `ivr` command, only loopback or the line's SIP/RTP published, AMI and ARI never
published, every volume declared and every bind mount present in the repository, the test
profile's simulated peers where the header says, and what each container of the `ivr` image is
handed valid settings.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from ivr.backends.codelocks.sandbox import SAMPLE_LOCKS_FILE
from ivr.cli import cli
from ivr.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
IVR_IMAGE_SERVICES = [name for name, s in SERVICES.items() if s.get("build") == "."]

AMI_PORT, ARI_PORT = 5038, 8088
SIP_PORT, RTP_RANGE = 5060, (10000, 10099)


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}` and `$$`, with `env` (default: empty)."""
    env = env or {}

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, default = match.group(1), match.group(2), match.group(3) or ""
        value = env.get(name)
        if (op == ":-" and not value) or (op == "-" and value is None):
            return default
        return value or ""

    return re.sub(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}", one, value)


def published(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(host address, host ports, container ports/protocol) of each `ports` entry, defaults applied."""
    rows = []
    for port in service.get("ports", []):
        text = interpolate(port)
        container = text.rsplit(":", 1)[1]
        host_ip, _, host_port = text.rsplit(":", 1)[0].rpartition(":")
        rows.append((host_ip, host_port, container if "/" in container else f"{container}/tcp"))
    return rows


def dockerfile_of(service: dict[str, Any]) -> Path:
    build = service["build"]
    context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
    return context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")


# -- the compose file as a whole ------------------------------------------------------------------


def test_the_compose_file_follows_the_compose_specification() -> None:
    pytest.importorskip("check_jsonschema", reason="the Compose schema comes with check-jsonschema (dev extra)")
    import jsonschema

    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(COMPOSE), key=lambda e: list(e.path))
    assert [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors] == []


TEST_PROFILE = ("sim", "asterisk-sim", "ictcore", "kazoo", "kimoby", "codelocks")


def test_services_and_the_test_profile() -> None:
    assert set(SERVICES) == {"kimvoice", "prompts", "ivr", "asterisk", *TEST_PROFILE}
    for name in TEST_PROFILE:
        assert SERVICES[name]["profiles"] == ["test"], name
    for name in ("kimvoice", "prompts", "ivr", "asterisk"):
        assert "profiles" not in SERVICES[name], name


# -- images ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_image_is_pinned_by_tag(name: str) -> None:
    service = SERVICES[name]
    images = [service["image"]] if "image" in service and "build" not in service else []
    if "build" in service:
        dockerfile = dockerfile_of(service)
        assert dockerfile.is_file(), f"{name}: {dockerfile} is missing"
        images += re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), re.MULTILINE)
    assert images, name
    for image in images:
        repository, _, tag = image.rpartition("@")[0].rpartition(":") if "@" in image else image.rpartition(":")
        assert repository and tag and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image} is not pinned"


def test_asterisk_is_an_exact_release_of_a_maintained_image() -> None:
    dockerfile = dockerfile_of(SERVICES["asterisk"]).read_text()
    (base,) = re.findall(r"^FROM\s+(\S+)", dockerfile, re.MULTILINE)
    repository, tag = base.split(":")
    assert repository == "andrius/asterisk"
    assert re.fullmatch(r"(20|22)\.\d+\.\d+_debian-\w+", tag), f"{tag} does not name one Asterisk 20/22 release"
    assert SERVICES["asterisk"]["image"].endswith(":" + tag.split("_")[0])


def test_the_asterisk_image_has_its_sounds_and_scripts() -> None:
    dockerfile = dockerfile_of(SERVICES["asterisk"])
    text = dockerfile.read_text()
    for copied in ("ivr-agi", "entrypoint.py"):
        assert re.search(rf"^COPY {re.escape(copied)} ", text, re.MULTILINE), copied
        assert (dockerfile.parent / copied).is_file()
    # Asterisk's sounds come from Debian's packages (apt verifies them), never from a URL.
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    installs = re.findall(r"apt-get install ([^;&]+)", code)
    assert len(installs) == 1, installs
    packages = set(installs[0].replace("\\", " ").split()) - {"-y", "--no-install-recommends"}
    wanted = {f"asterisk-core-sounds-{lang}{kind}" for lang in ("en", "fr", "es") for kind in ("", "-wav")}
    assert packages == wanted | {"asterisk-moh-opsound-wav"}
    assert not re.search(r"\b(curl|wget)\b|https?://", code), "no download by URL"
    assert "rm -rf /var/lib/apt/lists/*" in code
    for language in ("en", "fr", "es"):  # Asterisk reads sounds from <astdatadir>/sounds only
        assert f"/var/lib/asterisk/sounds/{language}/digits/1.wav" in code.replace("$lang", language)
    assert "ln -sfn /usr/share/asterisk/sounds/$lang/* /var/lib/asterisk/sounds/$lang/" in code
    assert 'ENTRYPOINT ["python3", "/usr/local/bin/keybox-asterisk"]' in text
    cmd = json.loads(re.search(r"^CMD (.+)$", text, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert not any(arg.startswith("-d") for arg in cmd), "debug level logs the keys callers press"


def test_dockerfile_installs_what_the_image_runs() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for copied in ("pyproject.toml", "ivr", "prompts"):
        assert f"COPY {copied}" in dockerfile
        assert (ROOT / copied).exists()
    assert 'ENTRYPOINT ["ivr"]' in dockerfile


# -- commands -------------------------------------------------------------------------------------


def _check_ivr_command(name: str, words: list[str]) -> None:
    ctx = click.Context(cli)
    command: click.Command = cli
    args = list(words)
    while isinstance(command, click.Group):
        assert args, f"{name}: `ivr {' '.join(words)}` stops at a group"
        sub = command.get_command(ctx, args[0])
        assert sub is not None, f"{name}: no `ivr {' '.join(words[: len(words) - len(args) + 1])}`"
        command, args = sub, args[1:]
        if isinstance(command, click.Group):
            ctx = click.Context(command, parent=ctx)
    command.make_context(words[0], args, parent=ctx)  # raises on an unknown option or argument


@pytest.mark.parametrize("name", IVR_IMAGE_SERVICES)
def test_each_command_is_a_real_ivr_command(name: str) -> None:
    service = SERVICES[name]
    assert "entrypoint" not in service, f"{name}: the image's entrypoint is `ivr`"
    command = service["command"]
    _check_ivr_command(name, command if isinstance(command, list) else shlex.split(command))


def test_services_reach_each_other_by_name() -> None:
    assert SERVICES["ivr"]["environment"]["IVR_KIMVOICE_URL"] == "http://kimvoice:8081"
    assert "ivr:4573" in SERVICES["sim"]["command"]
    for name, service in SERVICES.items():
        depends = service.get("depends_on", [])
        assert set(depends) <= set(SERVICES), name
        if isinstance(depends, dict):
            for rule in depends.values():
                assert rule["condition"] in ("service_started", "service_healthy", "service_completed_successfully")
    assert SERVICES["asterisk"]["depends_on"]["prompts"]["condition"] == "service_completed_successfully"


def test_the_service_listens_inside_the_network() -> None:
    environment = SERVICES["ivr"]["environment"]
    assert environment["IVR_AGI_HOST"] == "0.0.0.0" and environment["IVR_HTTP_HOST"] == "0.0.0.0"


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_test_profile_peers_are_where_the_header_says() -> None:
    """The header's `IVR_AMI_HOST=... docker compose --profile test up`, `IVR_ICTCORE_URL=...`,
    `IVR_KAZOO_URL=...`, `IVR_KIMOBY_URL=...` and `IVR_CODELOCKS_URL=...` name test-profile
    services listening there, and the service's environment takes them."""
    header = (ROOT / "docker-compose.yml").read_text().split("\nservices:")[0]
    environment = SERVICES["ivr"]["environment"]
    (ami_host,) = re.findall(r"IVR_AMI_HOST=(\S+) docker compose --profile test up", header)
    assert "test" in SERVICES[ami_host]["profiles"]
    assert int(_option(SERVICES[ami_host]["command"], "--port")) == Settings.model_fields["ami_port"].default
    assert _option(SERVICES[ami_host]["command"], "--agi") == "ivr:4573"
    assert interpolate(environment["IVR_AMI_HOST"], {"IVR_AMI_HOST": ami_host}) == ami_host
    assert interpolate(environment["IVR_AMI_HOST"]) == "asterisk"
    (ictcore_host, ictcore_port) = re.findall(r"IVR_ICTCORE_URL=http://([a-z-]+):(\d+) docker compose", header)[0]
    assert "test" in SERVICES[ictcore_host]["profiles"]
    assert _option(SERVICES[ictcore_host]["command"], "--port") == ictcore_port
    # No value: compose passes the shell's (or .env's) IVR_ICTCORE_URL, or none; an empty one
    # would be an invalid URL.
    assert "IVR_ICTCORE_URL" in environment and environment["IVR_ICTCORE_URL"] is None
    (kazoo_host, kazoo_port) = re.findall(r"IVR_KAZOO_URL=http://([a-z-]+):(\d+)/v2 docker compose", header)[0]
    assert "test" in SERVICES[kazoo_host]["profiles"]
    assert _option(SERVICES[kazoo_host]["command"], "--port") == kazoo_port
    assert "IVR_KAZOO_URL" in environment and environment["IVR_KAZOO_URL"] is None
    (kimoby_host, kimoby_port) = re.findall(r"IVR_KIMOBY_URL=http://([a-z-]+):(\d+)/v1 docker compose", header)[0]
    assert "test" in SERVICES[kimoby_host]["profiles"]
    assert _option(SERVICES[kimoby_host]["command"], "--port") == kimoby_port
    (codelocks_host, codelocks_port) = re.findall(r"IVR_CODELOCKS_URL=http://([a-z-]+):(\d+) ", header)[0]
    assert "test" in SERVICES[codelocks_host]["profiles"]
    assert _option(SERVICES[codelocks_host]["command"], "--port") == codelocks_port
    for key in ("IVR_KIMOBY_URL", "IVR_KIMOBY_WEBHOOK_URL", "IVR_CODELOCKS_URL", "IVR_CODELOCKS_LOCKS_FILE"):
        assert key in environment and environment[key] is None, key
    for peer, keys in ((ami_host, ("IVR_AMI_USERNAME", "IVR_AMI_SECRET")),
                       (ictcore_host, ("IVR_ICTCORE_USERNAME", "IVR_ICTCORE_PASSWORD")),
                       (kazoo_host, ("IVR_KAZOO_USERNAME", "IVR_KAZOO_ACCOUNT_NAME", "IVR_KAZOO_PASSWORD")),
                       (kimoby_host, ("IVR_KIMOBY_API_KEY", "IVR_KIMOBY_API_SECRET")),
                       (codelocks_host, ("IVR_CODELOCKS_API_KEY",))):
        for key in keys:  # the same user and secret, from the same .env name, on both sides
            assert SERVICES[peer]["environment"][key] == environment.get(key, "keybox"), (peer, key)


ENV_NAMES = re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / "asterisk-conf" / "asterisk.env.example").read_text(), re.M)
SAMPLE_ENV = dict.fromkeys(ENV_NAMES, "sample-value-2f9c41d7")
SAMPLE_ENV |= {"LINE_EXTERNAL_ADDRESS": "127.0.0.1", "LINE_PUBLISH_ADDRESS": "127.0.0.1",
               "KAZOO_NOTICE_NUMBER": "5550900"}
(SAMPLE_LOCKS_IN_IMAGE,) = re.findall(r"IVR_CODELOCKS_LOCKS_FILE=(\S+)", (ROOT / "docker-compose.yml").read_text())


def test_the_sample_lock_file_the_header_names_is_in_the_image() -> None:
    """The image installs the checkout's `ivr/` in place (editable) under /app: the header's lock
    file is the Codelocks sandbox's sample one, and it ships as package data for a wheel too."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    for line in ("WORKDIR /app", "COPY ivr ./ivr", "RUN pip install --no-cache-dir -e ."):
        assert line in dockerfile.splitlines(), line
    assert Path(SAMPLE_LOCKS_IN_IMAGE).relative_to("/app") == SAMPLE_LOCKS_FILE.relative_to(ROOT)
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["ivr"]
    assert any(SAMPLE_LOCKS_FILE.relative_to(ROOT / "ivr").match(pattern) for pattern in package_data)


@pytest.mark.parametrize("env", [{}, SAMPLE_ENV, SAMPLE_ENV | {"IVR_AMI_HOST": "asterisk-sim",
                                                               "IVR_ICTCORE_URL": "http://ictcore:8082",
                                                               "IVR_KAZOO_URL": "http://kazoo:8083/v2",
                                                               "IVR_KIMOBY_URL": "http://kimoby:8084/v1",
                                                               "IVR_CODELOCKS_URL": "http://codelocks:8085",
                                                               "IVR_CODELOCKS_LOCKS_FILE": SAMPLE_LOCKS_IN_IMAGE}],
                         ids=["empty .env", ".env", "test peers"])
@pytest.mark.parametrize("name", IVR_IMAGE_SERVICES)
def test_each_services_environment_is_valid_settings(
    name: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What compose hands each container of the ivr image reads as the service's settings."""
    for key in [k for k in os.environ if k.startswith("IVR_")]:
        monkeypatch.delenv(key)
    for key, value in (SERVICES[name].get("environment") or {}).items():
        resolved = env.get(key) if value is None else interpolate(str(value), env)
        if resolved is not None:
            monkeypatch.setenv(key, resolved)
    Settings(_env_file=None)  # type: ignore[call-arg]


# -- what is published ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_only_loopback_is_published_by_default(name: str) -> None:
    for host_ip, host_port, _container in published(SERVICES[name]):
        assert host_ip == "127.0.0.1", f"{name} publishes {host_port} on {host_ip or 'every address'} by default"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_ami_and_ari_are_never_published(name: str) -> None:
    for _, _, container in published(SERVICES[name]):
        ports = container.split("/")[0]
        low, _, high = ports.partition("-")
        span = range(int(low), int(high or low) + 1)
        assert AMI_PORT not in span and ARI_PORT not in span, f"{name} publishes {container}"
    assert "expose" not in SERVICES[name] or not {AMI_PORT, ARI_PORT} & set(map(int, SERVICES[name]["expose"]))


def test_asterisk_publishes_sip_and_the_rtp_range_only() -> None:
    rows = published(SERVICES["asterisk"])
    assert sorted(container for _, _, container in rows) == sorted(
        [f"{SIP_PORT}/udp", f"{SIP_PORT}/tcp", f"{RTP_RANGE[0]}-{RTP_RANGE[1]}/udp"])
    for _, host_port, container in rows:
        assert host_port == container.split("/")[0], "the same ports outside: SIP and SDP name them"
    opened = [interpolate(p, {"LINE_PUBLISH_ADDRESS": "0.0.0.0"}) for p in SERVICES["asterisk"]["ports"]]
    assert all(p.startswith("0.0.0.0:") for p in opened), "LINE_PUBLISH_ADDRESS opens the line to the LAN"


# -- volumes, secrets ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_volumes_exist(name: str) -> None:
    declared = set(COMPOSE.get("volumes") or {})
    for volume in SERVICES[name].get("volumes", []):
        source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
        if source.startswith((".", "/")):
            assert (ROOT / source).exists(), f"{name}: bind mount {source} is not in the repository"
            assert volume.endswith(":ro"), f"{name}: {source} is mounted writable"
        else:
            assert source in declared, f"{name}: volume {source} is not declared"


def test_secrets_come_from_the_deployment_only() -> None:
    for name, service in SERVICES.items():
        environment = service.get("environment") or {}
        for key, value in (environment.items() if isinstance(environment, dict) else []):
            if key.endswith(("_PASSWORD", "_SECRET", "_TOKENS")):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+(:-)?\}", str(value)), f"{name}: {key} has a value in the file"
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_the_rendered_configuration_never_reaches_a_disk() -> None:
    tmpfs = SERVICES["asterisk"]["tmpfs"]
    assert any(entry.split(":")[0] == "/etc/asterisk" for entry in tmpfs)
