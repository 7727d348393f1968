"""Outbound jobs benchmark: N `notice` jobs through the simulated Asterisk Manager, optionally with
the service restarted halfway.

This process runs the simulated Asterisk (`ivr.sim.SimulatedAmi`) on its own asyncio loop, so it
outlives a restart of the service and sees every Originate. `ivr serve` is a child process that
connects to it (`IVR_AMI_HOST`); each answered callee runs the `announce` route back into the
service over FastAGI, on a port fixed for the whole run so that it is the same after a restart.
Jobs are submitted over the HTTP API (`POST /v1/outbound/jobs`, a bearer token), and the harness
polls the API until every job is final, then reads every job's history. Everything stays on
127.0.0.1; the service is stopped on exit, Ctrl-C and errors (and dies with the harness).

Examples (see benchmarks/README.md, "Outbound jobs", for what every figure means):
  python3 benchmarks/outbound.py                      # 1,000 jobs, 50 in progress at a time
  python3 benchmarks/outbound.py --restart-at 0.5     # the same, the service restarted halfway
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import secrets
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from ivr.catalog import PromptCatalog, default_prompts_dir
from ivr.logging import configure_logging
from ivr.sim import SimulatedAmi, SoundLibrary
from ivr.tts import TtsCache

if __package__:  # python3 -m benchmarks.outbound
    from ._children import HOST, Child, Children, free_port, temporary_children, wait_ready
else:  # python3 benchmarks/outbound.py: this folder is sys.path[0]
    from _children import HOST, Child, Children, free_port, temporary_children, wait_ready

HERE = Path(__file__).resolve().parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
READY_TIMEOUT = 30.0
POLL_EVERY = 0.25  # seconds between looks at the service's /metrics and job list
SAMPLE_EVERY = 0.01  # seconds between counts of the simulated Asterisk's channels
JOBS = "/v1/outbound/jobs"
MESSAGE = "Your showing at 12 Elm Street is confirmed for tomorrow at ten."
NOT_FINAL = ("queued", "dialing", "ringing", "answered")
AMI_USER = "keybox"
_METRIC = re.compile(r"^(ivr_outbound_active_calls|ivr_outbound_jobs_total)\{([^}]*)\}\s+(\S+)$", re.MULTILINE)


# -- the service ---------------------------------------------------------------------------


@dataclass
class Line:
    """The service's ports and settings, fixed for the whole run (a restart reuses them)."""

    http_port: int
    agi_port: int
    env: dict[str, str]
    token: str
    instances: list[Child] = field(default_factory=list)

    @property
    def service(self) -> Child:
        return self.instances[-1]

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.http_port}"


async def start_service(children: Children, line: Line) -> float:
    """Start `ivr serve` (another instance on a restart) and wait for /healthz; seconds it took."""
    started = time.monotonic()
    name = "service" if not line.instances else f"service-{len(line.instances) + 1}"
    child = children.start(name, [sys.executable, "-m", "ivr", "serve"], line.env)
    line.instances.append(child)
    await wait_ready(child, line.http_port, "/healthz", timeout=READY_TIMEOUT)
    return time.monotonic() - started


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def reaped_children_cpu() -> float:
    """utime + stime of every child this process has waited for (how an exited service is measured)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def percentile(ordered: list[float], q: float) -> float | None:
    """Nearest rank on sorted values; None when there are none."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def quantiles_ms(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    out: dict[str, float | None] = {}
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        value = percentile(ordered, q)
        out[name] = round(1000 * value, 1) if value is not None else None
    out["max"] = round(1000 * ordered[-1], 1) if ordered else None
    return out


# -- what the harness watches ----------------------------------------------------------------


@dataclass
class Watch:
    submitted: dict[int, str] = field(default_factory=dict)  # job number → job id
    submit_started: dict[int, float] = field(default_factory=dict)  # job number → time.time() of the first try
    submit_latency: list[float] = field(default_factory=list)  # the successful request's round trip
    statuses: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    peak_gauge: float = 0.0  # ivr_outbound_active_calls, as sampled
    finals_metric: float = 0.0  # ivr_outbound_jobs_total of the current instance
    peak_channels: int = 0  # channels up at once in the simulated Asterisk, as sampled
    submitting_done: asyncio.Event = field(default_factory=asyncio.Event)


async def metrics(client: httpx.AsyncClient, watch: Watch) -> None:
    try:
        response = await client.get("/metrics", timeout=5.0)
    except httpx.TransportError:
        return  # the service is restarting
    if response.status_code != 200:
        return
    finals = 0.0
    for name, _labels, value in _METRIC.findall(response.text):
        if name == "ivr_outbound_active_calls":
            watch.peak_gauge = max(watch.peak_gauge, float(value))
        else:
            finals += float(value)
    watch.finals_metric = finals


async def all_final(client: httpx.AsyncClient) -> bool:
    """No job left in a state that is not final: one `limit=1` list per state, stopping at the first
    state that has one."""
    for state in NOT_FINAL:
        try:
            response = await client.get(JOBS, params={"status": state, "limit": "1"}, timeout=10.0)
        except httpx.TransportError:
            return False
        if response.status_code != 200 or response.json()["jobs"]:
            return False
    return True


async def count_channels(ami: SimulatedAmi, watch: Watch) -> None:
    while True:
        watch.peak_channels = max(watch.peak_channels, len(ami.channels))
        await asyncio.sleep(SAMPLE_EVERY)


def job_body(number: int) -> dict[str, Any]:
    # +1555 2xx xxxx: none of the simulator's busy / no-answer numbers, so every callee answers
    return {"kind": "notice", "to": f"+1555{2_000_000 + number:07d}", "message": MESSAGE,
            "code": f"{(number * 7919) % 1_000_000:06d}"}


async def submitter(client: httpx.AsyncClient, queue: asyncio.Queue[int], watch: Watch, run_id: str,
                    started: float, rate: float) -> None:
    """Submit jobs from `queue` until it is empty; a refused connection or a 503 (the service
    restarting) is tried again with the same Idempotency-Key, which gives back the same job."""
    while True:
        try:
            number = queue.get_nowait()
        except asyncio.QueueEmpty:
            return
        if rate > 0:
            await asyncio.sleep(max(0.0, started + number / rate - time.monotonic()))
        watch.submit_started[number] = time.time()
        headers = {"Idempotency-Key": f"{run_id}-{number}"}
        deadline = time.monotonic() + 120.0
        while True:
            sent = time.monotonic()
            try:
                response = await client.post(JOBS, json=job_body(number), headers=headers, timeout=10.0)
            except httpx.TransportError as exc:
                watch.statuses[type(exc).__name__] += 1
                response = None
            if response is not None:
                watch.statuses[str(response.status_code)] += 1
                if response.status_code in (200, 201):
                    watch.submit_latency.append(time.monotonic() - sent)
                    watch.submitted[number] = response.json()["id"]
                    break
                if response.status_code != 503:
                    raise RuntimeError(f"job {number} refused: HTTP {response.status_code} {response.text[:300]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {number} could not be submitted within 120 s")
            watch.retries += 1
            await asyncio.sleep(0.05)


async def list_all(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    """Every job, page by page (200 a page, newest first)."""
    jobs: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    while True:
        params = {"limit": "200"} | ({"cursor": cursor} if cursor else {})
        response = await client.get(JOBS, params=params, timeout=30.0)
        response.raise_for_status()
        page = response.json()
        for job in page["jobs"]:
            jobs[job["id"]] = job
        cursor = page["next_cursor"]
        if not cursor:
            return jobs


# -- one run ---------------------------------------------------------------------------------


async def run(options: argparse.Namespace, children: Children) -> dict[str, Any]:
    n = options.jobs
    token = secrets.token_urlsafe(24)
    secret = secrets.token_urlsafe(16)
    data_dir = children.workdir / "data"
    agi_port, http_port = free_port(), free_port()
    catalog = PromptCatalog.load(default_prompts_dir())
    ami = SimulatedAmi(username=AMI_USER, secret=secret, agi_address=f"{HOST}:{agi_port}",
                       sounds=SoundLibrary(catalog, TtsCache(data_dir / "tts")), catalog=catalog,
                       ring_seconds=options.ring)
    await ami.start()
    env = {
        **os.environ,
        "IVR_DATA_DIR": str(data_dir),
        "IVR_AGI_HOST": HOST, "IVR_AGI_PORT": str(agi_port),
        "IVR_HTTP_HOST": HOST, "IVR_HTTP_PORT": str(http_port),
        "IVR_AMI_HOST": HOST, "IVR_AMI_PORT": str(ami.port),
        "IVR_AMI_USERNAME": AMI_USER, "IVR_AMI_SECRET": secret,
        "IVR_API_TOKENS": token,
        "IVR_OUTBOUND_MAX_ACTIVE": str(options.max_active),
        "IVR_OUTBOUND_RATE": f"{options.rate:g}",
        "IVR_OUTBOUND_HOURS": "00:00-24:00",
        "IVR_OUTBOUND_RETRY_SECONDS": f"{options.retry_seconds:g}",
        "IVR_DRAIN_SECONDS": f"{options.drain:g}",
        "IVR_LOG_LEVEL": "warning", "IVR_LOG_FORMAT": "json",
    }
    env.pop("IVR_KIMVOICE_URL", None)  # the embedded sandbox: the announce route asks KimVoice nothing
    env.update(item.split("=", 1) for item in options.env)
    line = Line(http_port, agi_port, env, token)
    sampler = asyncio.create_task(count_channels(ami, watch := Watch()))
    restart: dict[str, Any] | None = None
    try:
        start_s = await start_service(children, line)
        first_pid = line.service.pid
        cpu0_service = cpu_seconds(first_pid)
        cpu0_reaped = reaped_children_cpu()
        cpu0_harness = own_cpu()
        limits = httpx.Limits(max_connections=options.submitters + 2, max_keepalive_connections=options.submitters + 2)
        async with httpx.AsyncClient(base_url=line.base_url, limits=limits,
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            queue: asyncio.Queue[int] = asyncio.Queue()
            for number in range(n):
                queue.put_nowait(number)
            t0_wall, t0 = time.time(), time.monotonic()
            submitters = [asyncio.create_task(submitter(client, queue, watch, f"bench-{secrets.token_hex(4)}",
                                                        t0, options.submit_rate))
                          for _ in range(options.submitters)]
            submitting = asyncio.gather(*submitters)
            submitting.add_done_callback(lambda _: watch.submitting_done.set())
            deadline = t0 + options.timeout
            done = False
            while time.monotonic() < deadline:
                if submitting.done() and submitting.exception() is not None:
                    raise submitting.exception()  # type: ignore[misc]
                await metrics(client, watch)
                if restart is None and options.restart_at is not None and watch.finals_metric >= options.restart_at * n:
                    restart = await restart_service(children, line, watch)
                if watch.submitting_done.is_set() and await all_final(client):
                    done = True
                    break
                await asyncio.sleep(POLL_EVERY)
            t_end = time.monotonic()
            cpu1_service = cpu_seconds(line.service.pid)
            cpu1_reaped = reaped_children_cpu()
            cpu1_harness = own_cpu()
            if not submitting.done():
                submitting.cancel()
            await asyncio.gather(submitting, return_exceptions=True)
            jobs = await list_all(client)
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
        await ami.stop()

    # CPU of the service: the first instance from the start of the run to its exit (it was waited
    # for: RUSAGE_CHILDREN), and the instance running at the end from its start (its own start-up
    # included when it is a restart) to the end.
    if restart is None:
        service_cpu = cpu1_service - cpu0_service
    else:
        service_cpu = (cpu1_reaped - cpu0_reaped - cpu0_service) + cpu1_service
        restart["cpu_s"]["second_instance_ready"] = round(restart["cpu_s"]["second_instance_ready"], 2)
    return summarize(options, watch, jobs, ami, restart, {
        "done": done, "wall_s": t_end - t0, "t0_wall": t0_wall, "service_start_s": start_s,
        "service_cpu": service_cpu, "harness_cpu": cpu1_harness - cpu0_harness,
    })


async def restart_service(children: Children, line: Line, watch: Watch) -> dict[str, Any]:
    """SIGTERM the service, wait for it to exit (it drains), start it again on the same data
    directory and ports, wait for /healthz."""
    old = line.service
    finals_before = watch.finals_metric
    term_wall, term = time.time(), time.monotonic()
    old.process.send_signal(signal.SIGTERM)
    limit = term + float(line.env["IVR_DRAIN_SECONDS"]) + 30.0
    while old.process.poll() is None:  # poll() reaps it: its CPU goes to RUSAGE_CHILDREN
        if time.monotonic() > limit:
            old.process.kill()
            old.process.wait()
            break
        await asyncio.sleep(0.02)
    exited = time.monotonic()
    start_s = await start_service(children, line)
    ready_wall = time.time()
    return {
        "after_finals": int(finals_before),
        "sigterm_wall": term_wall,
        "ready_wall": ready_wall,
        "exit_code": old.process.returncode,
        "drain_s": round(exited - term, 3),
        "start_s": round(start_s, 3),
        "total_s": round(time.monotonic() - term, 3),
        "cpu_s": {"second_instance_ready": cpu_seconds(line.service.pid)},
    }


# -- figures ---------------------------------------------------------------------------------


def attempt_spans(job: dict[str, Any]) -> list[tuple[float, float]]:
    """(dialing, end) of each attempt, from the job's history: the store's clock at each write.
    An attempt ends at the next entry that is final or back to `queued` (a retry)."""
    spans, start = [], None
    for entry in job["history"]:
        if entry["state"] == "dialing":
            start = epoch(entry["at"])
        elif start is not None and (entry["state"] == "queued" or entry["state"] not in NOT_FINAL):
            spans.append((start, epoch(entry["at"])))
            start = None
    return spans


def peak_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                    key=lambda e: (e[0], e[1]))
    peak = current = 0
    for _, change in events:
        current += change
        peak = max(peak, current)
    return peak


def summarize(options: argparse.Namespace, watch: Watch, jobs: dict[str, dict[str, Any]], ami: SimulatedAmi,
              restart: dict[str, Any] | None, timing: dict[str, Any]) -> dict[str, Any]:
    n = options.jobs
    ours = {job_id: jobs.get(job_id) for job_id in watch.submitted.values()}
    states = Counter(job["state"] if job else "missing" for job in ours.values())
    final = {job_id: job for job_id, job in ours.items() if job and job["state"] not in NOT_FINAL}
    lost = (n - len(watch.submitted)) + sum(1 for job in ours.values() if job is None or job["state"] in NOT_FINAL)
    reasons = Counter(f"{job['state']}: {job['reason']}" for job in final.values() if job["state"] != "completed")

    created = {job_id: epoch(job["created"]) for job_id, job in ours.items() if job}
    to_dialing, dialing_at, call_s, intervals, started_lead = [], [], [], [], []
    final_at: dict[str, float] = {}
    for job_id, job in final.items():
        dialing = next((epoch(e["at"]) for e in job["history"] if e["state"] == "dialing"), None)
        final_at[job_id] = epoch(job["history"][-1]["at"])
        if dialing is not None:
            to_dialing.append(dialing - created[job_id])
            call_s.append(final_at[job_id] - dialing)
        dialing_at += [epoch(e["at"]) for e in job["history"] if e["state"] == "dialing"]
        spans = attempt_spans(job)
        intervals += spans
        # how much earlier the attempt's own `started` is than its `dialing` entry (see the README)
        started_lead += [start - epoch(a["started"]) for (start, _), a in zip(spans, job["attempts"], strict=False)]
    first_submit = min(created.values()) if created else 0.0
    last_final = max(final_at.values()) if final_at else 0.0
    span = last_final - first_submit

    # The simulated Asterisk's view: every Originate and every announce call it ran.
    placed = Counter(o.action_id for o in ami.originates)
    per_job = Counter(o.variables.get("IVR_JOB_ID", "") for o in ami.originates)
    heard = Counter(call.unique_id.rpartition("-")[0] for call in ami.calls)
    twice = {action_id: count for action_id, count in placed.items() if count > 1}
    called_again = {job_id: count for job_id, count in per_job.items() if count > 1}
    heard_again = {job_id: count for job_id, count in heard.items() if count > 1}
    never_placed = [job_id for job_id in ours if per_job[job_id] == 0]
    attempts_used = Counter(job["attempts_used"] for job in ours.values() if job)

    result: dict[str, Any] = {
        "mode": "restart" if restart else "steady",
        "jobs": n,
        "settings": {"max_active": options.max_active, "rate_per_s": options.rate, "ring_s": options.ring,
                     "retry_s": options.retry_seconds, "drain_s": options.drain, "submitters": options.submitters,
                     "submit_rate_per_s": options.submit_rate or None, "restart_at": options.restart_at,
                     "env": options.env},
        "finished": timing["done"],
        "wall_s": round(timing["wall_s"], 2),
        "service_start_s": round(timing["service_start_s"], 2),
        "submit": {
            "accepted": len(watch.submitted),
            "http_statuses": dict(watch.statuses),
            "retried_requests": watch.retries,
            "span_s": round(max(watch.submit_started.values()) - min(watch.submit_started.values()), 2)
            if watch.submit_started else None,
            "latency_ms": quantiles_ms(watch.submit_latency),
        },
        "final_states": dict(states.most_common()),
        "completed": states.get("completed", 0),
        "not_completed_reasons": dict(reasons.most_common(10)),
        "jobs_lost": lost,
        "jobs_per_s": round(n / span, 1) if span > 0 and not lost else None,
        "span_s": round(span, 2),
        "submit_to_dialing_ms": quantiles_ms(to_dialing),
        "dialing_to_final_ms": quantiles_ms(call_s),
        "attempts_per_job": {str(k): v for k, v in sorted(attempts_used.items())},
        "originates": {
            "total": len(ami.originates),
            "per_job_mean": round(len(ami.originates) / max(1, len(ours)), 3),
            "attempt_ids_originated_twice": len(twice),
            "jobs_called_more_than_once": len(called_again),
            "jobs_never_called": len(never_placed),
            "jobs_final_without_a_call": sum(1 for job_id in never_placed if job_id in final),
            "announce_calls_run": len(ami.calls),
            "jobs_announced_more_than_once": len(heard_again),
            "examples": {"twice": list(twice)[:5], "called_again": list(called_again)[:5]},
        },
        "attempt_started_lead_ms": quantiles_ms(started_lead),
        "in_progress_peak": {
            "attempts_from_history": peak_overlap(intervals),
            "metrics_gauge_sampled": int(watch.peak_gauge),
            "sim_channels_sampled": watch.peak_channels,
        },
        "cpu_s": {
            "service": round(timing["service_cpu"], 2),
            "service_per_job_ms": round(1000 * timing["service_cpu"] / n, 2),
            "service_cores": round(timing["service_cpu"] / timing["wall_s"], 2),
            "harness": round(timing["harness_cpu"], 2),
            "harness_per_job_ms": round(1000 * timing["harness_cpu"] / n, 2),
            "harness_cores": round(timing["harness_cpu"] / timing["wall_s"], 2),
        },
        "restart": None,
    }
    if restart:
        before = [t for t in dialing_at if t < restart["sigterm_wall"]]
        after = [t for t in dialing_at if t > restart["sigterm_wall"]]
        restart["no_dialing_s"] = round(min(after) - max(before), 3) if before and after else None
        restart["in_flight_at_sigterm"] = sum(1 for s, e in intervals if s <= restart["sigterm_wall"] < e)
        restart["jobs_lost"] = lost
        restart["duplicate_calls"] = len(twice)
        for key in ("sigterm_wall", "ready_wall"):
            restart[key] = datetime.fromtimestamp(restart[key]).astimezone().isoformat(timespec="milliseconds")
        result["restart"] = restart
    return result


def report(r: dict[str, Any]) -> str:
    s, o, c, p = r["settings"], r["originates"], r["cpu_s"], r["in_progress_peak"]
    d, f, sub = r["submit_to_dialing_ms"], r["dialing_to_final_ms"], r["submit"]
    pace = f"{s['submit_rate_per_s']:g}/s" if s["submit_rate_per_s"] else "as fast as they go"
    out = [
        f"== outbound, {r['mode']}: {r['jobs']} notice jobs, IVR_OUTBOUND_MAX_ACTIVE={s['max_active']}, "
        f"IVR_OUTBOUND_RATE={s['rate_per_s']:g}/s, ring {s['ring_s']:g} s, {s['submitters']} submitters ({pace}), "
        f"wall {r['wall_s']} s" + ("" if r["finished"] else "  ** NOT FINISHED: timed out **"),
        f"  submitted            {sub['accepted']} in {sub['span_s']} s; HTTP {sub['http_statuses']}, "
        f"{sub['retried_requests']} requests tried again; latency ms p50 {sub['latency_ms']['p50']} "
        f"p99 {sub['latency_ms']['p99']} max {sub['latency_ms']['max']}",
        f"  final states         {r['final_states']}",
    ]
    out += [f"    {count:>7}  {reason}" for reason, count in r["not_completed_reasons"].items()]
    out += [
        f"  jobs lost            {r['jobs_lost']}  (and {o['jobs_final_without_a_call']} final without ever being "
        f"called)",
        f"  jobs/s               {r['jobs_per_s']}  (first submit to last final: {r['span_s']} s)",
        f"  submit -> dialing ms p50 {d['p50']}  p90 {d['p90']}  p99 {d['p99']}  max {d['max']}",
        f"  dialing -> final ms  p50 {f['p50']}  p90 {f['p90']}  p99 {f['p99']}  max {f['max']}",
        f"  attempts per job     {r['attempts_per_job']}",
        f"  Originates           {o['total']} ({o['per_job_mean']} per job); attempt ids originated twice "
        f"{o['attempt_ids_originated_twice']}; jobs called more than once {o['jobs_called_more_than_once']}; "
        f"never called {o['jobs_never_called']}",
        f"  announce calls       {o['announce_calls_run']} run by the callees; jobs announced more than once "
        f"{o['jobs_announced_more_than_once']}",
        f"  in progress, peak    {p['attempts_from_history']} attempts (from the jobs' history), "
        f"{p['metrics_gauge_sampled']} (ivr_outbound_active_calls, sampled), "
        f"{p['sim_channels_sampled']} channels up in the simulated Asterisk (sampled)",
        f"  service CPU          {c['service']} s = {c['service_per_job_ms']} ms/job, {c['service_cores']} cores",
        f"  harness CPU          {c['harness']} s = {c['harness_per_job_ms']} ms/job, {c['harness_cores']} cores "
        f"(the simulated Asterisk, its callees, the submitters and the polling; shares the machine's "
        f"{os.cpu_count()} cores)",
    ]
    if r["restart"]:
        rs = r["restart"]
        out += [
            f"  restart              SIGTERM after {rs['after_finals']} jobs final, {rs['in_flight_at_sigterm']} "
            f"attempts in flight; exit code {rs['exit_code']} after {rs['drain_s']} s (drain), ready again "
            f"{rs['start_s']} s later; total {rs['total_s']} s; no call placed for {rs['no_dialing_s']} s; "
            f"new instance's start-up CPU {rs['cpu_s']['second_instance_ready']} s (in the service CPU)",
            f"  jobs lost {rs['jobs_lost']}, duplicate calls (an attempt originated twice) {rs['duplicate_calls']}, "
            f"jobs called more than once {o['jobs_called_more_than_once']}",
        ]
    return "\n".join(out)


# -- main ------------------------------------------------------------------------------------


async def amain(options: argparse.Namespace) -> dict[str, Any]:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    with temporary_children("ivr-outbound-", keep=options.keep) as children:
        try:
            return await run(options, children)
        except BaseException:
            for child in children.started:
                if child.process.poll() is not None or child is children.started[-1]:
                    print(f"--- {child.name} log (last lines):\n{child.tail()}", file=sys.stderr)
            raise


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", "-n", type=int, default=1000, help="notice jobs (default 1000)")
    p.add_argument("--max-active", type=int, default=50, help="IVR_OUTBOUND_MAX_ACTIVE (default 50)")
    p.add_argument("--rate", type=float, default=100.0, help="IVR_OUTBOUND_RATE, new calls/s (default 100, the most)")
    p.add_argument("--ring", type=float, default=0.2, help="seconds a callee rings before answering (default 0.2)")
    p.add_argument("--retry-seconds", type=float, default=2.0,
                   help="IVR_OUTBOUND_RETRY_SECONDS (default 2, so that a retried job does not hold the run "
                        "for the default 120 s)")
    p.add_argument("--drain", type=float, default=5.0, help="IVR_DRAIN_SECONDS (default 5)")
    p.add_argument("--submitters", type=int, default=4, help="concurrent HTTP submitters (default 4)")
    p.add_argument("--submit-rate", type=float, default=0.0,
                   help="jobs submitted per second, evenly (default 0: as fast as the submitters go)")
    p.add_argument("--restart-at", type=float, default=None, metavar="FRACTION",
                   help="SIGTERM the service once this fraction of the jobs is final, then start it again")
    p.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds (default 600)")
    p.add_argument("--env", action="append", default=[], metavar="IVR_X=v", help="more settings for the service")
    p.add_argument("--out", metavar="PATH.json",
                   help="where to write the figures (default benchmarks/results/outbound-<mode>.json, and the "
                        "printed report next to it as .txt)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, database)")
    options = p.parse_args(argv)
    if options.jobs < 1 or options.submitters < 1:
        p.error("--jobs and --submitters must be >= 1")
    if options.restart_at is not None and not 0 < options.restart_at < 1:
        p.error("--restart-at is a fraction between 0 and 1")
    if any("=" not in item for item in options.env):
        p.error("--env takes NAME=value")
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    configure_logging("console", "warning")  # the simulated Asterisk logs every Originate at info
    try:
        result = asyncio.run(amain(options))
    except KeyboardInterrupt:
        print("interrupted; the service stopped", file=sys.stderr)
        return 130
    except asyncio.CancelledError:
        print("terminated; the service stopped", file=sys.stderr)
        return 143
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    text = report(result)
    print(text)
    out = Path(options.out) if options.out else HERE / "results" / f"outbound-{result['mode']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".txt").write_text(text + "\n")
    print(f"  (figures in {out})")
    ok = result["finished"] and result["jobs_lost"] == 0 and result["originates"]["attempt_ids_originated_twice"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
