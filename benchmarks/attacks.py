"""Attack benchmark: abusive callers, peers and backends against a real `ivr serve` on loopback.

Each attack starts its own `python3 -m ivr sandbox` and `python3 -m ivr serve` (fresh temporary
IVR_DATA_DIR, free ports on 127.0.0.1, IVR_LOG_LEVEL=warning) from the code tree given with
--tree, waits until they answer (polling, no fixed sleeps), attacks, measures, and stops them.
The attacking side is this process: the simulated Asterisk (`ivr.sim`, imported from --sim-tree,
by default the repository this file lives in; the AGI wire is the same in every tree), raw
sockets, and for attack 6 a small HTTP proxy in front of the sandbox. It prints one row per
attack (attack, what was measured, figure) and writes every figure, with details, as JSON.

    python3 benchmarks/attacks.py --tree /work/before --out benchmarks/results/attacks-before.json
    python3 benchmarks/attacks.py --tree /work/main --out benchmarks/results/attacks-after.json
    python3 benchmarks/attacks.py --tree /work/before --only 1,8,11      # some attacks only

The children run as `python3 -m ivr ...` with PYTHONPATH=<tree> and cwd=<tree>. The package is
also installed editable from one checkout; the script checks once which `ivr` a child imports
(printed as `ivr.__file__`) and, if it is not the tree's, starts the children through a
launcher that puts the tree first on sys.path.

Attacks (the numbers are the brief's; sizes are fixed unless an option says otherwise):
   1  concurrent PIN guesses on one key: 500 calls at once, key 123456, a different wrong PIN
      each, the right PIN (2580) 5th from last; 1a with one caller id per call, 1b all from one.
   2  withheld-id spray: caller id anonymous / unknown / restricted / empty, one PIN guess per
      call on a different key number, 50 callers back to back for --spray-seconds (30).
   3  rotating-id spray: the same with a fresh caller id per call.
   4  silent sockets: 1,001 FastAGI connections that send nothing (re-opened when closed), then
      20 full update-code calls, IVR_MAX_CALLS=1000.
   5  slow HTTP: 1,500 connections to the HTTP port, each sending half a request head, the
      service's open-files limit at 1024; open connections after 10 s and --slow-hold (70) s,
      and 20 FastAGI calls placed meanwhile (4 at a time, 10 s each at most).
  5b  the same 20 s long with --reopen-heads (200) heads re-opened as soon as they are closed,
      /healthz probed every 0.5 s meanwhile: probes answered.
   6  huge KimVoice answer: a proxy in front of the sandbox answers GetKeyHolders with a
      300 MB body; the service's peak RSS against idle, and what the caller heard.
   7  thousands of digits: the first GET DATA answered with `200 result=<5000 digits>`.
   8  repeated agi_uniqueid: two calls with one uniqueid; call records kept.
   9  made-up routes: 5,000 FastAGI calls on random routes; /metrics lines before and after.
  10  hang-up during ValidateKeyHolder (sandbox latency 1 s): did GetUpdateCode still go out?
  11  /healthz probes: 100 at once and 100 one after another; HealthCheck requests sent.
  12  token churn: 150 update-code calls (4 at a time) while the sandbox revokes every token
      every 50 ms; calls that failed.
  13  not an attack, a side effect to watch: 20 right-PIN calls at once on key 123456 (a caller
      id each; 13b: all from one caller id), then one more; how many got their code.

Bounds: every loop has a count and a time limit, every call a timeout (the simulator's), every
child is stopped (SIGTERM, then SIGKILL) when its attack ends, on errors and on Ctrl-C, and dies
with this process (PR_SET_PDEATHSIG). All traffic goes to 127.0.0.1. The script raises its own
open-files limit to the hard limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import json
import os
import random
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

if __package__:  # python3 -m benchmarks.attacks
    from ._children import HOST, Child, Children, free_port, http, status_kb, temporary_children, wait_ready
else:  # python3 benchmarks/attacks.py: this folder is sys.path[0]
    from _children import HOST, Child, Children, free_port, http, status_kb, temporary_children, wait_ready

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

KEY, PIN, MEMBER, POD = 123456, "2580", 5001, 1  # the sandbox's plain test key
FULL_CALL = "123456#2580#19"  # key, PIN, update code (1), end (9)
SEEDED_KEYS = (123456, 234567, 345678, 456789, 567890, 678901)
WITHHELD = ("anonymous", "unknown", "restricted", "")

REAL_CALLS_AT_ONCE = 4
"""Right-PIN calls on key 123456 in flight at once (attacks 5, 12). An intermediate fixed tree
counted a sign-in in flight against its key, so 5 or more at once heard key-locked; the guard now
lets right PINs in flight wait for each other's answers (attack 13: 20 of 20). The limit stays so
that the figures compare with the runs measured with it, before and after."""

READY_TIMEOUT = 45.0
CALL_TIMEOUT = 30.0
CLOSE_WAIT = 5.0

# Settings the fixed tree adds, at its defaults (the old tree ignores unknown IVR_ variables and
# waits a fixed 5 s for an AGI environment). --env overrides them.
NEW_SETTINGS = {"IVR_AGI_ALLOW": "127.0.0.0/8", "IVR_MEDIA_ALLOW": "127.0.0.0/8", "IVR_AGI_ENV_TIMEOUT": "2"}


# -- the system under test -------------------------------------------------------------------


@dataclass
class Tree:
    """The code tree the children run, and how to start `ivr` from it."""

    path: Path
    launcher: list[str]
    ivr_file: str
    commit: str
    changed_files: int

    @classmethod
    def probe(cls, path: Path) -> Tree:
        path = path.resolve()
        env = child_env(path, {})
        plain = [sys.executable, "-m", "ivr"]
        code = "import ivr; print(ivr.__file__)"
        found = _probe(env, path, [sys.executable, "-c", code])
        if not _inside(found, path):
            # The editable install won over PYTHONPATH: put the tree first ourselves.
            boot = (f"import sys; sys.path.insert(0, {str(path)!r}); import runpy; "
                    "runpy.run_module('ivr', run_name='__main__', alter_sys=True)")
            plain = [sys.executable, "-c", boot]
            found = _probe(env, path, [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(path)!r}); {code}"])
            if not _inside(found, path):
                raise SystemExit(f"cannot make a child import ivr from {path}: it imports {found}")
        commit = _git(path, "rev-parse", "HEAD")
        changed = _git(path, "--no-optional-locks", "status", "--porcelain", "--untracked-files=no")
        return cls(path, plain, found, commit, len(changed.splitlines()))


def _probe(env: dict[str, str], cwd: Path, argv: list[str]) -> str:
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    return done.stdout.strip() or done.stderr.strip()[-300:]


def _inside(file: str, tree: Path) -> bool:
    try:
        return Path(file).resolve().is_relative_to(tree)
    except (OSError, ValueError):
        return False


def _git(path: Path, *args: str) -> str:
    with contextlib.suppress(Exception):
        return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, timeout=30,
                              check=False).stdout.strip()
    return ""


def child_env(tree: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env |= {"PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
            "IVR_LOG_LEVEL": "warning", "IVR_LOG_FORMAT": "json"}
    return env | extra


@dataclass
class System:
    """One sandbox and one service, as an attack sees them."""

    workdir: Path
    data_dir: Path
    sandbox_port: int
    agi_port: int
    http_port: int
    sandbox: Child
    service: Child
    sounds: Any
    log_mark: int = 0  # where the service log stood when the attack began

    @property
    def agi(self) -> str:
        return f"{HOST}:{self.agi_port}"

    def log_summary(self) -> dict[str, Any]:
        """Tracebacks and error lines the service wrote since the attack began (read line by line:
        a flooded log can be hundreds of MB)."""
        errors: Counter[str] = Counter()
        tracebacks = size = 0
        with contextlib.suppress(OSError), self.service.log.open("rb") as f:
            f.seek(self.log_mark)
            for raw in f:
                size += len(raw)
                line = raw.decode("utf-8", errors="replace")
                tracebacks += line.count("Traceback (most recent call last)")
                try:
                    entry = json.loads(line)
                except ValueError:
                    if line.strip() and not line.startswith((" ", "Traceback")):
                        errors[f"(text) {line.strip()[:100]}"] += 1
                    continue
                if isinstance(entry, dict) and entry.get("level") in ("error", "critical", "exception"):
                    errors[str(entry.get("event")).split("\n")[0][:100]] += 1
        return {"tracebacks": tracebacks, "error_lines": sum(errors.values()),
                "errors_by_event": dict(errors.most_common(8)), "log_bytes": size,
                "exit_code": self.service.process.poll()}


def AnyTtsSounds(*args: Any) -> Any:  # a class made on first use: ivr.sim is imported late
    """The simulator's sound library, for which every `tts/…` render exists.

    The simulator learns a render's text from the TTS cache's files, and a tree may no longer
    keep the text on disk; a missing sound would end the call early (Asterisk answers -1, as
    for a hang-up). The attacks are about other things, so every render plays."""
    from ivr.sim import Event, SoundLibrary

    class Sounds(SoundLibrary):
        def exists(self, name: str, language: str) -> bool:
            return name.startswith("tts/") or super().exists(name, language)

        def describe(self, name: str) -> Any:
            event = super().describe(name)
            return Event("tts", name) if name.startswith("tts/") and event.kind != "tts" else event

    return Sounds(*args)


class Harness:
    def __init__(self, tree: Tree, keep: bool) -> None:
        self.tree = tree
        self.keep = keep
        self.children = Children()

    def start(self, name: str, args: list[str], env: dict[str, str], nofile: int | None = None) -> Child:
        return self.children.start(name, [*self.tree.launcher, *args], env, cwd=self.tree.path, nofile=nofile)

    def stop_all(self) -> None:
        self.children.stop()

    @contextlib.asynccontextmanager
    async def system(self, name: str, env: dict[str, str] | None = None, *, nofile: int | None = None,
                     kimvoice_url: Callable[[int], Awaitable[str]] | None = None) -> AsyncIterator[System]:
        """A fresh sandbox + service; `kimvoice_url(sandbox_port)` may put something in between."""
        from ivr.catalog import PromptCatalog, default_prompts_dir
        from ivr.tts import TtsCache

        with temporary_children(f"ivr-attack-{name}-", self.keep) as children:
            self.children = children  # stop_all stops them too
            workdir = children.workdir
            assert workdir is not None
            data_dir = workdir / "data"
            sandbox_port, agi_port, http_port = free_port(), free_port(), free_port()
            sandbox = self.start("sandbox", ["sandbox", "--host", HOST, "--port", str(sandbox_port)],
                                 child_env(self.tree.path, {}))
            await wait_ready(sandbox, sandbox_port, "/sandbox/knobs", timeout=READY_TIMEOUT, probe_timeout=3.0)
            url = await kimvoice_url(sandbox_port) if kimvoice_url else f"http://{HOST}:{sandbox_port}"
            service_env = child_env(self.tree.path, NEW_SETTINGS | {
                "IVR_KIMVOICE_URL": url, "IVR_AGI_HOST": HOST, "IVR_AGI_PORT": str(agi_port),
                "IVR_HTTP_HOST": HOST, "IVR_HTTP_PORT": str(http_port), "IVR_DATA_DIR": str(data_dir),
                "IVR_LANGUAGES": "en", "IVR_DRAIN_SECONDS": "2", **(env or {})})
            service = self.start("service", ["serve"], service_env, nofile)
            await wait_ready(service, http_port, "/healthz", timeout=READY_TIMEOUT, probe_timeout=3.0)
            sounds = AnyTtsSounds(PromptCatalog.load(default_prompts_dir()), TtsCache(data_dir / "tts"))
            system = System(workdir, data_dir, sandbox_port, agi_port, http_port, sandbox, service, sounds)
            system.log_mark = service.log.stat().st_size
            yield system


async def sandbox_requests(s: System) -> Counter[str]:
    status, body = await http(s.sandbox_port, "GET", "/sandbox/stats")
    if status != 200:
        raise RuntimeError(f"sandbox stats: HTTP {status}")
    return Counter(json.loads(body)["requests"])


async def set_knobs(s: System, **knobs: object) -> None:
    status, body = await http(s.sandbox_port, "PATCH", "/sandbox/knobs", json.dumps(knobs).encode())
    if status != 200:
        raise RuntimeError(f"sandbox knobs: HTTP {status} {body[:200]!r}")


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def call_records(data_dir: Path) -> list[tuple[str, str | None]]:
    """(table, outcome) of every call record in the store, whatever the schema calls its table."""
    path = data_dir / "calls.db"
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        rows: list[tuple[str, str | None]] = []
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = {r[1] for r in db.execute(f'PRAGMA table_info("{table}")')}
            if "call_id" in columns:
                outcome = "outcome" if "outcome" in columns else "NULL"
                rows += [(table, r[0]) for r in db.execute(f'SELECT {outcome} FROM "{table}"')]
        return rows
    finally:
        db.close()


async def settled_records(data_dir: Path, at_least: int, wait: float = 5.0) -> list[tuple[str, str | None]]:
    """The call records once `at_least` are there (or `wait` s passed) and no more appear for 0.5 s."""
    deadline = time.monotonic() + wait
    rows = call_records(data_dir)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        again = call_records(data_dir)
        if len(again) >= at_least and len(again) == len(rows):
            return again
        rows = again
    return rows


# -- calls ---------------------------------------------------------------------------------


@functools.cache
def expected_codes() -> frozenset[str]:
    from ivr.backends.kimvoice.sandbox import update_code_for

    today = dt.datetime.now(dt.UTC).date()
    return frozenset(update_code_for(KEY, MEMBER, MEMBER, POD, (today + dt.timedelta(days=d)).isoformat())
                     for d in (-1, 0, 1))


def heard(result: Any) -> str:
    """What one call came to, as the caller noticed it."""
    if isinstance(result, BaseException):
        return f"call failed: {type(result).__name__}"
    prompts = result.transcript.prompts
    if set(result.transcript.said_digits) & expected_codes():
        return "update code read"
    for prompt in ("key-locked", "system-unavailable", "not-authorized"):
        if prompt in prompts:
            return prompt
    if "choose-code-type" in prompts:
        return "reached the code menu"
    if "invalid-credentials" in prompts:
        return "invalid-credentials"
    if result.transcript.notes:
        return "note: " + re.sub(r"\d+(\.\d+)?", "N", result.transcript.notes[0])[:80]
    return f"other: {prompts[-2:]}"


async def place(s: System, keys: str, *, caller_id: str | None = "+15555550100", route: str = "keybox",
                agi_env: dict[str, str] | None = None, timeout: float = CALL_TIMEOUT) -> Any:
    """One simulated call; the exception instead of a result when it could not be placed."""
    from ivr.sim import ScriptedCaller, place_call

    env = dict(agi_env or {})
    if caller_id == "":
        env["agi_callerid"] = ""  # agi_environment sends `unknown` for a falsy id
    try:
        return await place_call(s.agi, route, caller=ScriptedCaller(keys), sounds=s.sounds, caller_id=caller_id,
                                agi_env=env, timeout=timeout, close_wait=CLOSE_WAIT)
    except (OSError, TimeoutError) as exc:
        return exc


async def bounded_gather(aws: list[Awaitable[Any]], limit: float) -> list[Any]:
    """Run all; past `limit` seconds cancel what is left (its result: the TimeoutError)."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    done, pending = await asyncio.wait(tasks, timeout=limit) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return [t.result() if t in done and not t.cancelled() and t.exception() is None
            else (t.exception() if t in done else TimeoutError("harness time limit")) for t in tasks]


async def at_most(gate: asyncio.Semaphore, work: Awaitable[Any]) -> Any:
    async with gate:
        return await work


def row(number: str, name: str, measured: str, figure: str, **details: Any) -> dict[str, Any]:
    return {"attack": number, "name": name, "measured": measured, "figure": figure, "details": details}


# -- the attacks ---------------------------------------------------------------------------


async def attack_1(h: Harness, options: argparse.Namespace, one_caller: bool) -> dict[str, Any]:
    """500 calls at once on key 123456, each a different wrong PIN; the right one 5th from last."""
    n = options.guesses
    rng = random.Random(1)
    pins = rng.sample([f"{i:04d}" for i in range(10_000) if f"{i:04d}" != PIN], n - 1)
    pins.insert(n - 5, PIN)
    async with h.system("guess-one-key") as s:
        before = await sandbox_requests(s)
        started = time.monotonic()
        results = await bounded_gather(
            [place(s, f"{KEY}#{pin}#!", caller_id="+15555550100" if one_caller else f"+1555{i:07d}")
             for i, pin in enumerate(pins)], limit=120)
        wall = time.monotonic() - started
        await asyncio.sleep(0.5)  # a cancelled request may still reach the sandbox
        after = await sandbox_requests(s)
        logs = s.log_summary()
    outcomes = Counter(heard(r) for r in results)
    right = heard(results[n - 5])
    got_in = right in ("reached the code menu", "update code read")
    requests = after["GetKeyHolders"] - before["GetKeyHolders"]
    ids = "all from one caller id" if one_caller else "one caller id per call"
    return row("1b" if one_caller else "1a", f"{n} concurrent PIN guesses on one key, {ids}",
               "GetKeyHolders the sandbox received; did the right PIN get in",
               f"{requests} GetKeyHolders; right PIN {'got in' if got_in else 'refused (' + right + ')'}",
               get_key_holders=requests, right_pin_got_in=got_in, right_pin_heard=right,
               outcomes=dict(outcomes.most_common()), wall_s=round(wall, 1), service_log=logs)


async def spray(h: Harness, options: argparse.Namespace, number: str, withheld: bool) -> dict[str, Any]:
    """50 callers back to back for a fixed time, one PIN guess per call, each on another key."""
    duration, concurrency = options.spray_seconds, options.spray_callers
    rng = random.Random(2 if withheld else 3)
    outcomes: Counter[str] = Counter()
    ids = Counter[str]()

    def next_guess(i: int, k: int) -> tuple[str, str | None]:
        if rng.random() < 0.1:
            key = rng.choice(SEEDED_KEYS)  # a real key now and then
        else:  # a 5- or 6-digit number the sandbox does not know
            key = rng.randrange(10_000, 100_000) if rng.random() < 0.5 else rng.randrange(100_000, 1_000_000)
            key = key + 1 if key in SEEDED_KEYS else key
        pin = f"{rng.randrange(10_000):04d}"
        caller = WITHHELD[(i + k) % len(WITHHELD)] if withheld else f"+1{rng.randrange(2_000_000_000, 9_999_999_999)}"
        return f"{key}#{pin}#!", caller

    async with h.system("spray-withheld" if withheld else "spray-rotating") as s:
        before = await sandbox_requests(s)
        loop = asyncio.get_running_loop()
        started = loop.time()
        end = started + duration

        async def caller(i: int) -> None:
            for k in range(100_000):
                if loop.time() >= end:
                    return
                keys, caller_id = next_guess(i, k)
                ids[caller_id if withheld else "rotating"] += 1
                outcomes[heard(await place(s, keys, caller_id=caller_id))] += 1

        series: list[tuple[float, int]] = [(0.0, 0)]

        async def sample() -> None:  # GetKeyHolders so far, every 5 s up to the end of the window
            for t in [x * 5.0 for x in range(1, int(duration // 5) + 1)] + ([duration] if duration % 5 else []):
                await asyncio.sleep(max(0.0, started + t - loop.time()))
                count = (await sandbox_requests(s))["GetKeyHolders"] - before["GetKeyHolders"]
                series.append((round(loop.time() - started, 1), count))

        sampler = asyncio.ensure_future(sample())
        await bounded_gather([caller(i) for i in range(concurrency)], limit=duration + CALL_TIMEOUT + 15)
        wall = loop.time() - started
        await bounded_gather([sampler], 5)
        await asyncio.sleep(0.5)
        after = await sandbox_requests(s)
        logs = s.log_summary()
    requests = after["GetKeyHolders"] - before["GetKeyHolders"]
    per_hour = round(requests / wall * 3600)
    # the second half of the window: the rate once any per-window allowance is used up
    (t0, c0), (t1, c1) = min(series, key=lambda p: abs(p[0] - duration / 2)), series[-1]
    late_per_hour = round((c1 - c0) / (t1 - t0) * 3600) if t1 > t0 else None
    calls = sum(outcomes.values())
    kind = "withheld ids (anonymous, unknown, restricted, empty)" if withheld else "a fresh caller id per call"
    return row(number, f"PIN spray, {kind}, {concurrency} callers for {duration:g} s",
               "GetKeyHolders the sandbox received, per hour (whole run; 2nd half)",
               f"{requests} in {wall:.0f} s = {per_hour:,} per hour; 2nd half {late_per_hour:,} per hour "
               f"({calls} calls)",
               get_key_holders=requests, wall_s=round(wall, 1), per_hour=per_hour,
               second_half_per_hour=late_per_hour, series=series, calls=calls,
               caller_ids=dict(ids), outcomes=dict(outcomes.most_common()), service_log=logs)


async def attack_4(h: Harness, options: argparse.Namespace) -> dict[str, Any]:
    """1,001 silent FastAGI connections, re-opened as they close; then 20 real calls."""
    silent, calls = options.silent_sockets, 20
    async with h.system("silent-sockets", {"IVR_MAX_CALLS": "1000"}) as s:
        stop = asyncio.Event()
        stopper = asyncio.ensure_future(stop.wait())
        live = opened = 0
        lifetimes: list[float] = []

        async def holder() -> None:
            nonlocal live, opened
            for _ in range(1000):  # bounded: re-opens
                if stop.is_set():
                    return
                try:
                    async with asyncio.timeout(5):
                        reader, writer = await asyncio.open_connection(HOST, s.agi_port)
                except (OSError, TimeoutError):
                    await asyncio.sleep(0.2)
                    continue
                opened += 1
                live += 1
                t0 = time.monotonic()
                eof = asyncio.ensure_future(reader.read(65536))
                try:
                    await asyncio.wait({eof, stopper}, return_when=asyncio.FIRST_COMPLETED)
                    if eof.done():
                        lifetimes.append(time.monotonic() - t0)
                finally:
                    live -= 1
                    eof.cancel()
                    writer.close()

        holders = [asyncio.ensure_future(holder()) for _ in range(silent)]
        deadline = time.monotonic() + 20
        while live < silent and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # let the service accept them all
        held = live
        results = []
        for _ in range(calls):  # one after another, through several of the service's timeouts
            results.append(await place(s, FULL_CALL, timeout=15))
            await asyncio.sleep(0.25)
        stop.set()
        await bounded_gather(holders, limit=15)
        stopper.cancel()
        logs = s.log_summary()
    outcomes = Counter(heard(r) for r in results)
    served = outcomes["update code read"]
    mean_life = round(sum(lifetimes) / len(lifetimes), 2) if lifetimes else None
    return row("4", f"{silent} silent FastAGI sockets, then {calls} calls (IVR_MAX_CALLS=1000)",
               f"calls of {calls} that got their code", f"{served} of {calls}",
               got_code=served, outcomes=dict(outcomes.most_common()), silent_open_when_calling=held,
               silent_connections_opened=opened, silent_closed_by_service=len(lifetimes),
               silent_socket_lifetime_s_mean=mean_life, service_log=logs)


async def attack_5(h: Harness, options: argparse.Namespace) -> dict[str, Any]:
    """1,500 half request heads to the HTTP port at nofile 1024; 20 FastAGI calls meanwhile."""
    count, hold, calls = options.slow_connections, options.slow_hold, 20
    async with h.system("slow-http", nofile=1024) as s:
        fds_idle = open_fds(s.service.pid)
        closed_at: dict[int, float] = {}
        stop = asyncio.Event()
        stopper = asyncio.ensure_future(stop.wait())
        connect_failed = 0

        async def slow(i: int) -> None:
            nonlocal connect_failed
            try:
                async with asyncio.timeout(5):
                    reader, writer = await asyncio.open_connection(HOST, s.http_port)
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow")  # no end of head
            except (OSError, TimeoutError):
                connect_failed += 1
                return
            eof = asyncio.ensure_future(reader.read(65536))
            try:
                await asyncio.wait({eof, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if eof.done():
                    closed_at[i] = time.monotonic()
            finally:
                eof.cancel()
                writer.close()

        gate = asyncio.Semaphore(REAL_CALLS_AT_ONCE)
        tasks = []
        for start in range(0, count, 100):  # open in batches of 100
            tasks += [asyncio.ensure_future(slow(i)) for i in range(start, min(count, start + 100))]
            await asyncio.sleep(0.05)
        t0 = time.monotonic()
        # awaited below: RUF006 (ruff 0.17.6) misses that here
        calls_task = asyncio.ensure_future(bounded_gather(  # noqa: RUF006
            [at_most(gate, place(s, FULL_CALL, timeout=10)) for _ in range(calls)], hold + 15))
        open_at: dict[str, Any] = {}
        for mark in (10.0, float(hold)):
            await asyncio.sleep(max(0.0, t0 + mark - time.monotonic()))
            open_at[f"{mark:g}s"] = {"open_client_view": count - connect_failed - len(closed_at),
                                     "service_fds": open_fds(s.service.pid)}
        results = await calls_task
        try:
            health = (await http(s.http_port, "GET", "/healthz", timeout=5))[0]
        except (OSError, TimeoutError) as exc:
            health = type(exc).__name__
        stop.set()
        await bounded_gather(tasks, limit=15)
        stopper.cancel()
        logs = s.log_summary()
    outcomes = Counter(heard(r) for r in results)
    served = outcomes["update code read"]
    o10, oend = open_at["10s"]["open_client_view"], open_at[f"{hold:g}s"]["open_client_view"]
    return row("5", f"{count} slow HTTP heads, service nofile 1024, {calls} FastAGI calls meanwhile",
               f"half-heads still open after 10 s / {hold:g} s; calls served",
               f"{o10} / {oend} open; {served} of {calls} calls got their code",
               open_after=open_at, connect_failed=connect_failed, service_fds_idle=fds_idle, got_code=served,
               outcomes=dict(outcomes.most_common()), healthz_after=health, service_log=logs)


async def attack_5b(h: Harness, options: argparse.Namespace) -> dict[str, Any]:
    """--reopen-heads (200) half request heads to the HTTP port, each re-opened as soon as it is
    closed, for 20 s; meanwhile a probe asks /healthz every 0.5 s (a load balancer's view)."""
    count, duration = options.reopen_heads, 20.0
    async with h.system("slow-http-reopen", nofile=1024) as s:
        loop = asyncio.get_running_loop()
        end = loop.time() + duration
        opened = 0

        async def slow() -> None:
            nonlocal opened
            for _ in range(10_000):  # bounded re-opens
                if loop.time() >= end:
                    return
                try:
                    async with asyncio.timeout(5):
                        reader, writer = await asyncio.open_connection(HOST, s.http_port)
                    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow")
                    opened += 1
                    with contextlib.suppress(TimeoutError, OSError):
                        await asyncio.wait_for(reader.read(65536), max(0.01, end - loop.time()))
                    writer.close()
                except (OSError, TimeoutError):
                    pass
                await asyncio.sleep(0.05)

        async def probe() -> Counter[str]:
            answers: Counter[str] = Counter()
            while loop.time() < end:
                try:
                    status, _ = await http(s.http_port, "GET", "/healthz", timeout=2)
                    answers[f"HTTP {status}"] += 1
                except (OSError, TimeoutError) as exc:
                    answers[type(exc).__name__] += 1
                await asyncio.sleep(0.5)
            return answers

        holders = [asyncio.ensure_future(slow()) for _ in range(count)]
        await asyncio.sleep(1.0)  # the slots fill first
        answers = await probe()
        await bounded_gather(holders, limit=15)
        logs = s.log_summary()
    ok, probes = answers["HTTP 200"], sum(answers.values())
    return row("5b", f"{count} half HTTP heads re-opened as closed for {duration:g} s; /healthz every 0.5 s",
               "/healthz probes answered 200", f"{ok} of {probes} ({dict(answers)}); {opened} heads opened",
               probes=dict(answers), heads_opened=opened, service_log=logs)


class HugeAnswerProxy:
    """Forwards KimVoice requests to the sandbox; answers GetKeyHolders with a huge body instead."""

    def __init__(self, upstream: int, size: int, limit_s: float) -> None:
        self.upstream, self.size, self.limit_s = upstream, size, limit_s
        self.sent = 0
        self.huge_answers = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, HOST, 0, limit=1 << 16)
        return f"http://{HOST}:{self.server.sockets[0].getsockname()[1]}"

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for _ in range(1000):  # keep-alive, bounded
                async with asyncio.timeout(60):
                    head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                length = next((int(v) for k, _, v in (ln.partition(":") for ln in lines[1:])
                               if k.strip().lower() == "content-length"), 0)
                body = await reader.readexactly(length) if length else b""
                if "getkeyholders" in lines[0].lower():
                    await self._huge(writer)
                    return
                kept = [ln for ln in lines[1:] if ln and not ln.lower().startswith(("connection:", "keep-alive:"))]
                async with asyncio.timeout(30):
                    up_reader, up_writer = await asyncio.open_connection(HOST, self.upstream)
                    upstream_head = "\r\n".join([lines[0], *kept, "Connection: close", "", ""])
                    up_writer.write(upstream_head.encode("latin-1") + body)
                    answer = await up_reader.read(-1)
                    up_writer.close()
                writer.write(answer)  # says `connection: close`: the client opens a new one next time
                await writer.drain()
                return
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            return
        finally:
            writer.close()

    async def _huge(self, writer: asyncio.StreamWriter) -> None:
        self.huge_answers += 1
        prefix, suffix = b'{"keyHolders":[{"name":"', b'"}]}'
        chunk = b"A" * (1 << 20)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {self.size}\r\n\r\n".encode() + prefix)
        left = self.size - len(prefix) - len(suffix)
        deadline = time.monotonic() + self.limit_s
        while left > 0 and time.monotonic() < deadline and not writer.is_closing():
            piece = chunk[: min(left, len(chunk))]
            writer.write(piece)
            await writer.drain()
            left -= len(piece)
            self.sent += len(piece)
        if left <= 0:
            writer.write(suffix)
            await writer.drain()
            self.sent += len(suffix) + len(prefix)


async def attack_6(h: Harness, options: argparse.Namespace) -> dict[str, Any]:
    """GetKeyHolders answers 300 MB; the service's peak RSS and what the caller heard."""
    size = options.huge_mb * 1_000_000
    proxy: HugeAnswerProxy | None = None

    async def through_proxy(sandbox_port: int) -> str:
        nonlocal proxy
        proxy = HugeAnswerProxy(sandbox_port, size, limit_s=120)
        return await proxy.start()

    try:
        async with h.system("huge-answer", kimvoice_url=through_proxy) as s:
            assert proxy is not None
            pid = s.service.pid
            idle = status_kb(pid, "VmRSS")
            with open(f"/proc/{pid}/clear_refs", "w") as f:  # noqa: ASYNC230  # procfs: VmHWM := VmRSS
                f.write("5")
            peak_sampled = idle
            task = asyncio.ensure_future(place(s, FULL_CALL, timeout=90))
            started = time.monotonic()
            while not task.done() and time.monotonic() - started < 100:
                with contextlib.suppress(OSError):
                    peak_sampled = max(peak_sampled, status_kb(pid, "VmRSS"))
                await asyncio.sleep(0.1)
            result = (await bounded_gather([task], 10))[0]
            wall = time.monotonic() - started
            hwm = status_kb(pid, "VmHWM") if s.service.process.poll() is None else None
            after = status_kb(pid, "VmRSS") if s.service.process.poll() is None else None
            logs = s.log_summary()
            sent, answers = proxy.sent, proxy.huge_answers
    finally:
        if proxy is not None:
            await proxy.close()
    peak = max(hwm or 0, peak_sampled)
    said = heard(result)
    prompts = result.transcript.prompts if not isinstance(result, BaseException) else []
    return row("6", f"GetKeyHolders answered with a {options.huge_mb} MB body",
               "service peak RSS over idle; what the caller heard",
               f"+{(peak - idle) / 1024:,.0f} MB (idle {idle / 1024:.0f} MB, peak {peak / 1024:,.0f} MB); "
               f"caller heard {said}; {sent / 1e6:,.0f} MB sent",
               rss_idle_kb=idle, rss_peak_kb=peak, vmhwm_kb=hwm, rss_after_kb=after, bytes_sent=sent,
               huge_answers=answers, wall_s=round(wall, 1), heard=said, prompts=prompts, service_log=logs)


async def attack_7(h: Harness, options: argparse.Namespace) -> dict[str, Any]:
    """The first GET DATA is answered with 5,000 digits."""
    from ivr.sim import ScriptedCaller, SimulatedChannel, agi_environment

    digits = options.flood_digits

    class FloodingChannel(SimulatedChannel):
        flooded = False

        async def _execute(self, argv: list[str]) -> str:  # the simulator's dispatcher
            if not self.flooded and [w.lower() for w in argv[:2]] == ["get", "data"]:
                self.flooded = True
                return "200 result=" + "7" * digits
            return await super()._execute(argv)

    async with h.system("digit-flood") as s:
        env = agi_environment("keybox", address=s.agi)
        reader, writer = await asyncio.open_connection(HOST, s.agi_port, limit=1 << 20)
        channel = FloodingChannel(reader, writer, caller=ScriptedCaller("!"), sounds=s.sounds, environment=env,
                                  timeout=CALL_TIMEOUT, close_wait=CLOSE_WAIT)
        transcript = await channel.run()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(2):
                await writer.wait_closed()
        records = await settled_records(s.data_dir, 1)
        await asyncio.sleep(0.5)
        logs = s.log_summary()
    clean = channel.closed_by_service and not any("gave up" in n for n in transcript.notes)
    return row("7", f"first GET DATA answered with {digits} digits",
               "connection end; call record; traceback in the service log",
               f"{'closed by the service' if clean else 'NOT closed cleanly'} after {transcript.prompts[-3:]}; "
               f"{len(records)} record ({', '.join(str(o) for _, o in records) or '-'}); "
               f"{logs['tracebacks']} traceback(s), {logs['error_lines']} error line(s)",
               closed_by_service=channel.closed_by_service, hung_up_by=transcript.hung_up_by,
               prompts=transcript.prompts, notes=transcript.notes, records=records, service_log=logs)


async def attack_8(h: Harness, options: argparse.Namespace) -> dict[str, Any]:
    """Two calls with one agi_uniqueid: a full update-code call, then one that hangs up."""
    unique = f"{int(time.time())}.4242"
    async with h.system("same-uniqueid") as s:
        first = await place(s, FULL_CALL, agi_env={"agi_uniqueid": unique})
        await settled_records(s.data_dir, 1)
        second = await place(s, "!", agi_env={"agi_uniqueid": unique})
        records = await settled_records(s.data_dir, 2)
        logs = s.log_summary()
    outcomes = [o for _, o in records]
    return row("8", "two calls with the same agi_uniqueid", "call records kept",
               f"{len(records)} of 2 kept ({', '.join(str(o) for o in outcomes)})",
               records=records, first_call=heard(first), second_call=heard(second), service_log=logs)


_SAMPLE = re.compile(r"^[a-z_]+(\{[^}]*\})?\s", re.MULTILINE)


async def attack_9(h: Harness, options: argparse.Namespace) -> dict[str, Any]:
    """5,000 FastAGI calls on made-up routes; /metrics before and after."""
    count, concurrency = options.routes, 50
    rng = random.Random(9)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_"
    routes = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(6, 33))) for _ in range(count)]

    async def metrics(s: System) -> tuple[int, int, int]:
        status, body = await http(s.http_port, "GET", "/metrics", timeout=30)
        if status != 200:
            raise RuntimeError(f"/metrics answered HTTP {status}")
        text = body.decode(errors="replace")
        return len(text.splitlines()), len(_SAMPLE.findall(text)), len(body)

    async with h.system("made-up-routes") as s:
        lines0, samples0, bytes0 = await metrics(s)
        queue = iter(routes)
        outcomes: Counter[str] = Counter()
        started = time.monotonic()

        async def worker() -> None:
            for route in queue:
                if time.monotonic() - started > options.routes_seconds:
                    return
                result = await place(s, "!", route=route, timeout=10)
                outcomes["placed" if not isinstance(result, BaseException) else type(result).__name__] += 1

        await bounded_gather([worker() for _ in range(concurrency)], limit=options.routes_seconds + 30)
        wall = time.monotonic() - started
        await asyncio.sleep(0.5)
        lines1, samples1, bytes1 = await metrics(s)
        logs = s.log_summary()
    placed = sum(outcomes.values())
    return row("9", f"{placed} FastAGI calls on made-up routes", "/metrics lines before → after",
               f"{lines0:,} → {lines1:,} lines ({bytes0 / 1024:,.0f} → {bytes1 / 1024:,.0f} KB)",
               lines_before=lines0, lines_after=lines1, samples_before=samples0, samples_after=samples1,
               bytes_before=bytes0, bytes_after=bytes1, calls=dict(outcomes), wall_s=round(wall, 1), service_log=logs)


async def attack_10(h: Harness, options: argparse.Namespace) -> dict[str, Any]:
    """The caller hangs up 0.3 s into a 1 s ValidateKeyHolder: does GetUpdateCode still go out?"""
    from ivr.sim import InputRequest, SimulatedChannel, agi_environment

    latency, hang_after = 1.0, 0.3

    class Caller:
        channel: SimulatedChannel | None = None
        keys: ClassVar[dict[str, str]] = {"enter-key-number": f"{KEY}#", "enter-pin": f"{PIN}#"}

        def __init__(self, s: System) -> None:
            self.s = s
            self.hangup: asyncio.Task[None] | None = None

        async def keys_for(self, request: InputRequest) -> str | None:
            sound = (request.sound or "").rsplit("/", 1)[-1]
            if sound == "choose-code-type":
                await set_knobs(self.s, latency=latency)  # only from now on: HealthCheck's 2 s deadline
                self.hangup = asyncio.ensure_future(self._hang_up_soon())
                return "1"
            return self.keys.get(sound)  # anything else: hang up

        async def _hang_up_soon(self) -> None:
            await asyncio.sleep(hang_after)
            assert self.channel is not None
            await self.channel._caller_hangs_up_between_commands()  # Asterisk's unsolicited HANGUP line

        def hangup_on(self, sound: str) -> bool:
            return False

        def hangup_after(self, sound: str) -> float | None:  # newer simulators ask this too
            return None

        def observe(self, event: Any) -> None:
            pass

    async with h.system("hangup-in-flight") as s:
        before = await sandbox_requests(s)
        caller = Caller(s)
        env = agi_environment("keybox", address=s.agi)
        reader, writer = await asyncio.open_connection(HOST, s.agi_port)
        channel = SimulatedChannel(reader, writer, caller=caller, sounds=s.sounds, environment=env,
                                   timeout=CALL_TIMEOUT, close_wait=CLOSE_WAIT)
        caller.channel = channel
        transcript = await channel.run()
        await asyncio.sleep(2 * latency + 1)  # whatever the service still sends arrives meanwhile
        after = await sandbox_requests(s)
        logs = s.log_summary()
    delta = {m: after[m] - before[m] for m in ("ValidateKeyHolder", "GetUpdateCode")}
    sent = delta["GetUpdateCode"] > 0
    return row("10", f"hang-up {hang_after:g} s into ValidateKeyHolder (sandbox latency {latency:g} s)",
               "did the sandbox then receive GetUpdateCode",
               f"{'yes' if sent else 'no'} ({delta['ValidateKeyHolder']} ValidateKeyHolder, "
               f"{delta['GetUpdateCode']} GetUpdateCode)",
               requests=delta, get_update_code_sent=sent, prompts=transcript.prompts,
               hung_up_by=transcript.hung_up_by, notes=transcript.notes, service_log=logs)


async def attack_11(h: Harness, options: argparse.Namespace) -> dict[str, Any]:
    """100 /healthz probes at once, then 100 one after another."""
    n = options.probes
    async with h.system("healthz") as s:
        await asyncio.sleep(1.0)  # readiness probes behind us
        base = await sandbox_requests(s)
        burst = await bounded_gather([http(s.http_port, "GET", "/healthz") for _ in range(n)], limit=60)
        mid = await sandbox_requests(s)
        serial = []
        for _ in range(n):
            serial.append((await bounded_gather([http(s.http_port, "GET", "/healthz")], 10))[0])
        end = await sandbox_requests(s)
        logs = s.log_summary()
    burst_hc = mid["HealthCheck"] - base["HealthCheck"]
    serial_hc = end["HealthCheck"] - mid["HealthCheck"]

    def answers(results: list[Any]) -> dict[str, int]:
        return dict(Counter(f"HTTP {r[0]}" if isinstance(r, tuple) else type(r).__name__ for r in results))

    return row("11", f"{n} /healthz probes at once, then {n} one after another",
               "HealthCheck requests the sandbox received",
               f"{burst_hc} (at once) / {serial_hc} (one by one); answers {answers(burst)} / {answers(serial)}",
               at_once=burst_hc, one_by_one=serial_hc, answers_at_once=answers(burst),
               answers_one_by_one=answers(serial), service_log=logs)


async def attack_12(h: Harness, options: argparse.Namespace) -> dict[str, Any]:
    """150 update-code calls, 4 at a time, while the sandbox revokes every token every 50 ms."""
    calls, concurrency = options.churn_calls, REAL_CALLS_AT_ONCE
    async with h.system("token-churn") as s:
        before = await sandbox_requests(s)
        stop = asyncio.Event()
        revocations = 0

        async def revoker() -> None:
            nonlocal revocations
            for _ in range(10_000):
                if stop.is_set():
                    return
                with contextlib.suppress(OSError, TimeoutError):
                    await http(s.sandbox_port, "POST", "/sandbox/revoke-tokens", timeout=5)
                    revocations += 1
                await asyncio.sleep(0.05)

        churn = asyncio.ensure_future(revoker())
        outcomes: Counter[str] = Counter()
        queue = iter(range(calls))

        async def worker() -> None:
            for _ in queue:
                outcomes[heard(await place(s, FULL_CALL))] += 1

        started = time.monotonic()
        await bounded_gather([worker() for _ in range(concurrency)], limit=180)
        wall = time.monotonic() - started
        stop.set()
        await bounded_gather([churn], 10)
        after = await sandbox_requests(s)
        logs = s.log_summary()
    done = sum(outcomes.values())
    failed = done - outcomes["update code read"]
    requests = {m: after[m] - before[m] for m in after}
    return row("12", f"{calls} update-code calls while tokens are revoked every 50 ms",
               "calls that failed", f"{failed} of {done}",
               failed=failed, calls=done, outcomes=dict(outcomes.most_common()), revocations=revocations,
               sandbox_requests=requests, wall_s=round(wall, 1), service_log=logs)


async def attack_13(h: Harness, options: argparse.Namespace, one_caller: bool) -> dict[str, Any]:
    """Not an attack: 20 right-PIN calls at once on key 123456, then one more."""
    n = 20
    async with h.system("right-pins-at-once") as s:
        results = await bounded_gather(
            [place(s, FULL_CALL, caller_id="+15555550100" if one_caller else f"+1555{i:07d}") for i in range(n)], 60)
        later = await place(s, FULL_CALL, caller_id="+15550009999")
        logs = s.log_summary()
    outcomes = Counter(heard(r) for r in results)
    ids = "all from one caller id" if one_caller else "a caller id each"
    return row("13b" if one_caller else "13", f"{n} right-PIN calls at once on one key ({ids}), then one more",
               "calls that got their code; the call after", f"{outcomes['update code read']} of {n}; "
               f"the next call: {heard(later)}", outcomes=dict(outcomes.most_common()), next_call=heard(later),
               service_log=logs)


ATTACKS: dict[str, Callable[[Harness, argparse.Namespace], Awaitable[dict[str, Any]]]] = {
    "1a": lambda h, o: attack_1(h, o, one_caller=False),
    "1b": lambda h, o: attack_1(h, o, one_caller=True),
    "2": lambda h, o: spray(h, o, "2", withheld=True),
    "3": lambda h, o: spray(h, o, "3", withheld=False),
    "4": attack_4,
    "5": attack_5,
    "5b": attack_5b,
    "6": attack_6,
    "7": attack_7,
    "8": attack_8,
    "9": attack_9,
    "10": attack_10,
    "11": attack_11,
    "12": attack_12,
    "13": lambda h, o: attack_13(h, o, one_caller=False),
    "13b": lambda h, o: attack_13(h, o, one_caller=True),
}


# -- main ----------------------------------------------------------------------------------


async def run(options: argparse.Namespace, tree: Tree) -> list[dict[str, Any]]:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    harness = Harness(tree, options.keep)
    rows: list[dict[str, Any]] = []
    print(f"{'attack':<7}| {'what was measured':<62}| figure", flush=True)
    for number in options.only:
        started = time.monotonic()
        try:
            result = await ATTACKS[number](harness, options)
        except Exception as exc:  # noqa: BLE001  # one attack failing must not lose the others' figures
            result = row(number, "(the attack did not run to its end)", "-",
                         f"harness error: {type(exc).__name__}: {str(exc)[:300]}")
        finally:
            harness.stop_all()
        result["seconds"] = round(time.monotonic() - started, 1)
        rows.append(result)
        print(f"{number:<7}| {result['measured'][:62]:<62}| {result['figure']}", flush=True)
        logs = result["details"].get("service_log")
        if logs and (logs["tracebacks"] or logs["error_lines"] or logs["exit_code"] not in (None, 0)):
            print(f"{'':7}|   service log: {logs['tracebacks']} traceback(s), {logs['error_lines']} error line(s) "
                  f"{logs['errors_by_event']}, exit {logs['exit_code']}", flush=True)
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tree", type=Path, default=REPO, help="the code tree to run ivr from (default: this repository)")
    p.add_argument("--sim-tree", type=Path, default=REPO, help="where the attacking side imports ivr.sim from")
    p.add_argument("--out", type=Path, help="write the figures as JSON here")
    p.add_argument("--only", default=",".join(ATTACKS), help=f"attacks to run, comma-separated ({','.join(ATTACKS)})")
    p.add_argument("--guesses", type=int, default=500, help="attack 1: concurrent calls (default 500)")
    p.add_argument("--spray-seconds", type=float, default=30.0, help="attacks 2, 3: seconds (default 30)")
    p.add_argument("--spray-callers", type=int, default=50, help="attacks 2, 3: concurrent callers (default 50)")
    p.add_argument("--silent-sockets", type=int, default=1001, help="attack 4 (default 1001)")
    p.add_argument("--slow-connections", type=int, default=1500, help="attack 5 (default 1500)")
    p.add_argument("--slow-hold", type=float, default=70.0, help="attack 5: second count, seconds (default 70)")
    p.add_argument("--reopen-heads", type=int, default=200, help="attack 5b: half heads kept open (default 200)")
    p.add_argument("--huge-mb", type=int, default=300, help="attack 6: body size, MB (default 300)")
    p.add_argument("--flood-digits", type=int, default=5000, help="attack 7 (default 5000)")
    p.add_argument("--routes", type=int, default=5000, help="attack 9: calls (default 5000)")
    p.add_argument("--routes-seconds", type=float, default=150.0, help="attack 9: time limit (default 150)")
    p.add_argument("--probes", type=int, default=100, help="attack 11 (default 100)")
    p.add_argument("--churn-calls", type=int, default=150, help="attack 12 (default 150)")
    p.add_argument("--env", action="append", default=[], metavar="IVR_X=v",
                   help="more settings for every service (e.g. to override IVR_AGI_ENV_TIMEOUT)")
    p.add_argument("--keep", action="store_true", help="keep each attack's work directory (logs, database)")
    options = p.parse_args(argv)
    options.only = [a.strip() for a in options.only.split(",") if a.strip()]
    unknown = [a for a in options.only if a not in ATTACKS]
    if unknown:
        p.error(f"unknown attacks {unknown}; known: {list(ATTACKS)}")
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    sim_tree = options.sim_tree.resolve()
    sys.path.insert(0, str(sim_tree))
    import ivr

    if not _inside(ivr.__file__, sim_tree):
        print(f"warning: the attacking side imports ivr from {ivr.__file__}, not {sim_tree}", file=sys.stderr)
    for item in options.env:
        name, _, value = item.partition("=")
        NEW_SETTINGS[name] = value
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tree = Tree.probe(options.tree)
    print(f"tree {tree.path} at {tree.commit[:12]} ({tree.changed_files} tracked files changed); "
          f"children import ivr from {tree.ivr_file} via {' '.join(tree.launcher[1:])[:60]}")
    print(f"attacking side imports ivr.sim from {Path(ivr.__file__).parent}")
    started = dt.datetime.now(dt.UTC)
    try:
        rows = asyncio.run(run(options, tree))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; child processes stopped", file=sys.stderr)
        return 130
    if options.out:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        options.out.write_text(json.dumps({
            "tree": str(tree.path), "commit": tree.commit, "tracked_files_changed": tree.changed_files,
            "child_ivr_file": tree.ivr_file, "sim_ivr_file": ivr.__file__, "launcher": tree.launcher,
            "settings_passed": NEW_SETTINGS,
            "started": started.isoformat(timespec="seconds"), "cpus": os.cpu_count(),
            "python": sys.version.split()[0], "attacks": rows,
        }, indent=2, default=str))
        print(f"wrote {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
