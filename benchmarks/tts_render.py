"""TTS render time: what a caller waits the first time a backend text is spoken, and after.

For a typical instruction sentence in each language it prints the median of a few runs of:

  render    a new text through `TtsCache` (espeak-ng, then sox to 8 kHz 16-bit mono): the wait
            of the first caller who hears it
  engine    the engine alone (`EspeakEngine.render`), for comparison
  hit       the same text again in the same process (the common case)
  disk hit  the same text through a new cache (found on disk, as in a classic AGI process),
            its one-time directory scan included

Needs espeak-ng and sox (`apt-get install espeak-ng sox`). Run from the repository root:

  python3 benchmarks/tts_render.py [--runs 7] [--engine espeak|command|http]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ivr.logging import configure_logging
from ivr.settings import load_settings
from ivr.tts import TtsCache, engine_from_settings, wav_info

SENTENCES = {
    "en": "Press the power button, enter the code, then press enter.",
    "fr": "Appuyez sur le bouton d'alimentation, entrez le code, puis appuyez sur entrée.",
    "es": "Presione el botón de encendido, ingrese el código y luego presione entrar.",
}


def ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:8.2f} ms"


async def main(runs: int, engine_name: str | None) -> int:
    settings = load_settings(**({"tts_engine": engine_name} if engine_name else {}))
    configure_logging(settings.log_format, "warning")
    engine = engine_from_settings(settings)
    if engine is None:
        print("IVR_TTS_ENGINE=none renders nothing to time", file=sys.stderr)
        return 2
    print(f"engine: {await engine.identity(None)}; median of {runs} runs")
    print(f"{'lang':<5} {'audio':>7} {'render':>11} {'engine':>11} {'hit':>11} {'disk hit':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cache = TtsCache(root / "tts", engine)
        await cache.render("warm-up: start the programs once", "en")
        for language, sentence in SENTENCES.items():
            render, alone, hit, disk = [], [], [], []
            for run in range(runs):
                text = f"{sentence} {run}" if run else sentence  # a new text every run: a real miss
                started = time.perf_counter()
                name = await cache.render(text, language)
                render.append(time.perf_counter() - started)
                started = time.perf_counter()
                await engine.render(text, language, root / "alone.wav")
                alone.append(time.perf_counter() - started)
                started = time.perf_counter()
                await cache.render(text, language)
                hit.append(time.perf_counter() - started)
                fresh = TtsCache(root / "tts", engine)  # its first use also scans the directory once
                started = time.perf_counter()
                await fresh.render(text, language)
                disk.append(time.perf_counter() - started)
            seconds = wav_info(cache.wav_path(cache.sound_name(sentence, language))).seconds
            assert cache.text_of(name) is not None, "the render failed: see the log line above"
            print(f"{language:<5} {seconds:6.2f}s {ms(render)} {ms(alone)} {ms(hit)} {ms(disk)}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--engine", choices=["espeak", "command", "http"])
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.runs, args.engine)))
