"""The media routes: rendered and built sounds over HTTP, for an Asterisk on another host; nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from ivr.tts import EspeakEngine, TtsCache, media_url, prompt_path
from ivr.web import EmbeddedHttpServer, Metrics, create_app


@dataclass
class Media:
    url: str
    cache: TtsCache
    sounds: Path
    root: Path


@pytest.fixture
async def media(tmp_path: Path) -> AsyncIterator[Media]:
    cache = TtsCache(tmp_path / "data" / "tts", EspeakEngine())
    sounds = tmp_path / "data" / "sounds"
    cache.directory.mkdir(parents=True)
    (tmp_path / "data" / "secret.wav").write_bytes(b"not for callers")
    (tmp_path / "data" / "calls.db").write_bytes(b"records")
    kimvoice = object()  # not called by the media routes
    app = create_app(kimvoice, Metrics(), lambda: 0,  # type: ignore[arg-type]
                     tts_dir=cache.directory, sounds_dir=sounds)
    async with EmbeddedHttpServer(app) as server:
        yield Media(server.url, cache, sounds, tmp_path / "data")


async def raw_get(url: str, path: str) -> int:
    """The status of a GET sent byte for byte (no client-side normalisation of `..`)."""
    where = urlsplit(url)
    reader, writer = await asyncio.open_connection(where.hostname, where.port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return int(status_line.split()[1])


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
    assert await raw_get(media.url, "/media/tts/fedcba9876543210fedcba98.wav") == 200
    served = {path: status for path in REFUSED if (status := await raw_get(media.url, path)) != 404}
    assert served == {}


def test_media_url_maps_the_sounds_the_flow_plays() -> None:
    base = "https://ivr.example.com:8443/media/"
    assert media_url(base, "tts/0123456789abcdef01234567", "fr") == \
        "https://ivr.example.com:8443/media/tts/0123456789abcdef01234567.wav"
    assert media_url(base, "keybox/welcome", "es") == "https://ivr.example.com:8443/media/sounds/es/keybox/welcome.wav"
    assert media_url(base, "beep", "en") is None
