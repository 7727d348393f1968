"""Load harness: simulated Asterisk callers placing complete update-code calls on loopback.

It starts the system under test as separate processes -- the KimVoice sandbox (`ivr sandbox`)
and `ivr serve` pointed at it, or the bare FastAGI responder (`--target bare`) -- waits until
they answer, then runs N simulated callers (`ivr.sim.place_call`) from this process, on one
asyncio loop, and prints what the service did. Everything stays on 127.0.0.1; the child
processes are stopped on exit, Ctrl-C and errors (and die with the harness if it is killed).

Transports:
  agi       the callers are Asterisk over FastAGI (the default)
  pivot     the callers are Kazoo's pivot module (`ivr.sim.place_pivot_call`) requesting the
            service's HTTP listener, over one pooled httpx client; the service gets a secret made
            for the run and the listener's limits an operator would set. Each call's records are
            checked once the service has stopped. --compare-agi runs the same load over FastAGI
            first, checked the same way, and prints the ratios.

Modes:
  capacity  N callers, no think time, each placing calls back to back for --duration seconds
  paced     N callers, each pausing uniformly --think seconds (1-3) before every answer; each
            places --calls-per-caller calls, or calls back to back for --duration when given

Examples (see benchmarks/README.md for what every figure means):
  python3 benchmarks/load.py --mode capacity --concurrency 64 --duration 12 --compare-bare
  python3 benchmarks/load.py --mode paced --concurrency 2000 --duration 30 --compare-bare
  python3 benchmarks/load.py --mode capacity --concurrency 64 --duration 12 --py-spy /tmp/prof
  python3 benchmarks/load.py --transport pivot --mode capacity --concurrency 64 --compare-agi
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import gzip
import json
import logging
import math
import os
import random
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
if str(PROJECT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(PROJECT))

from benchmarks._children import (  # PROJECT is on sys.path whether run as a script or with -m
    HOST,
    Child,
    Children,
    die_with_parent,
    free_port,
    http,
    status_kb,
    temporary_children,
    wait_ready,
)
from ivr.backends.kimvoice._transport import KeepAliveTransport  # the O(1) pool; see kazoo_client
from ivr.backends.kimvoice.sandbox import update_code_for
from ivr.catalog import PromptCatalog, default_prompts_dir
from ivr.records import Outcome
from ivr.sim import (
    KAZOO_REQUEST_TIMEOUT,
    CallResult,
    PivotCallResult,
    ScriptedCaller,
    SoundLibrary,
    place_call,
    place_pivot_call,
)
from ivr.store import SqliteStore
from ivr.tts import TtsCache

KEYS = "123456#2580#19"  # the sandbox's test key 123456, PIN 2580, update code (1), end (9)
KEY, MEMBER, POD = 123456, 5001, 1  # what the sandbox knows of it: primary and update member, pod
BARE_CODE = "2198067"  # what bare_responder.py reads out
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

READY_TIMEOUT = 30.0
CALL_TIMEOUT = 30.0  # bound on one call's service time, think time excluded
CLOSE_WAIT = 5.0
SAMPLE_EVERY = 0.25  # seconds between RSS / concurrency samples
STOP_WAIT = 30.0  # bound on the service's drain and exit before its records are read
TRANSPORT_NAMES = {"agi": "FastAGI", "pivot": "Kazoo Pivot"}
KEEPALIVE_EXPIRY = 20.0  # Kazoo's idle connections: closed before the listener's 30 s keep-alive does


# -- the system under test -----------------------------------------------------------------


@dataclass
class System:
    target: str
    agi_port: int
    service: Child
    sandbox: Child | None = None
    http_port: int | None = None
    data_dir: Path | None = None
    transport: str = "agi"
    pivot_secret: str = ""
    client: httpx.AsyncClient | None = None  # Kazoo's side: every pivot request of the run
    sandbox_port: int | None = None  # the KimVoice sandbox's /sandbox/knobs and /sandbox/stats


def pivot_service_env(concurrency: int) -> dict[str, str]:
    """What an operator sets for a service that one Kazoo node (here the harness, on 127.0.0.1)
    calls with up to `concurrency` calls at once.

    The secret is made for this run. The HTTP listener keeps at most IVR_HTTP_MAX_CONNECTIONS
    open, and a quarter of them per peer address: past that a new connection evicts an idle one
    of the same peer or is closed. Kazoo's node is one peer holding one connection per request in
    flight, so the cap is 4 x the calls plus room for /healthz and /metrics. IVR_MAX_CALLS
    bounds flows in progress: a caller hanging up and calling again may briefly hold two.
    IVR_HTTP_ALLOW and IVR_KAZOO_PIVOT_ALLOW name the node itself, not the default 127.0.0.0/8.
    """
    return {
        "IVR_KAZOO_PIVOT_SECRET": secrets.token_urlsafe(24),
        "IVR_HTTP_MAX_CONNECTIONS": str(min(10_000, max(256, 4 * (concurrency + 16)))),
        "IVR_MAX_CALLS": str(max(1000, 2 * concurrency)),
        "IVR_HTTP_ALLOW": f"{HOST}/32",
        "IVR_KAZOO_PIVOT_ALLOW": f"{HOST}/32",
    }


def kazoo_client(concurrency: int, pool: str) -> httpx.AsyncClient:
    """Kazoo's HTTP client: one connection per call at most, so that no request waits for the
    pool, each kept alive between requests for less than the listener's keep-alive (30 s).

    `pool` `keepalive` is the KimVoice client's O(1) transport; `httpcore` is httpx's default,
    whose pool scans every connection, with a `poll()` each, on every request and response
    (encode/httpcore#1035): at 64 concurrent pivot calls that scan, not the service, was the
    limit (README, Kazoo Pivot).
    """
    timeout = KAZOO_REQUEST_TIMEOUT + 1
    if pool == "httpcore":
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency,
                              keepalive_expiry=KEEPALIVE_EXPIRY)
        return httpx.AsyncClient(trust_env=False, limits=limits, timeout=timeout)
    transport = KeepAliveTransport(max_connections=concurrency, keepalive_expiry=KEEPALIVE_EXPIRY)
    return httpx.AsyncClient(trust_env=False, transport=transport, timeout=timeout)


async def start_system(target: str, children: Children, env_extra: dict[str, str],
                       options: argparse.Namespace) -> System:
    env = {**os.environ, "IVR_LOG_LEVEL": "warning", "IVR_LOG_FORMAT": "json", **env_extra}
    agi_port = free_port()
    if target == "bare":
        child = children.start("bare", [sys.executable, str(HERE / "bare_responder.py"),
                                        "--host", HOST, "--port", str(agi_port)], env)
        await wait_ready(child, agi_port, None, timeout=READY_TIMEOUT)
        return System(target, agi_port, child)
    sandbox_port, http_port = free_port(), free_port()
    data_dir = children.workdir / "data"
    sandbox = children.start("sandbox", [sys.executable, "-m", "ivr", "sandbox", "--host", HOST,
                                         "--port", str(sandbox_port)], env)
    await wait_ready(sandbox, sandbox_port, "/sandbox/knobs", timeout=READY_TIMEOUT)
    service_env = env | {
        "IVR_KIMVOICE_URL": f"http://{HOST}:{sandbox_port}",
        "IVR_AGI_HOST": HOST, "IVR_AGI_PORT": str(agi_port),
        "IVR_HTTP_HOST": HOST, "IVR_HTTP_PORT": str(http_port),
        "IVR_DATA_DIR": str(data_dir),
        "IVR_DRAIN_SECONDS": env_extra.get("IVR_DRAIN_SECONDS", "2"),
    }
    argv = [sys.executable, "-m", "ivr", "serve"]
    if options.variant or options.cprofile:
        argv = [sys.executable, str(HERE / "serve_variant.py")]
        argv += ["--patch", options.variant] if options.variant else []
        argv += ["--cprofile", str(Path(options.cprofile).resolve())] if options.cprofile else []
    service = children.start("service", argv, service_env)
    await wait_ready(service, http_port, "/healthz", timeout=READY_TIMEOUT)
    return System(target, agi_port, service, sandbox, http_port, data_dir,
                  pivot_secret=service_env.get("IVR_KAZOO_PIVOT_SECRET", ""), sandbox_port=sandbox_port)


# -- /proc ---------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds of the main thread (tid = pid) and of all other threads together."""
    out = {"main": 0.0, "other threads": 0.0}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            out["main" if int(tid) == pid else "other threads"] += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0; needs to be allowed to write clear_refs)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_cpu() -> float:
    """CPU seconds the whole machine spent busy (all CPUs; steal included: the host took them)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


_METRIC = re.compile(r'^(ivr_backend_seconds_(?:sum|count)|ivr_calls_total)\{([^}]*)\}\s+(\S+)$', re.MULTILINE)


async def backend_metrics(system: System) -> dict[str, float]:
    """Sums over labels of ivr_backend_seconds_sum/_count and ivr_calls_total, from /metrics."""
    if system.http_port is None:
        return {}
    status, body = await http(system.http_port, "GET", "/metrics", timeout=10.0)
    if status != 200:
        return {}
    totals: Counter[str] = Counter()
    for name, labels, value in _METRIC.findall(body.decode("utf-8", errors="replace")):
        totals[name] += float(value)
        if name == "ivr_backend_seconds_sum":
            method = re.search(r'method="([^"]*)"', labels)
            totals[f"sum:{method[1] if method else '?'}"] += float(value)
        if name == "ivr_backend_seconds_count":
            method = re.search(r'method="([^"]*)"', labels)
            totals[f"count:{method[1] if method else '?'}"] += float(value)
    return dict(totals)


# -- the callers ---------------------------------------------------------------------------


@dataclass
class Tally:
    completed: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    in_progress: int = 0
    peak_in_progress: int = 0
    turnarounds: array = field(default_factory=lambda: array("d"))
    ramp_samples: int = 0  # how many turnarounds were measured before the ramp ended
    ramp_over: bool = False
    # Pivot: a call's request times come when it ends, so "after the ramp" is the requests of the
    # calls that started once every caller had started.
    steady_requests: array = field(default_factory=lambda: array("d"))
    requests: int = 0  # pivot requests, answered or not
    call_times: array = field(default_factory=lambda: array("d"))  # per completed call: its service time
    placed: list[tuple[str, bool]] = field(default_factory=list)  # call id, completed


class _Summed:
    """Turnarounds kept in `into` as they come, and their sum: one call's service time."""

    def __init__(self, into: array) -> None:
        self.into = into
        self.total = 0.0

    def append(self, seconds: float) -> None:
        self.into.append(seconds)
        self.total += seconds


def expected_codes(target: str) -> set[str]:
    if target == "bare":
        return {BARE_CODE}
    today = dt.datetime.now(dt.UTC).date()
    days = (today + dt.timedelta(days=d) for d in (-1, 0, 1))  # a run may cross midnight UTC
    return {update_code_for(KEY, MEMBER, MEMBER, POD, day.isoformat()) for day in days}


def why_failed(result: CallResult | PivotCallResult, codes: set[str]) -> str | None:
    """None for the expected outcome: the update code read, the service hung up and closed (over
    FastAGI) or answered `hangup` (over Pivot: a failed request is a note, `pivot failed`)."""
    transcript = result.transcript
    if transcript.missing:
        return f"missing sound {transcript.missing[0]}"
    if "system-unavailable" in transcript.prompts:
        return "system-unavailable played (backend failed)"
    if len(transcript.said_digits) != 1 or transcript.said_digits[0] not in codes:
        first = transcript.notes[0] if transcript.notes else f"prompts {transcript.prompts[-3:]}"
        return f"no update code read ({_generic(first)})"
    if transcript.notes:
        return _generic(transcript.notes[0])
    if transcript.hung_up_by != "service":
        return f"hung up by {transcript.hung_up_by}"
    if isinstance(result, PivotCallResult):
        return None if result.ended_by == "service" else f"ended by {result.ended_by}"
    if not result.closed_by_service:
        return "service did not close the connection"
    return None


def _generic(text: str) -> str:
    return re.sub(r"\d+(\.\d+)?", "N", text)[:120]


async def one_call(system: System, sounds: SoundLibrary, codes: set[str], tally: Tally,
                   think: tuple[float, float] | None, rng: random.Random) -> CallResult | PivotCallResult | None:
    """Place one call and count it in `tally`; its result, or None when it could not connect."""
    caller = ScriptedCaller(KEYS, think=(lambda: rng.uniform(*think)) if think else None)
    timeout = CALL_TIMEOUT + (4 * think[1] if think else 0.0)
    tally.in_progress += 1
    tally.peak_in_progress = max(tally.peak_in_progress, tally.in_progress)
    result: CallResult | PivotCallResult
    after_ramp = tally.ramp_over
    try:
        if system.transport == "pivot":
            assert system.client is not None
            result = await place_pivot_call(f"http://{HOST}:{system.http_port}", "keybox",
                                            secret=system.pivot_secret, caller=caller, sounds=sounds,
                                            client=system.client, timeout=timeout)
            tally.turnarounds.extend(result.answer_seconds)
            if after_ramp:
                tally.steady_requests.extend(result.answer_seconds)
            tally.requests += result.requests
            service_time = sum(result.answer_seconds)
        else:
            summed = _Summed(tally.turnarounds)
            result = await place_call(f"{HOST}:{system.agi_port}", "keybox", caller=caller, sounds=sounds,
                                      turnarounds=summed,  # type: ignore[arg-type]  # only .append is used
                                      timeout=timeout, close_wait=CLOSE_WAIT)
            service_time = summed.total
    except (OSError, TimeoutError) as exc:
        tally.failed[f"connect failed: {type(exc).__name__} {_generic(str(exc))}".strip()] += 1
        return None
    finally:
        tally.in_progress -= 1
    reason = why_failed(result, codes)
    tally.placed.append((result.unique_id, reason is None))
    if reason is None:
        tally.completed += 1
        tally.call_times.append(service_time)
    else:
        tally.failed[reason] += 1
    return result


OnCall = Callable[[int, CallResult | PivotCallResult | None], None]
"""Told of every call as it ends: the caller's index and `one_call`'s result."""


async def run_callers(system: System, sounds: SoundLibrary, *, concurrency: int, duration: float | None,
                      calls_per_caller: int, think: tuple[float, float] | None, ramp: float,
                      tally: Tally, seed: int, on_call: OnCall | None = None) -> float:
    """Run the callers; return the wall seconds from the first call to the last one's end."""
    loop = asyncio.get_running_loop()
    codes = expected_codes(system.target)
    started = loop.time()
    end = started + ramp + duration if duration is not None else None
    max_calls = calls_per_caller if end is None else 10**9  # back to back: the time limit bounds it

    async def caller(index: int) -> None:
        rng = random.Random(seed * 1_000_003 + index)
        await asyncio.sleep(ramp * index / concurrency)
        for _ in range(max_calls):
            if end is not None and loop.time() >= end:
                return
            try:
                result = await one_call(system, sounds, codes, tally, think, rng)
                if on_call is not None:
                    on_call(index, result)
            except Exception as exc:  # noqa: BLE001  # a harness bug must not hide the others' figures
                tally.failed[f"harness error {type(exc).__name__}: {_generic(str(exc))}"] += 1

    # The whole run is bounded: ramp + duration (or the calls) + one call's longest time.
    per_call = CALL_TIMEOUT + CLOSE_WAIT + 2 + (4 * think[1] if think else 0.0)
    limit = ramp + (duration if duration is not None else per_call * calls_per_caller) + per_call + 10
    tasks = [loop.create_task(caller(i)) for i in range(concurrency)]

    def ramp_ended() -> None:
        tally.ramp_samples, tally.ramp_over = len(tally.turnarounds), True

    ramp_end = loop.call_later(ramp, ramp_ended)
    try:
        async with asyncio.timeout(limit):
            await asyncio.gather(*tasks)
    except TimeoutError:
        tally.failed["harness time limit reached (calls cancelled)"] += sum(not t.done() for t in tasks)
    finally:
        ramp_end.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return loop.time() - started


# -- one measured run ----------------------------------------------------------------------


def _percentile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def percentiles_ms(ordered: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 and max of sorted seconds, in milliseconds (NaN when there are none)."""
    return {q: round(1000 * _percentile(ordered, v), 3) for q, v in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))} | {
        "max": round(1000 * ordered[-1], 3) if ordered else float("nan")}


async def _snapshot(system: System, pid: int) -> dict[str, object]:
    """CPU seconds of each process and the service's backend metrics, taken before and after a run."""
    return {
        "service_cpu": cpu_seconds(pid),
        "service_threads": thread_cpu_seconds(pid),
        "sandbox_cpu": cpu_seconds(system.sandbox.pid) if system.sandbox else 0.0,
        "harness_cpu": own_cpu(),
        "machine_cpu": machine_cpu(),
        "metrics": await backend_metrics(system),
    }


async def _sample(system: System, tally: Tally, peaks: dict[str, float], stop: asyncio.Event) -> None:
    rss_sum = conc_sum = samples = 0
    while not stop.is_set():
        with contextlib.suppress(OSError):
            rss = status_kb(system.service.pid, "VmRSS")
            peaks["rss_max_kb"] = max(peaks.get("rss_max_kb", 0), rss)
            rss_sum += rss
            conc_sum += tally.in_progress
            samples += 1
            if system.sandbox is not None:
                peaks["sandbox_rss_max_kb"] = max(peaks.get("sandbox_rss_max_kb", 0),
                                                  status_kb(system.sandbox.pid, "VmRSS"))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_EVERY)
    if samples:
        peaks["rss_mean_kb"] = rss_sum / samples
        peaks["concurrency_mean"] = conc_sum / samples


def _py_spy(pid: int, out: Path, duration: float) -> subprocess.Popen[bytes] | None:
    exe = shutil.which("py-spy")
    if exe is None:
        print("py-spy not found (pip install py-spy); no profile", file=sys.stderr)
        return None
    return subprocess.Popen(
        [exe, "record", "--pid", str(pid), "--format", "raw", "--rate", "200", "--nonblocking", "--threads",
         "--duration", str(max(1, int(duration))), "--output", str(out)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,  # noqa: PLW1509  # one prctl call; the harness starts no threads
    )


def run_name(target: str, transport: str) -> str:
    """What names a run's files: the target, and the transport when it is not FastAGI."""
    return target if transport == "agi" else f"{target}-{transport}"


async def stop_service(system: System) -> int:
    """SIGTERM the service and wait for its drain (which writes the last records); its exit code."""
    process = system.service.process
    process.terminate()
    try:
        return await asyncio.to_thread(process.wait, STOP_WAIT)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"the service did not stop within {STOP_WAIT:g} s; records not checked") from None


async def read_records(system: System) -> dict[str, list[str]]:
    """The outcomes recorded for each call id, from the stopped service's SQLite store."""
    assert system.data_dir is not None
    store = await SqliteStore.open(system.data_dir / "calls.db")
    try:
        records = await store.recent(limit=2**62)
    finally:
        await store.close()
    outcomes: dict[str, list[str]] = {}
    for record in records:
        outcomes.setdefault(record.call_id, []).append(record.outcome.value if record.outcome else "none")
    return outcomes


async def check_records(system: System, placed: list[tuple[str, bool]]) -> dict[str, Any]:
    """Stop the service, then count the records of every call placed: each must have exactly one,
    and a call that heard its code `update_code_read`."""
    await stop_service(system)
    outcomes = await read_records(system)
    problems: Counter[str] = Counter()
    for call_id, completed in placed:
        found = outcomes.get(call_id, [])
        if len(found) != 1:
            problems[f"{len(found)} records"] += 1
        elif completed and found[0] != Outcome.UPDATE_CODE_READ.value:
            problems[f"code read but recorded {found[0]}"] += 1
    return {"calls": len(placed), "one_record": sum(len(outcomes.get(c, ())) == 1 for c, _ in placed),
            "problems": dict(problems.most_common())}


async def measure(target: str, transport: str, options: argparse.Namespace,
                  service_env: dict[str, str]) -> dict[str, Any]:
    prefix = f"ivr-load-{target}-" + ("" if transport == "agi" else f"{transport}-")
    with temporary_children(prefix, options.keep) as children:
        client = kazoo_client(options.concurrency, options.kazoo_pool) if transport == "pivot" else None
        try:
            return await _measure(target, transport, options, children, service_env, client)
        finally:
            if client is not None:
                await client.aclose()


async def _measure(target: str, transport: str, options: argparse.Namespace, children: Children,
                   service_env: dict[str, str], client: httpx.AsyncClient | None) -> dict[str, Any]:
    env_extra = service_env | dict(item.split("=", 1) for item in options.env)
    system = await start_system(target, children, env_extra, options)
    system.transport, system.client = transport, client
    checked = options.transport == "pivot"  # the FastAGI run of --compare-agi too: the same figures
    catalog = PromptCatalog.load(default_prompts_dir())
    assert transport != "pivot" or system.data_dir is not None, "pivot: the digits' names come from its key"
    sounds = SoundLibrary(catalog, TtsCache(system.data_dir / "tts") if system.data_dir else None)
    think = (options.think_min, options.think_max) if options.mode == "paced" else None
    concurrency = options.concurrency

    # Warm-up: the token, the TTS render, a few pooled HTTP connections, the code paths.
    warm = Tally()
    await run_callers(system, sounds, concurrency=min(concurrency, options.warmup), duration=None,
                      calls_per_caller=2, think=None, ramp=0.0, tally=warm, seed=0)
    if warm.failed:
        raise RuntimeError(f"warm-up calls failed: {dict(warm.failed)}\n{system.service.tail()}")
    await asyncio.sleep(0.5)
    pid = system.service.pid
    idle_rss = status_kb(pid, "VmRSS")
    hwm_reset = reset_peak_rss(pid)
    before = await _snapshot(system, pid)

    tally = Tally()
    peaks: dict[str, float] = {}
    stop = asyncio.Event()
    sampler = asyncio.get_running_loop().create_task(_sample(system, tally, peaks, stop))
    ramp = options.ramp if options.ramp is not None else (concurrency / 500 if options.mode == "paced" else 0.0)
    duration = options.duration if (options.mode == "capacity" or options.duration) else None
    spy = None
    if options.py_spy:
        Path(options.py_spy).mkdir(parents=True, exist_ok=True)
        profile = Path(options.py_spy) / f"{run_name(target, transport)}-{options.mode}-{concurrency}.raw"
        spy = _py_spy(pid, profile, ramp + (duration or 10))
    wall = await run_callers(system, sounds, concurrency=concurrency, duration=duration,
                             calls_per_caller=options.calls_per_caller, think=think, ramp=ramp,
                             tally=tally, seed=options.seed)
    stop.set()
    await sampler
    after = await _snapshot(system, pid)
    hwm = status_kb(pid, "VmHWM")
    if spy is not None:
        try:
            spy.wait(ramp + (duration or 10) + 30)
        except subprocess.TimeoutExpired:
            spy.kill()
    records = await check_records(system, tally.placed) if checked else None

    ordered = sorted(tally.turnarounds)
    call_times = sorted(tally.call_times)
    if not ramp:
        steady = ordered
    elif transport == "pivot":
        steady = sorted(tally.steady_requests)
    else:
        steady = sorted(tally.turnarounds[tally.ramp_samples:])
    calls = tally.completed + sum(tally.failed.values())
    per_call = max(calls, 1)
    m0, m1 = before["metrics"], after["metrics"]
    backend_count = m1.get("ivr_backend_seconds_count", 0) - m0.get("ivr_backend_seconds_count", 0)
    backend_sum = m1.get("ivr_backend_seconds_sum", 0) - m0.get("ivr_backend_seconds_sum", 0)
    by_method = {
        key[4:]: round(
            1000 * (m1[key] - m0.get(key, 0)) / max(1, m1[f"count:{key[4:]}"] - m0.get(f"count:{key[4:]}", 0)), 2
        )
        for key in m1 if key.startswith("sum:")
    }
    # The RSS a call costs: use the concurrency the harness saw at its peak (at most N).
    held = max(1, min(concurrency, tally.peak_in_progress))
    peak_rss = max(hwm, int(peaks.get("rss_max_kb", 0))) if hwm_reset else int(peaks.get("rss_max_kb", hwm))
    return {
        "target": target,
        "transport": transport,
        "variant": options.variant if target != "bare" else None,
        "mode": options.mode,
        "concurrency": concurrency,
        "duration_s": duration,
        "ramp_s": ramp,
        "think_s": list(think) if think else None,
        "wall_s": round(wall, 2),
        "completed": tally.completed,
        "failed": sum(tally.failed.values()),
        "failures": dict(tally.failed.most_common()),
        "calls_per_s": round(tally.completed / wall, 1) if wall else 0.0,
        "commands": len(ordered),
        "commands_per_s": round(len(ordered) / wall, 1) if wall else 0.0,
        "turnaround_ms": {q: round(1000 * _percentile(ordered, v), 3)
                          for q, v in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))} | {
                              "max": round(1000 * ordered[-1], 3) if ordered else float("nan"),
                              "mean": round(1000 * sum(ordered) / len(ordered), 3) if ordered else float("nan")},
        "turnaround_after_ramp_ms": {q: round(1000 * _percentile(steady, v), 3)
                                     for q, v in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))} | {
                                         "max": round(1000 * steady[-1], 3) if steady else float("nan"),
                                         "commands": len(steady)},
        "requests_per_call": round(tally.requests / per_call, 2) if transport == "pivot" else None,
        "call_service_ms": percentiles_ms(call_times) if checked else None,
        "records": records,
        "backend": {
            "source": "service /metrics ivr_backend_seconds (client side: httpx + loopback + sandbox)",
            "requests_per_call": round(backend_count / per_call, 2),
            "mean_ms": round(1000 * backend_sum / backend_count, 2) if backend_count else None,
            "mean_ms_by_method": by_method,
            "share_of_turnaround": round(backend_sum / sum(ordered), 3) if ordered and backend_count else None,
        } if target != "bare" else None,
        "peak_concurrent_calls": tally.peak_in_progress,
        "mean_concurrent_calls": round(peaks.get("concurrency_mean", 0.0), 1),
        "rss_kb": {
            "idle": idle_rss,
            "peak_vmhwm": hwm,
            "peak_sampled": int(peaks.get("rss_max_kb", 0)),
            "mean_sampled": int(peaks.get("rss_mean_kb", 0)),
            "hwm_reset_after_warmup": hwm_reset,
            "per_concurrent_call": round((peak_rss - idle_rss) / held, 2),
        },
        "cpu_s": {
            "service": round(after["service_cpu"] - before["service_cpu"], 2),
            "service_per_call_ms": round(1000 * (after["service_cpu"] - before["service_cpu"]) / per_call, 3),
            "service_threads": {k: round(v - before["service_threads"].get(k, 0.0), 2)
                                for k, v in after["service_threads"].items()},
            "service_cores": round((after["service_cpu"] - before["service_cpu"]) / wall, 2) if wall else 0.0,
            "sandbox": round(after["sandbox_cpu"] - before["sandbox_cpu"], 2),
            "sandbox_per_call_ms": round(1000 * (after["sandbox_cpu"] - before["sandbox_cpu"]) / per_call, 3),
            "harness": round(after["harness_cpu"] - before["harness_cpu"], 2),
            "harness_per_call_ms": round(1000 * (after["harness_cpu"] - before["harness_cpu"]) / per_call, 3),
            "harness_cores": round((after["harness_cpu"] - before["harness_cpu"]) / wall, 2) if wall else 0.0,
            # the machine's busy cores less the three processes': other work on a shared machine
            "others_cores": round(((after["machine_cpu"] - before["machine_cpu"])
                                   - sum(after[k] - before[k] for k in ("service_cpu", "sandbox_cpu", "harness_cpu")))
                                  / wall, 2) if wall else 0.0,
        },
        "sandbox_rss_max_kb": int(peaks.get("sandbox_rss_max_kb", 0)) or None,
    }


# -- report --------------------------------------------------------------------------------


def print_result(r: dict[str, Any]) -> None:
    t, c, rss = r["turnaround_ms"], r["cpu_s"], r["rss_kb"]
    think = f", think {r['think_s'][0]:g}-{r['think_s'][1]:g} s" if r["think_s"] else ", no think time"
    variant = f" [variant {r['variant']}]" if r.get("variant") else ""
    pivot = r.get("transport") == "pivot"
    over = f" over {TRANSPORT_NAMES[r['transport']]}" if r.get("records") is not None else ""
    print(f"\n== {r['target']}{variant}{over}: {r['mode']}, {r['concurrency']} concurrent callers{think}, "
          f"ramp {r['ramp_s']:g} s, wall {r['wall_s']:g} s")
    print(f"  calls completed      {r['completed']}   failed {r['failed']}")
    for reason, count in r["failures"].items():
        print(f"    {count:>7}  {reason}")
    if pivot:
        print(f"  calls/s              {r['calls_per_s']}   ({r['commands_per_s']} pivot requests/s, "
              f"{r['commands']} measured; {r['requests_per_call']} requests per call)")
    else:
        print(f"  calls/s              {r['calls_per_s']}   "
              f"({r['commands_per_s']} AGI commands/s, {r['commands']} measured)")
    print(f"  concurrent calls     peak {r['peak_concurrent_calls']}, mean {r['mean_concurrent_calls']}")
    label = "pivot request ms" if pivot else "turnaround ms"
    print(f"  {label:<21}p50 {t['p50']}  p90 {t['p90']}  p99 {t['p99']}  max {t['max']}  (mean {t['mean']})")
    if r["ramp_s"]:
        a = r["turnaround_after_ramp_ms"]
        print(f"    after the ramp     p50 {a['p50']}  p90 {a['p90']}  p99 {a['p99']}  max {a['max']}  "
              f"({a['commands']} {'requests' if pivot else 'commands'})")
    if r.get("call_service_ms"):
        svc = r["call_service_ms"]
        print(f"  call service ms      p50 {svc['p50']}  p90 {svc['p90']}  p99 {svc['p99']}  max {svc['max']}  "
              f"(per completed call: the sum of its {'pivot request times' if pivot else 'AGI turnarounds'})")
    if r.get("records") is not None:
        rec = r["records"]
        print(f"  call records         {rec['one_record']} of {rec['calls']} calls left exactly one  "
              f"{rec['problems'] or '(every completed call: update_code_read)'}")
    if r["backend"]:
        b = r["backend"]
        print(f"  backend              {b['requests_per_call']} requests/call, mean {b['mean_ms']} ms, "
              f"{100 * (b['share_of_turnaround'] or 0):.0f}% of all turnaround  [{b['source']}]")
        print(f"                       by method (ms): {b['mean_ms_by_method']}")
    print(f"  service RSS KB       idle {rss['idle']}, peak {rss['peak_vmhwm']} (VmHWM; sampled max "
          f"{rss['peak_sampled']}, mean {rss['mean_sampled']}), per concurrent call {rss['per_concurrent_call']} KB")
    threads = ", ".join(f"{k} {v} s" for k, v in c["service_threads"].items())
    print(f"  service CPU          {c['service']} s = {c['service_per_call_ms']} ms/call, {c['service_cores']} cores "
          f"({threads})")
    if r["sandbox_rss_max_kb"]:
        print(f"  sandbox CPU          {c['sandbox']} s = {c['sandbox_per_call_ms']} ms/call "
              f"(RSS max {r['sandbox_rss_max_kb']} KB)")
    print(f"  harness CPU          {c['harness']} s = {c['harness_per_call_ms']} ms/call, {c['harness_cores']} cores "
          f"(shares the machine's {os.cpu_count()} cores with the above)")
    if r.get("records") is not None:
        print(f"  other processes      {c['others_cores']} cores (the machine's busy time less the three above)")


def print_ratios(ours: dict[str, Any], bare: dict[str, Any]) -> None:
    def ratio(a: float | None, b: float | None) -> str:
        if a is None or b is None or b == 0 or math.isnan(a) or math.isnan(b):
            return "n/a"
        return f"{a / b:.2f}x"

    print(f"\n== ivr / bare responder ({ours['mode']}, {ours['concurrency']} concurrent)")
    print(f"  calls/s              {ratio(ours['calls_per_s'], bare['calls_per_s'])}")
    for q in ("p50", "p90", "p99", "max"):
        print(f"  turnaround {q:<4}      {ratio(ours['turnaround_ms'][q], bare['turnaround_ms'][q])}")
    if ours["ramp_s"]:
        after_ramp = ratio(ours["turnaround_after_ramp_ms"]["p99"], bare["turnaround_after_ramp_ms"]["p99"])
        print(f"  p99 after the ramp   {after_ramp}")
    cpu = ratio(ours["cpu_s"]["service_per_call_ms"], bare["cpu_s"]["service_per_call_ms"])
    rss = ratio(ours["rss_kb"]["per_concurrent_call"], bare["rss_kb"]["per_concurrent_call"])
    print(f"  CPU per call         {cpu}")
    print(f"  RSS per call         {rss}")


def print_transport_ratios(pivot: dict[str, Any], agi: dict[str, Any]) -> None:
    """Kazoo Pivot / FastAGI for the same load. A pivot request is answered with several
    callflow modules where FastAGI sends one command per turn, so per request and per command
    are not the same unit: the call service time (per call, the sum of either) is the like for like."""
    def ratio(a: float | None, b: float | None) -> str:
        if a is None or b is None or b == 0 or math.isnan(a) or math.isnan(b):
            return "n/a"
        return f"{a / b:.2f}x"

    p, a = pivot["turnaround_ms"], agi["turnaround_ms"]
    agi_per_call = round(agi["commands"] / max(1, agi["completed"] + agi["failed"]), 2)
    print(f"\n== Kazoo Pivot / FastAGI ({pivot['mode']}, {pivot['concurrency']} concurrent)")
    print(f"  calls/s              {ratio(pivot['calls_per_s'], agi['calls_per_s'])}")
    print(f"  per request          p50 {ratio(p['p50'], a['p50'])}  p99 {ratio(p['p99'], a['p99'])}  "
          f"(a pivot request's answer time / an AGI command's turnaround; "
          f"{pivot['requests_per_call']} requests vs {agi_per_call} turnarounds per call)")
    if pivot["call_service_ms"] and agi["call_service_ms"]:
        ps, as_ = pivot["call_service_ms"], agi["call_service_ms"]
        print(f"  per call             p50 {ratio(ps['p50'], as_['p50'])}  p99 {ratio(ps['p99'], as_['p99'])}  "
              f"(the sum of a call's request times / of its AGI turnarounds)")
    cpu = ratio(pivot["cpu_s"]["service_per_call_ms"], agi["cpu_s"]["service_per_call_ms"])
    harness = ratio(pivot["cpu_s"]["harness_per_call_ms"], agi["cpu_s"]["harness_per_call_ms"])
    print(f"  service CPU per call {cpu}   (harness CPU per call {harness})")
    rss = ratio(pivot["rss_kb"]["per_concurrent_call"], agi["rss_kb"]["per_concurrent_call"])
    print(f"  RSS per call         {rss}")


# -- profile summary -----------------------------------------------------------------------

_LAYERS = (
    ("ivr/transports/agi/", "ivr AGI (FastAGI server, channel, replies)"),
    ("ivr/transports/pivot/", "ivr Pivot (routes, calls, callflow JSON)"),
    ("ivr/embedded_http", "ivr HTTP listener (guarded h11 protocol)"),
    ("uvicorn/", "uvicorn (HTTP server)"),
    ("starlette/", "starlette (routing, requests, responses)"),
    ("ivr/flow/", "ivr call flow"),
    ("ivr/backends/kimvoice/", "ivr KimVoice client"),
    ("ivr/store/", "ivr store"),
    ("ivr/logging", "ivr logging/redaction"),
    ("ivr/web/", "ivr web (/metrics sink)"),
    ("ivr/tts/", "ivr TTS cache"),
    ("httpx/", "httpx client"),
    ("httpcore/", "httpcore (httpx transport)"),
    ("h11/", "h11 (HTTP/1.1 parser)"),
    ("anyio/", "anyio"),
    ("structlog/", "structlog"),
    ("pydantic", "pydantic"),
    ("prometheus_client/", "prometheus_client"),
    ("aiosqlite/", "aiosqlite (SQLite thread)"),
    ("sqlite3/", "sqlite3"),
    ("logging/", "stdlib logging"),
    ("asyncio/", "asyncio (event loop, streams, tasks)"),
    ("selectors", "asyncio (event loop, streams, tasks)"),
    ("threading", "threads (to_thread, aiosqlite)"),
    ("concurrent/", "threads (to_thread, aiosqlite)"),
    ("ssl", "ssl"),
    ("uuid", "stdlib"),
    ("json/", "json"),
)


def _layer(frame: str) -> str:
    for needle, name in _LAYERS:
        if needle in frame:
            return name
    return "other"


def summarize_profile(path: Path, top: int = 20) -> str:
    """Where the service's time goes, from a py-spy raw (collapsed stacks, --threads) profile.

    Samples are split by thread; the layer and function tables are for the main thread (the
    event loop), which is the one that saturates. Other threads (aiosqlite's worker, to_thread)
    spend most of their samples waiting on a queue, which py-spy cannot always tell from work:
    their CPU is in the harness's per-thread figure instead.
    """
    threads: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", errors="replace") as f:
        text = f.read()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        parts = stack.split(";")
        thread = next((p for p in parts if p.startswith("thread ")), "thread ?")
        frames = [f for f in parts if not f.startswith(("process ", "thread "))]
        threads["main thread" if "MainThread" in thread else "other threads"] += n
        if "MainThread" not in thread or not frames:
            continue
        total += n
        self_time[frames[-1]] += n
        # the innermost frame of ours or of a known library decides the layer
        layers[next((_layer(f) for f in reversed(frames) if _layer(f) != "other"), "other")] += n
        for f in set(frames):
            inclusive[f] += n
    if not total:
        return f"{path}: no main-thread samples"
    out = [f"{path.name}: samples by thread: {dict(threads)}",
           "  main thread, self time by layer (innermost ivr or library frame):"]
    out += [f"    {100 * n / total:5.1f}%  {name}" for name, n in layers.most_common()]
    out.append(f"  main thread, top {top} functions by self time:")
    out += [f"    {100 * n / total:5.1f}%  {_short(f)}" for f, n in self_time.most_common(top)]
    out.append(f"  main thread, top {top} functions by inclusive time (ivr and the libraries it calls):")
    wanted = [(f, n) for f, n in inclusive.most_common()
              if any(k in f for k in ("ivr/", "httpx/", "httpcore/", "structlog/", "aiosqlite/", "logging/",
                                      "prometheus_client/", "pydantic", "asyncio/"))
              and "ivr/__main__" not in f and "ivr/cli" not in f and "ivr/service.py" not in f
              and "base_events.py" not in f and "runners.py" not in f]
    out += [f"    {100 * n / total:5.1f}%  {_short(f)}" for f, n in wanted[:top]]
    return "\n".join(out)


def _short(frame: str) -> str:
    frame = re.sub(r"/[^ ()]*/site-packages/", "", frame)
    return re.sub(r"/[^ ()]*/main/", "", frame)


# -- main ----------------------------------------------------------------------------------


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < needed:
        print(f"warning: the file-descriptor limit {want} is below the {needed} this run needs", file=sys.stderr)


def prepare_harness(callers: int) -> None:
    """Ready this process to run `callers` callers: file descriptors, the collector, quiet httpx."""
    _raise_fd_limit(callers + 256)
    # The harness is as exposed to the transport reference cycle as the service: keep the
    # collector off the start-up heap and run it less often (it has plenty of memory).
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    # httpx logs each request's URL at INFO, and a pivot URL holds the secret: never below WARNING.
    logging.getLogger("httpx").setLevel(logging.WARNING)


R = TypeVar("R")


def run_harness(work: Coroutine[Any, Any, R]) -> tuple[R | None, int]:
    """Run `work` on a fresh loop, SIGTERM cancelling it: its result and 0, or None and the exit
    code of an interruption (130), a SIGTERM (143) or a run that could not go on (1, printed)."""

    async def cancellable() -> R:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await work

    try:
        return asyncio.run(cancellable()), 0
    except KeyboardInterrupt:
        print("interrupted; child processes stopped", file=sys.stderr)
        return None, 130
    except asyncio.CancelledError:
        print("terminated; child processes stopped", file=sys.stderr)
        return None, 143
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None, 1


async def amain(options: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    if options.transport == "pivot":
        runs = [("ivr", "agi"), ("ivr", "pivot")] if options.compare_agi else [("ivr", "pivot")]
        service_env = pivot_service_env(options.concurrency)  # the FastAGI run of --compare-agi too
    else:
        targets = ["bare", "ivr"] if options.compare_bare and options.target == "ivr" else [options.target]
        runs, service_env = [(target, "agi") for target in targets], {}
    for target, transport in runs:
        result = await measure(target, transport, options, service_env)
        print_result(result)
        results.append(result)
    if options.transport == "pivot" and len(results) == 2:
        print_transport_ratios(results[1], results[0])
    elif len(results) == 2:
        print_ratios(results[1], results[0])
    if options.cprofile and Path(options.cprofile).exists():
        import pstats

        print(f"\ncProfile of the service ({options.cprofile}), top 25 by own time:")
        pstats.Stats(options.cprofile).sort_stats("tottime").print_stats(25)
    if options.py_spy:
        for result in results:
            name = run_name(result["target"], result["transport"])
            path = Path(options.py_spy) / f"{name}-{options.mode}-{options.concurrency}.raw"
            if path.exists():
                print("\n" + summarize_profile(path))
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", choices=["ivr", "bare"], default="ivr",
                   help="ivr: `ivr sandbox` + `ivr serve`; bare: benchmarks/bare_responder.py (default ivr)")
    p.add_argument("--transport", choices=["agi", "pivot"], default="agi",
                   help="agi: callers over FastAGI; pivot: Kazoo's pivot requests to the HTTP listener (default agi)")
    p.add_argument("--kazoo-pool", choices=["keepalive", "httpcore"], default="keepalive",
                   help="pivot: the pool of Kazoo's httpx client, ivr's KeepAliveTransport or httpx's default "
                        "(httpcore: its per-request scan limits the harness at 64 concurrent; default keepalive)")
    p.add_argument("--mode", choices=["capacity", "paced"], default="capacity")
    p.add_argument("--concurrency", "-n", type=int, default=64, help="concurrent callers (default 64)")
    p.add_argument("--duration", type=float, default=None,
                   help="seconds of back-to-back calls after the ramp (capacity: default 12; paced: unset = "
                        "--calls-per-caller calls each)")
    p.add_argument("--calls-per-caller", type=int, default=1, help="paced without --duration (default 1)")
    p.add_argument("--think-min", type=float, default=1.0, help="paced: least think time, s (default 1)")
    p.add_argument("--think-max", type=float, default=3.0, help="paced: most think time, s (default 3)")
    p.add_argument("--ramp", type=float, default=None,
                   help="seconds over which callers start, evenly (default: capacity 0, paced N/500)")
    p.add_argument("--warmup", type=int, default=32, help="concurrent warm-up callers, 2 calls each (default 32)")
    p.add_argument("--compare-bare", action="store_true", help="run the same load on the bare responder first")
    p.add_argument("--compare-agi", action="store_true",
                   help="with --transport pivot: run the same load over FastAGI first, same settings, and print "
                        "the ratios pivot / FastAGI")
    p.add_argument("--py-spy", metavar="DIR", help="record the service with py-spy (raw stacks) into DIR and "
                                                   "print where the time goes")
    p.add_argument("--variant", metavar="PATCH[,PATCH]",
                   help="run the service with candidate fixes patched in (benchmarks/serve_variant.py: "
                        "httpcore, pool=N, gc, nostore, nometrics, streams, lean)")
    p.add_argument("--cprofile", metavar="PATH", help="run the service under cProfile; stats written to PATH "
                                                      "(all of the service's run, warm-up included)")
    p.add_argument("--summarize", nargs="+", metavar="RAW",
                   help="only print the summary of saved py-spy raw profiles (.raw or .raw.gz), run nothing")
    p.add_argument("--env", action="append", default=[], metavar="IVR_X=v",
                   help="extra environment for the children, e.g. IVR_PLEASE_WAIT_AFTER=5 (repeatable)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, database)")
    options = p.parse_args(argv)
    if options.mode == "capacity" and options.duration is None:
        options.duration = 12.0
    if options.concurrency < 1 or not 0 <= options.think_min <= options.think_max:
        p.error("--concurrency must be >= 1 and 0 <= --think-min <= --think-max")
    if any("=" not in item for item in options.env):
        p.error("--env takes NAME=value")
    if options.transport == "pivot" and (options.target == "bare" or options.compare_bare):
        p.error("--transport pivot needs --target ivr (the bare responder speaks FastAGI only), without --compare-bare")
    if options.compare_agi and options.transport != "pivot":
        p.error("--compare-agi goes with --transport pivot")
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    if options.summarize:
        for path in options.summarize:
            print(summarize_profile(Path(path), top=25))
        return 0
    prepare_harness(options.concurrency)
    results, code = run_harness(amain(options))
    if results is None:
        return code
    if options.json:
        Path(options.json).write_text(json.dumps(results, indent=2))
    records_ok = all(not (r.get("records") or {}).get("problems") for r in results)
    return 0 if all(r["completed"] for r in results) and records_ok else 1


if __name__ == "__main__":
    sys.exit(main())
