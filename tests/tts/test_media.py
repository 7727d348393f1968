"""The media routes: rendered and built sounds over HTTP, for an Asterisk on another host; nothing else,
and nothing at all for a peer outside `IVR_MEDIA_ALLOW`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from ivr.embedded_http import EmbeddedHttpServer
from ivr.netallow import parse_networks
from ivr.tts import EspeakEngine, TtsCache, media_url, prompt_path
from ivr.web import Metrics, create_app

LOOPBACK = "127.0.0.0/8,::1/128"


@dataclass
class Media:
    url: str
    cache: TtsCache
    sounds: Path
    root: Path


@asynccontextmanager
async def serving(root: Path, allow: str = LOOPBACK, host: str = "127.0.0.1") -> AsyncIterator[Media]:
    cache = TtsCache(root / "tts", EspeakEngine())
    sounds = root / "sounds"
    cache.directory.mkdir(parents=True, exist_ok=True)
    (root / "secret.wav").write_bytes(b"not for callers")
    (root / "calls.db").write_bytes(b"records")

    async def healthy() -> bool:
        return True

    kimvoice = object()  # not called by the media routes
    app = create_app(kimvoice, Metrics(routes=()), lambda: 0,  # type: ignore[arg-type]
                     store_healthy=healthy, media_allow=parse_networks(allow),
                     tts_dir=cache.directory, sounds_dir=sounds)
    async with EmbeddedHttpServer(app, host) as server:
        yield Media(server.url, cache, sounds, root)


@pytest.fixture
async def media(tmp_path: Path) -> AsyncIterator[Media]:
    async with serving(tmp_path / "data") as served:
        yield served


async def raw_get(url: str, path: str, *headers: str, host: str | None = None) -> tuple[int, bytes]:
    """The status and body of a GET sent byte for byte (no client-side normalisation of `..`)."""
    where = urlsplit(url)
    reader, writer = await asyncio.open_connection(host or where.hostname, where.port)
    extra = "".join(f"{header}\r\n" for header in headers)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n".encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return int(answer.split()[1]), answer.partition(b"\r\n\r\n")[2]


async def test_a_rendered_sound_and_a_built_prompt_are_served(media: Media) -> None:
    name = await media.cache.render("Jane Agent", "en")
    for prompt_id, text in (("welcome", "Bienvenue."), ("goodbye", "Au revoir.")):
        path = prompt_path(media.sounds, "fr", prompt_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        await media.cache.engine.render(text, "fr", path)  # type: ignore[union-attr]
    async with httpx.AsyncClient() as client:
        tts = await client.get(media_url(media.url + "/media", name, "en"))  # type: ignore[arg-type]
        assert tts.status_code == 200 and tts.headers["content-type"] == "audio/wav"
        assert tts.content == media.cache.wav_path(name).read_bytes()
        assert "etag" in tts.headers and "last-modified" in tts.headers
        prompt = await client.get(f"{media.url}/media/sounds/fr/keybox/welcome.wav")
        assert prompt.status_code == 200 and prompt.content == prompt_path(media.sounds, "fr", "welcome").read_bytes()
        head = await client.head(f"{media.url}/media/sounds/fr/keybox/goodbye.wav")
        assert head.status_code == 200 and head.content == b""


REFUSED = [
    "/media/tts/../secret.wav",
    "/media/tts/..%2Fsecret.wav",
    "/media/tts/%2e%2e%2fsecret.wav",
    "/media/tts/../../data/calls.db",
    "/media/tts/0123456789abcdef01234567.wav",  # the shape, but no such render
    "/media/tts/0123456789abcdef01234567.txt",  # the text beside a render is not media
    "/media/tts/aaaaaaaaaaaaaaaaaaaaaaaa.wav",  # a link out of the directory
    "/media/tts/",
    "/media/sounds/../secret.wav",
    "/media/sounds/en/keybox/../../../secret.wav",
    "/media/sounds/en/keybox/..%2F..%2F..%2Fsecret.wav",
    "/media/sounds/..%2F..%2F/keybox/secret.wav",
    "/media/sounds/en/other/welcome.wav",
    "/media/sounds/en/keybox/welcome.txt",
    "/media/sounds/en/keybox/.manifest.json",
    "/media/sounds/.manifest.json",
    "/media/secret.wav",
    "/media/calls.db",
]


async def test_anything_but_the_two_shapes_is_404(media: Media) -> None:
    (media.cache.directory / "fedcba9876543210fedcba98.wav").write_bytes(b"RIFF")  # a render that is there
    (media.cache.directory / "0123456789abcdef01234567.txt").write_text("a text")
    (media.cache.directory / "aaaaaaaaaaaaaaaaaaaaaaaa.wav").symlink_to(media.root / "secret.wav")
    assert (await raw_get(media.url, "/media/tts/fedcba9876543210fedcba98.wav"))[0] == 200
    served = {path: status for path in REFUSED if (status := (await raw_get(media.url, path))[0]) != 404}
    assert served == {}


async def test_a_peer_outside_the_allow_list_gets_403_and_nothing_else(tmp_path: Path) -> None:
    async with serving(tmp_path / "data", allow="10.0.0.0/8") as media:
        name = await media.cache.render("Jane Agent", "en")
        path = urlsplit(media_url(media.url + "/media", name, "en")).path  # type: ignore[arg-type]
        for tried in (path, "/media/sounds/en/keybox/welcome.wav", "/media/tts/0123456789abcdef01234567.wav",
                      "/media/anything"):
            assert await raw_get(media.url, tried) == (403, b"Forbidden"), tried
        async with httpx.AsyncClient(base_url=media.url) as client:
            assert (await client.get("/metrics")).status_code == 200, "only /media is restricted"


async def test_x_forwarded_for_does_not_make_a_peer_allowed(tmp_path: Path) -> None:
    async with serving(tmp_path / "data", allow="10.9.9.9/32") as media:
        name = await media.cache.render("Jane Agent", "en")
        path = urlsplit(media_url(media.url + "/media", name, "en")).path  # type: ignore[arg-type]
        status, _ = await raw_get(media.url, path, "X-Forwarded-For: 10.9.9.9", "Forwarded: for=10.9.9.9")
    assert status == 403


async def test_an_ipv4_mapped_peer_on_a_dual_stack_listener_matches_ipv4_entries(tmp_path: Path) -> None:
    async with serving(tmp_path / "data", allow="127.0.0.1/32", host="::") as media:
        name = await media.cache.render("Jane Agent", "en")
        path = urlsplit(media_url(media.url + "/media", name, "en")).path  # type: ignore[arg-type]
        status, body = await raw_get(media.url, path, host="127.0.0.1")  # seen as ::ffff:127.0.0.1
    assert status == 200 and body == media.cache.wav_path(name).read_bytes()


def test_media_url_maps_the_sounds_the_flow_plays() -> None:
    base = "https://ivr.example.com:8443/media/"
    assert media_url(base, "tts/0123456789abcdef01234567", "fr") == \
        "https://ivr.example.com:8443/media/tts/0123456789abcdef01234567.wav"
    assert media_url(base, "keybox/welcome", "es") == "https://ivr.example.com:8443/media/sounds/es/keybox/welcome.wav"
    assert media_url(base, "beep", "en") is None
