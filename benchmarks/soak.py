"""Soak benchmark: N paced callers for T minutes against a KimVoice sandbox that fails a share of
its requests (issue #12).

It reuses the load harness (`load.py`): the same child processes (`ivr sandbox`, `ivr serve`), the
same simulated FastAGI callers and checks, the same /proc readings. What it adds is time and
faults: the warm-up runs against a healthy sandbox, then `PATCH /sandbox/knobs` makes a share of
KimVoice's requests fail (a bare HTTP 500 by default) and the callers place calls back to back,
each pausing like a person before every answer, for the whole run. It reports what callers heard,
the turnaround per minute, whether the service's RSS grows over the run, what the sandbox saw,
and, once the service has stopped, that every call placed left exactly one record.

Examples (see benchmarks/README.md, Soak):
  python3 benchmarks/soak.py --callers 300 --minutes 3 --json benchmarks/results/soak-300-3min.json
  python3 benchmarks/soak.py                      # 2,000 callers, 30 minutes, 5% bare 500s
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import re
import sys
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.catalog import PromptCatalog, default_prompts_dir
from ivr.sim import CallResult, PivotCallResult, SoundLibrary
from ivr.tts import TtsCache

if __package__:  # python3 -m benchmarks.soak
    from . import load
else:  # python3 benchmarks/soak.py: this folder is sys.path[0]
    import load

SHARED_CALLER = {f"IVR_LOCKOUT_{bound}_FAILURES": str(10**9) for bound in ("KEY", "CALLER", "GLOBAL")}
"""Every simulated caller is the one test key holder (key 123456, one calling number), and the
sign-in guard counts a sign-in KimVoice failed to answer as a guess: left at their defaults, five
such calls lock the key for all of them, and the line paces sign-ins past 100. The soak measures
what KimVoice's faults do to calls, so the guard's bounds are lifted (`--env` sets them back)."""


def sized_for(callers: int) -> dict[str, str]:
    """What an operator sets for this many callers at once: IVR_MAX_CALLS above them (a caller
    hanging up and calling again may briefly hold two). Left at its default (1,000), 2,000 callers
    are mostly refused `over capacity`: the soak would measure the cap, not KimVoice's faults."""
    return {"IVR_MAX_CALLS": str(max(1000, 2 * callers))}


WARMUP_CALLERS = 32  # concurrent warm-up callers, 2 calls each, against a healthy sandbox
LISTED_IDS = 20  # call ids printed per record problem (the JSON has them all)

CODE_READ = "code read"
UNAVAILABLE_TRANSFERRED = "system-unavailable, transferred"
UNAVAILABLE_GOODBYE = "system-unavailable, not transferred"
OTHER = "other"
KINDS = (CODE_READ, UNAVAILABLE_TRANSFERRED, UNAVAILABLE_GOODBYE, OTHER)
RECORDED_AS = {CODE_READ: "update_code_read", UNAVAILABLE_TRANSFERRED: "transferred",
               UNAVAILABLE_GOODBYE: "unavailable"}
"""The record outcome each kind of call must leave; `other` calls have no one outcome."""

_KIMVOICE_METRIC = re.compile(r"^(ivr_kimvoice_(?:retries_total|breaker_state)(?:\{[^}]*\})?)\s+(\S+)$", re.MULTILINE)


# -- what callers heard ----------------------------------------------------------------------


def heard(result: CallResult | PivotCallResult | None, codes: set[str]) -> str:
    """The kind of a call as its caller lived it."""
    if result is None:
        return OTHER
    if load.why_failed(result, codes) is None:
        return CODE_READ
    transcript = result.transcript
    if "system-unavailable" in transcript.prompts:
        return UNAVAILABLE_TRANSFERRED if transcript.transferred_to else UNAVAILABLE_GOODBYE
    return OTHER


@dataclass
class Calls:
    """Every measured call: its kind by call id, and per caller the calls placed and those that read the code."""

    codes: set[str]
    kinds: dict[str, str] = field(default_factory=dict)
    by_kind: Counter[str] = field(default_factory=Counter)
    per_caller: dict[int, list[int]] = field(default_factory=dict)

    def ended(self, caller: int, result: CallResult | PivotCallResult | None) -> None:
        kind = heard(result, self.codes)
        self.by_kind[kind] += 1
        if result is not None:
            self.kinds[result.unique_id] = kind
        placed = self.per_caller.setdefault(caller, [0, 0])
        placed[0] += 1
        placed[1] += kind == CODE_READ


# -- samples over the run ------------------------------------------------------------------


async def every(period: float, started: float, stop: asyncio.Event, action: Callable[[float], None]) -> None:
    """Call `action(seconds since started)` at each multiple of `period`, and once more at `stop`."""
    loop = asyncio.get_running_loop()
    n = 1
    while not stop.is_set():
        try:
            async with asyncio.timeout(max(0.0, started + n * period - loop.time())):
                await stop.wait()
        except TimeoutError:
            pass
        action(loop.time() - started)
        n += 1


def window_mean(samples: list[tuple[float, int]], start: float, end: float) -> float | None:
    values = [kb for t, kb in samples if start <= t <= end]
    return sum(values) / len(values) if values else None


def turnaround_minutes(turnarounds: array[float], marks: list[int], window: float) -> list[dict[str, Any]]:
    """Percentiles of the turnarounds read in each window, from the count read at each window's end."""
    bounds = [0, *marks]
    return [{"minute": i + 1, "from_s": i * window, "commands": b - a} | load.percentiles_ms(sorted(turnarounds[a:b]))
            for i, (a, b) in enumerate(itertools.pairwise(bounds))]


# -- the sandbox and the service's metrics ---------------------------------------------------


async def sandbox_json(system: load.System, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    assert system.sandbox_port is not None
    status, payload = await load.http(system.sandbox_port, method, path, json.dumps(body).encode() if body else b"")
    if status != 200:
        raise RuntimeError(f"sandbox {method} {path}: HTTP {status}")
    return json.loads(payload)


def stats_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Requests and failures (5xx) by KimVoice method between two `/sandbox/stats`."""
    by_method: dict[str, Any] = {}
    for method, statuses in sorted(after["statuses"].items()):
        was = before["statuses"].get(method, {})
        delta = {status: n - was.get(status, 0) for status, n in statuses.items() if n - was.get(status, 0)}
        if delta:
            by_method[method] = {"requests": sum(delta.values()),
                                 "failures": sum(n for status, n in delta.items() if int(status) >= 500),
                                 "statuses": delta}
    return {"requests": sum(m["requests"] for m in by_method.values()),
            "failures": sum(m["failures"] for m in by_method.values()), "by_method": by_method}


async def kimvoice_metrics(system: load.System) -> dict[str, float]:
    """The service's retry and breaker series from /metrics; empty when it has none."""
    assert system.http_port is not None
    status, body = await load.http(system.http_port, "GET", "/metrics")
    if status != 200:
        return {}
    return {name: float(value) for name, value in _KIMVOICE_METRIC.findall(body.decode("utf-8", errors="replace"))}


# -- the records -------------------------------------------------------------------------------


def compare_records(kinds: dict[str, str], recorded: dict[str, list[str]], warmup: set[str]) -> dict[str, Any]:
    """Each measured call's records against what its caller heard."""
    missing = sorted(call_id for call_id in kinds if not recorded.get(call_id))
    doubled = {call_id: len(recorded[call_id]) for call_id in sorted(kinds) if len(recorded.get(call_id, ())) > 1}
    heard_vs_recorded: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
    mismatches: Counter[str] = Counter()
    for call_id, kind in kinds.items():
        found = recorded.get(call_id, [])
        if len(found) != 1:
            continue
        heard_vs_recorded[kind][found[0]] += 1
        if kind in RECORDED_AS and found[0] != RECORDED_AS[kind]:
            mismatches[f"{kind} but recorded {found[0]}"] += 1
    return {
        "calls": len(kinds),
        "one_record": len(kinds) - len(missing) - len(doubled),
        "missing": missing,
        "doubled": doubled,
        "not_placed": sum(len(v) for k, v in recorded.items() if k not in kinds and k not in warmup),
        "heard_vs_recorded": {kind: dict(c.most_common()) for kind, c in heard_vs_recorded.items() if c},
        "mismatches": dict(mismatches.most_common()),
    }


# -- one soak run --------------------------------------------------------------------------------


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


async def soak(options: argparse.Namespace) -> dict[str, Any]:
    with load.temporary_children("ivr-soak-", options.keep) as children:
        env_extra = SHARED_CALLER | sized_for(options.callers) | dict(item.split("=", 1) for item in options.env)
        system = await load.start_system("ivr", children, env_extra, options)
        catalog = PromptCatalog.load(default_prompts_dir())
        assert system.data_dir is not None
        sounds = SoundLibrary(catalog, TtsCache(system.data_dir / "tts"))
        codes = load.expected_codes("ivr")

        # Warm-up against a healthy sandbox: the token, the TTS render, pooled connections, and the
        # KimVoice requests a call makes when nothing fails.
        warm = load.Tally()
        healthy = await sandbox_json(system, "GET", "/sandbox/stats")
        await load.run_callers(system, sounds, concurrency=min(options.callers, WARMUP_CALLERS), duration=None,
                          calls_per_caller=2, think=None, ramp=0.0, tally=warm, seed=0)
        if warm.failed:
            raise RuntimeError(f"warm-up calls failed: {dict(warm.failed)}\n{system.service.tail()}")
        before = await sandbox_json(system, "GET", "/sandbox/stats")
        per_call = stats_delta(healthy, before)["requests"] / max(1, len(warm.placed))
        await sandbox_json(system, "PATCH", "/sandbox/knobs",
                           {"failure_rate": options.failure_rate, "failure_status": options.failure_status})

        pid = system.service.pid
        loop = asyncio.get_running_loop()
        tally, calls = load.Tally(), Calls(codes)
        rss: list[tuple[float, int]] = []
        marks: list[int] = []
        stop = asyncio.Event()
        cpu_before = load.cpu_seconds(pid)
        started = loop.time()
        samplers = [
            loop.create_task(every(options.rss_every, started, stop,
                                   lambda t: rss.append((round(t, 1), load.status_kb(pid, "VmRSS"))))),
            loop.create_task(every(options.window_seconds, started, stop,
                                   lambda _: marks.append(len(tally.turnarounds)))),
        ]
        ramp = options.ramp if options.ramp is not None else options.callers / 500
        duration = max(0.0, 60 * options.minutes - ramp)
        wall = await load.run_callers(system, sounds, concurrency=options.callers, duration=duration,
                                 calls_per_caller=1, think=tuple(options.think), ramp=ramp, tally=tally,
                                 seed=options.seed, on_call=calls.ended)
        stop.set()
        await asyncio.gather(*samplers)
        cpu = load.cpu_seconds(pid) - cpu_before
        after = await sandbox_json(system, "GET", "/sandbox/stats")
        metrics = await kimvoice_metrics(system)
        exit_code = await load.stop_service(system)
        recorded = await load.read_records(system)

    placed = tally.completed + sum(tally.failed.values())
    end = rss[-1][0] if rss else 0.0
    first = (options.warmup_seconds, options.warmup_seconds + options.window_seconds)
    last = (max(0.0, end - options.window_seconds), end)
    first_mean, last_mean = window_mean(rss, *first), window_mean(rss, *last)
    callers_placing = [c for c in calls.per_caller.values() if c[0]]
    ordered = sorted(tally.turnarounds)
    return {
        "callers": options.callers,
        "minutes": options.minutes,
        "ramp_s": ramp,
        "think_s": list(options.think),
        "failure_rate": options.failure_rate,
        "failure_status": options.failure_status,
        "window_s": options.window_seconds,
        "warmup_s": options.warmup_seconds,
        "wall_s": round(wall, 2),
        "calls": {
            "placed": placed,
            "code_read": calls.by_kind[CODE_READ],
            "code_read_pct": _pct(calls.by_kind[CODE_READ], placed),
            "by_kind": {kind: calls.by_kind[kind] for kind in KINDS},
            "failures": dict(tally.failed.most_common()),
            "kimvoice_requests_per_call": round(per_call, 2),
            "expected_pct_without_retries": round(100 * (1 - options.failure_rate) ** per_call, 2),
        },
        "callers_all_code": {
            "callers": len(callers_placing),
            "all_code": sum(c[0] == c[1] for c in callers_placing),
            "pct": _pct(sum(c[0] == c[1] for c in callers_placing), len(callers_placing)),
        },
        "turnaround_ms": load.percentiles_ms(ordered) | {"commands": len(ordered)},
        "turnaround_by_minute": turnaround_minutes(tally.turnarounds, marks, options.window_seconds),
        "rss_kb": {
            "every_s": options.rss_every,
            "first_window_s": list(first),
            "last_window_s": list(last),
            "first_minute_mean": round(first_mean) if first_mean is not None else None,
            "last_minute_mean": round(last_mean) if last_mean is not None else None,
            "ratio": round(last_mean / first_mean, 4) if first_mean and last_mean is not None else None,
            "samples": rss,
        },
        "cpu_s": {"service": round(cpu, 2), "service_per_call_ms": round(1000 * cpu / max(1, placed), 3),
                  "service_cores": round(cpu / wall, 3) if wall else 0.0},
        "sandbox": stats_delta(before, after),
        "service_metrics": metrics,
        "service_exit_code": exit_code,
        "records": compare_records(calls.kinds, recorded, {call_id for call_id, _ in warm.placed}),
    }


# -- report --------------------------------------------------------------------------------------


def _ms(p: dict[str, Any]) -> str:
    return "  ".join(f"{q} {'n/a' if math.isnan(p[q]) else p[q]}" for q in ("p50", "p90", "p99", "max"))


def print_report(r: dict[str, Any]) -> None:
    c, callers, rss, rec = r["calls"], r["callers_all_code"], r["rss_kb"], r["records"]
    print(f"\n== soak: {r['callers']} paced callers (think {r['think_s'][0]:g}-{r['think_s'][1]:g} s), "
          f"{r['minutes']:g} min, ramp {r['ramp_s']:g} s, wall {r['wall_s']:g} s; KimVoice fails "
          f"{100 * r['failure_rate']:g}% of requests with HTTP {r['failure_status']}")
    print(f"  calls placed         {c['placed']}")
    print(f"  code read            {c['code_read']} ({c['code_read_pct']}%)   without retries 1 - (1 - r)^k = "
          f"{c['expected_pct_without_retries']}% (k = {c['kimvoice_requests_per_call']} KimVoice requests a call, "
          f"from the warm-up)")
    for kind, n in c["by_kind"].items():
        print(f"    {n:>8}  {kind}")
    for reason, n in c["failures"].items():
        print(f"              {n:>8}  {reason}")
    print(f"  callers, every call  {callers['all_code']} of {callers['callers']} ({callers['pct']}%) got the code")
    print(f"  turnaround ms        {_ms(r['turnaround_ms'])}  ({r['turnaround_ms']['commands']} AGI commands)")
    for minute in r["turnaround_by_minute"]:
        print(f"    minute {minute['minute']:>3}         {_ms(minute)}  ({minute['commands']})")
    print(f"  service RSS KB       first minute after warm-up {rss['first_window_s']} s: {rss['first_minute_mean']}; "
          f"last minute {rss['last_window_s']} s: {rss['last_minute_mean']}; ratio {rss['ratio']} "
          f"({len(rss['samples'])} samples, every {rss['every_s']:g} s)")
    cpu = r["cpu_s"]
    print(f"  service CPU          {cpu['service']} s = {cpu['service_per_call_ms']} ms/call, "
          f"{cpu['service_cores']} cores")
    sandbox = r["sandbox"]
    print(f"  sandbox              {sandbox['requests']} requests, {sandbox['failures']} failed")
    for method, m in sandbox["by_method"].items():
        print(f"    {method:<20} {m['requests']:>8} requests, {m['failures']:>6} failed  {m['statuses']}")
    if r["service_metrics"]:
        print("  service /metrics")
        for name, value in r["service_metrics"].items():
            print(f"    {name} {value:g}")
    else:
        print("  service /metrics     no ivr_kimvoice_retries_total or ivr_kimvoice_breaker_state")
    print(f"  service stopped      exit code {r['service_exit_code']}")
    print(f"  call records         {rec['one_record']} of {rec['calls']} calls left exactly one; "
          f"{len(rec['missing'])} missing, {len(rec['doubled'])} doubled, {rec['not_placed']} of no call placed")
    if rec["missing"]:
        print(f"    missing: {', '.join(rec['missing'][:LISTED_IDS])}")
    if rec["doubled"]:
        print(f"    doubled: {', '.join(f'{k} x{v}' for k, v in list(rec['doubled'].items())[:LISTED_IDS])}")
    for kind, outcomes in rec["heard_vs_recorded"].items():
        print(f"    heard {kind:<36} recorded {outcomes}")
    for problem, n in rec["mismatches"].items():
        print(f"    MISMATCH {n:>6}  {problem}")


def passed(r: dict[str, Any]) -> bool:
    """The run is sound: the service stopped cleanly and every call placed left exactly one record."""
    rec = r["records"]
    return (r["service_exit_code"] == 0 and rec["calls"] > 0 and rec["one_record"] == rec["calls"]
            and not rec["not_placed"] and not rec["mismatches"])


# -- main ----------------------------------------------------------------------------------------


async def amain(options: argparse.Namespace) -> dict[str, Any]:
    result = await soak(options)
    print_report(result)
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--callers", "-n", type=int, default=2000, help="paced callers (default 2000)")
    p.add_argument("--minutes", type=float, default=30.0, help="length of the run, ramp included (default 30)")
    p.add_argument("--failure-rate", type=float, default=0.05,
                   help="share of KimVoice requests that fail (default 0.05)")
    p.add_argument("--failure-status", type=int, choices=[500, 502, 503, 504], default=500,
                   help="how they fail: a bare 500, 502 or 504, or 503 with ApiError 9001 (default 500)")
    p.add_argument("--think", type=float, nargs=2, default=[1.0, 3.0], metavar=("MIN", "MAX"),
                   help="seconds a caller pauses before every answer, drawn uniformly (default 1 3)")
    p.add_argument("--ramp", type=float, default=None, help="seconds over which callers start (default N/500)")
    p.add_argument("--warmup-seconds", type=float, default=60.0,
                   help="seconds of the run before the RSS baseline's minute starts (default 60)")
    p.add_argument("--window-seconds", type=float, default=60.0,
                   help="the report's 'minute': per-minute turnaround, the RSS baseline and last minute (default 60)")
    p.add_argument("--rss-every", type=float, default=5.0, help="seconds between RSS samples (default 5)")
    p.add_argument("--env", action="append", default=[], metavar="IVR_X=v",
                   help="extra environment for the service and the sandbox (repeatable)")
    p.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, database)")
    p.add_argument("--variant", metavar="PATCH[,PATCH]",
                   help="run the service with candidate fixes patched in (benchmarks/serve_variant.py)")
    p.add_argument("--cprofile", metavar="PATH", help="run the service under cProfile; stats written to PATH")
    options = p.parse_args(argv)
    if options.callers < 1 or options.minutes <= 0 or not 0 <= options.think[0] <= options.think[1]:
        p.error("--callers must be >= 1, --minutes > 0 and 0 <= --think MIN <= MAX")
    if not 0 <= options.failure_rate <= 1:
        p.error("--failure-rate must be within 0..1")
    if options.window_seconds <= 0 or options.rss_every <= 0 or options.warmup_seconds < 0:
        p.error("--window-seconds and --rss-every must be > 0, --warmup-seconds >= 0")
    if any("=" not in item for item in options.env):
        p.error("--env takes NAME=value")
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    load.prepare_harness(options.callers)
    result, code = load.run_harness(amain(options))
    if result is None:
        return code
    if options.json:
        Path(options.json).write_text(json.dumps(result, indent=2))
    return 0 if passed(result) else 1


if __name__ == "__main__":
    sys.exit(main())
