"""The sound files over HTTP, for an Asterisk on another host.

Only peers in the allow list (`IVR_MEDIA_ALLOW`) get anything under `/media`: any other gets 403
and nothing else, whatever the path. For them, two shapes only, anything else is 404 (no
directory listing, no `..`):

- `GET /media/tts/<hash>.wav`: a runtime render of the TTS cache (`tts/<hash>`);
- `GET /media/sounds/<lang>/keybox/<id>.wav`: a prompt built by `ivr prompts build`.

Asterisk plays `http(s)://` URLs (res_http_media_cache keeps a copy and revalidates it with
the ETag and Last-Modified these answers carry); `media_url` maps a sound name to its URL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import Receive, Scope, Send

from ivr.netallow import Network, allowed
from ivr.tts._cache import SOUND_PREFIX

__all__ = ["media_routes", "media_url"]

_HASH = re.compile(r"[0-9a-f]{24}\.wav")
_LANGUAGE = re.compile(r"[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?")
_PROMPT = re.compile(r"[a-z0-9][a-z0-9-]{0,63}\.wav")
_PROMPT_PREFIX = "keybox/"


def _not_found() -> Response:
    return PlainTextResponse("Not Found", status_code=404)


def _serve(base: Path | None, *parts: str, max_age: int) -> Response:
    if base is None:
        return _not_found()
    root = base.resolve()
    path = root.joinpath(*parts).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return _not_found()
    return FileResponse(path, media_type="audio/wav", headers={"Cache-Control": f"public, max-age={max_age}"})


def media_routes(tts_dir: Path | None, sounds_dir: Path | None, allow: Sequence[Network]) -> list[BaseRoute]:
    """`/media`: the two routes over the TTS cache and the built prompts, for peers in `allow`."""

    async def tts(request: Request) -> Response:
        name = request.path_params["name"]
        if not _HASH.fullmatch(name):
            return _not_found()
        return _serve(tts_dir, name, max_age=3600)

    async def prompt(request: Request) -> Response:
        language, name = request.path_params["lang"], request.path_params["name"]
        if not _LANGUAGE.fullmatch(language) or not _PROMPT.fullmatch(name):
            return _not_found()
        return _serve(sounds_dir, language, "keybox", name, max_age=300)

    router = Router(routes=[
        Route("/tts/{name}", tts, methods=["GET", "HEAD"]),
        Route("/sounds/{lang}/keybox/{name}", prompt, methods=["GET", "HEAD"]),
    ])

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if not allowed(allow, client[0] if client else None):
            await PlainTextResponse("Forbidden", status_code=403)(scope, receive, send)
            return
        await router(scope, receive, send)

    return [Mount("/media", app=guarded)]


def media_url(base_url: str, sound: str, language: str) -> str | None:
    """The URL of a sound the flow plays by name, under `base_url` (e.g. `http://ivr:8080/media`).

    `tts/<hash>` and `keybox/<id>` (in `language`) have one; any other sound None.
    """
    base = base_url.rstrip("/")
    if sound.startswith(SOUND_PREFIX):
        return f"{base}/tts/{sound.removeprefix(SOUND_PREFIX)}.wav"
    if sound.startswith(_PROMPT_PREFIX):
        return f"{base}/sounds/{language}/keybox/{sound.removeprefix(_PROMPT_PREFIX)}.wav"
    return None
