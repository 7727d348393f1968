"""The service: shared services for every call, the FastAGI listener, HTTP, and a clean stop.

`ivr serve` runs `serve()`; `ivr demo` and the tests use `open_services()` and `Service` to
run the same thing in their own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import secrets
import signal
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from ivr.backends.codelocks import CodelocksClient, DirectoryNetCodes, NetCodes, load_locks
from ivr.backends.codelocks.sandbox import SAMPLE_LOCKS_FILE, CodelocksSandboxServer
from ivr.backends.codelocks.sandbox import SANDBOX_API_KEY as CODELOCKS_SANDBOX_KEY
from ivr.backends.kimoby import KimobyClient, KimobyTexts, WebhookReceiver
from ivr.backends.kimoby.sandbox import SANDBOX_API_KEY as KIMOBY_SANDBOX_KEY
from ivr.backends.kimoby.sandbox import SANDBOX_API_SECRET as KIMOBY_SANDBOX_SECRET
from ivr.backends.kimoby.sandbox import KimobySandboxServer
from ivr.backends.kimvoice import KimVoiceClient, check_sandbox_use, open_kimvoice
from ivr.catalog import PromptCatalog, default_prompts_dir
from ivr.embedded_http import EmbeddedHttpServer
from ivr.errors import SettingsError, StoreError
from ivr.flow.call import Call
from ivr.flow.guard import SignInGuard
from ivr.flow.runner import ROUTES, run_call
from ivr.flow.services import Services, guard_limits
from ivr.install_key import install_key
from ivr.logging import get_logger
from ivr.netallow import is_loopback
from ivr.outbound import CallingHours, JobStore, Outbound, Platform, Runner
from ivr.outbound.platforms.asterisk import AsteriskPlatform
from ivr.outbound.platforms.ictcore import IctCorePlatform
from ivr.outbound.platforms.kazoo import KazooClient, KazooPlatform, caller_id_parts
from ivr.settings import SANDBOX_URL, Settings
from ivr.sim import SimulatedAmi, SoundLibrary
from ivr.store import SqliteStore
from ivr.transports.agi import FastAgiServer
from ivr.transports.ari import AriApp
from ivr.transports.pivot import PivotApp
from ivr.tts import TtsCache
from ivr.web import Metrics, create_app, kimoby_routes

log = get_logger("ivr.service")

HOUSEKEEPING_SECONDS = 3600
SIMULATED = "sim"
"""`IVR_AMI_HOST=sim`: the simulated Asterisk asked for by name, also beyond loopback."""
SIM_CALLEES = "sim-callees"
"""Under IVR_DATA_DIR: what the simulated Asterisk's callees heard, one file per job (codes masked)."""


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    """KimVoice (or the embedded sandbox), the store and the TTS cache, closed on exit."""
    async with AsyncExitStack() as stack:
        kimvoice = await stack.enter_async_context(open_kimvoice(settings))
        store = await SqliteStore.open(settings.data_dir / "calls.db")
        stack.push_async_callback(store.close)
        guard = SignInGuard(store, install_key(settings.data_dir), guard_limits(settings))
        await guard.open()
        services = Services(kimvoice, store, guard, TtsCache.from_settings(settings), settings, sinks=[store.save])
        if settings.kimoby_url is not None:
            services.texts = await _kimoby(settings, store, stack)
        if settings.codelocks_url is not None:
            services.netcodes = await _codelocks(settings, store, stack)
        yield services


async def _kimoby(settings: Settings, store: SqliteStore, stack: AsyncExitStack) -> KimobyTexts:
    """Kimoby, or with `IVR_KIMOBY_URL=sandbox` its sandbox on loopback, closed with `stack`."""
    url, key, secret = str(settings.kimoby_url), settings.kimoby_api_key, settings.kimoby_api_secret.get_secret_value()
    if settings.kimoby_url == SANDBOX_URL:
        sandbox = KimobySandboxServer()
        await sandbox.start()
        stack.push_async_callback(sandbox.stop)
        url, key, secret = sandbox.api_url, KIMOBY_SANDBOX_KEY, KIMOBY_SANDBOX_SECRET
        log.warning("kimoby.sandbox_in_use", effect="texts go to the sandbox's test customers, never a phone")
    client = KimobyClient(url, key, secret)
    stack.push_async_callback(client.aclose)
    return KimobyTexts(client, reference=settings.kimoby_customer_reference, unsubscribed=store.is_unsubscribed)


async def _codelocks(settings: Settings, store: SqliteStore, stack: AsyncExitStack) -> DirectoryNetCodes:
    """Codelocks and the lock directory (a bad file stops the start, one line), or with
    `IVR_CODELOCKS_URL=sandbox` its sandbox on loopback and, unless a file is named, its sample locks."""
    url, key = str(settings.codelocks_url), settings.codelocks_api_key.get_secret_value()
    locks = settings.codelocks_locks_file
    if settings.codelocks_url == SANDBOX_URL:
        sandbox = CodelocksSandboxServer()
        await sandbox.start()
        stack.push_async_callback(sandbox.stop)
        url, key, locks = sandbox.url, CODELOCKS_SANDBOX_KEY, locks or SAMPLE_LOCKS_FILE
        log.warning("codelocks.sandbox_in_use", effect="callers get the sandbox's NetCodes, which open no lock")
    assert locks is not None, "settings ask for the file with a Codelocks URL"
    directory = load_locks(locks)
    client = CodelocksClient(url, key)
    stack.push_async_callback(client.aclose)
    return DirectoryNetCodes(directory, NetCodes(client, store, monthly_budget=settings.codelocks_monthly_budget))


class Service:
    """FastAGI and HTTP listeners over one set of services."""

    def __init__(self, settings: Settings, services: Services, jobs: JobStore | None = None) -> None:
        """`jobs`: where outbound jobs are kept; by default the services' store, which then must be
        the embedded `SqliteStore` (it keeps both)."""
        self.settings = settings
        self.services = services
        if jobs is None:
            if not isinstance(services.store, SqliteStore):
                raise TypeError("give the outbound job store: the services' store does not keep jobs")
            jobs = services.store
        self.jobs = jobs
        self.outbound = Outbound(jobs, settings)
        self.runner: Runner | None = None
        self.simulated_ami: SimulatedAmi | None = None
        self.metrics = Metrics(routes=tuple(ROUTES))
        services.sinks.append(self.metrics.observe)
        self.outbound.on_final.append(self.metrics.job_final)  # queued jobs cancelled through the API
        breaker = None
        if isinstance(services.kimvoice, KimVoiceClient):
            services.kimvoice.on_retry.append(self.metrics.kimvoice_retried)
            services.kimvoice.breaker.on_change.append(self.metrics.kimvoice_breaker_now)
            breaker = services.kimvoice.breaker
        services.guard.on_engaged = self.metrics.guard_engaged_by
        self.agi = FastAgiServer(self._handle, settings.agi_host, settings.agi_port,
                                 env_timeout=settings.agi_env_timeout, allow=settings.agi_allow)
        self.agi.on_dropped.append(self.metrics.agi_dropped)
        self.ari = AriApp(
            self._handle, str(settings.ari_url), settings.ari_user, settings.ari_password.get_secret_value(),
            settings.ari_app, timeout=settings.ari_timeout, announce_input=settings.ari_announce_input,
        ) if settings.ari_url else None
        self._housekeeping: asyncio.Task[None] | None = None
        # Kazoo's pivot requests: refused unless IVR_KAZOO_PIVOT_SECRET or IVR_KAZOO_PIVOT_ALLOW is set.
        self.pivot = PivotApp(
            self._handle, public_url=self._public_url, secret=settings.kazoo_pivot_secret.get_secret_value(),
            allow=settings.kazoo_pivot_allow or None, tts=services.tts, max_calls=settings.max_calls,
            transfer_callflow=settings.kazoo_agents_callflow or None, hangup_margin=settings.kazoo_pivot_margin,
            play_allowance=settings.kazoo_pivot_play_seconds,
        )
        # Kimoby's webhooks: only with the URL registered with Kimoby and its key to check them.
        self.kimoby_webhooks = WebhookReceiver(
            settings.kimoby_webhook_key.get_secret_value(), settings.kimoby_webhook_url,
            jobs.on_text_event, seen=jobs,
        ) if settings.kimoby_webhook_url is not None and isinstance(jobs, SqliteStore) else None
        webhooks = kimoby_routes(self.kimoby_webhooks) if self.kimoby_webhooks is not None else []
        self.http = EmbeddedHttpServer(
            create_app(services.kimvoice, self.metrics, lambda: self.active,
                       store_healthy=services.store.healthy, media_allow=settings.media_allow,
                       health_timeout=settings.kimvoice_health_timeout, sandbox=settings.embedded_sandbox,
                       tts_dir=services.tts.directory, sounds_dir=settings.sounds_dir,
                       outbound=self.outbound if settings.api == "on" else None, api_tokens=settings.api_tokens,
                       outbound_status=self._outbound_status, extra_routes=[*self.pivot.routes, *webhooks],
                       breaker=(lambda: breaker.state.value) if breaker is not None else None),
            settings.http_host, settings.http_port,
            max_connections=settings.http_max_connections, header_timeout=settings.http_header_timeout,
            allow=settings.http_allow,
        )

    @property
    def active(self) -> int:
        """Calls in progress, over FastAGI, ARI and Kazoo's pivot."""
        return self.agi.active + (self.ari.active if self.ari is not None else 0) + self.pivot.active

    def _public_url(self) -> str:
        """The base of the URLs Kazoo is given (sounds, pivots back): known once HTTP listens."""
        return str(self.settings.public_url or self.http.url).rstrip("/")

    async def start(self) -> None:
        await self.agi.start()
        if self.ari is not None:
            await self.ari.start()
        self.runner = await self._start_runner()
        await self.http.start()
        self._housekeeping = asyncio.get_running_loop().create_task(self._keep_house())
        log.info("service.started", agi=f"{self.settings.agi_host}:{self.agi.port}", http=self.http.url)

    async def stop(self) -> None:
        """Drain: no new calls; calls in progress finish within `drain_seconds`. Outbound calls in
        progress are left to the next start, which accounts for each."""
        log.info("service.draining", active=self.active, grace_s=self.settings.drain_seconds)
        started = time.monotonic()
        if self.runner is not None:
            # Before FastAGI closes: a callee who answers now still hears the announcement,
            # instead of silence and a second call after the restart.
            await self.runner.settle(self.settings.drain_seconds)
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        drain = max(0.0, self.settings.drain_seconds - (time.monotonic() - started))
        await asyncio.gather(self.agi.drain(drain), self.pivot.drain(drain),
                             *([self.ari.drain(drain)] if self.ari is not None else []))
        if self.runner is not None:
            await self.runner.stop()
        if self.simulated_ami is not None:
            await self.simulated_ami.stop()
        await self.http.stop()
        if self.kimoby_webhooks is not None:
            await self.kimoby_webhooks.aclose()  # the events accepted are handled before the store closes
        log.info("service.stopped")

    def _outbound_status(self) -> dict[str, object]:
        return self.runner.status() if self.runner is not None else {"runner": "stopped", "platforms": {}}

    async def _start_runner(self) -> Runner:
        settings = self.settings
        platforms: dict[str, Platform] = {"asterisk": await self._asterisk()}
        if settings.ictcore_url is not None:
            platforms["ictcore"] = IctCorePlatform(
                str(settings.ictcore_url), settings.ictcore_username, settings.ictcore_password.get_secret_value())
        if settings.kazoo_url is not None:
            cid_name, cid_number = caller_id_parts(settings.outbound_caller_id)
            platforms["kazoo"] = KazooPlatform(
                KazooClient.from_settings(settings), pivot_number=settings.kazoo_notice_number,
                cid_number=cid_number, cid_name=cid_name, ring_seconds=settings.outbound_ring_seconds)
        runner = Runner(
            self.jobs, platforms, hours=CallingHours(settings.outbound_hours, settings.timezone),
            max_active=settings.outbound_max_active, rate=settings.outbound_rate,
            retry_seconds=settings.outbound_retry_seconds,
        )
        runner.on_final.append(self.metrics.job_final)
        runner.on_active.append(self.metrics.outbound_active_now)
        self.outbound.on_submit.append(runner.wake)
        self.services.sinks.append(runner.on_record)
        await runner.start()
        return runner

    async def _asterisk(self) -> AsteriskPlatform:
        """The Asterisk Manager of IVR_AMI_HOST, or with it unset the simulated Asterisk's AMI
        mode in this process, whose callees run the `announce` route over our own FastAGI."""
        settings = self.settings
        host, port = settings.ami_host, settings.ami_port
        username, secret = settings.ami_username, settings.ami_secret.get_secret_value()
        if host is None or host == SIMULATED:
            reason = "IVR_AMI_HOST is unset" if host is None else f"IVR_AMI_HOST={host}"
            username, secret = "keybox", secrets.token_urlsafe(16)
            self.simulated_ami = SimulatedAmi(
                username=username, secret=secret, agi_address=f"127.0.0.1:{self.agi.port}",
                sounds=SoundLibrary(PromptCatalog.load(default_prompts_dir()), self.services.tts),
                heard_dir=settings.data_dir / SIM_CALLEES,
            )
            await self.simulated_ami.start()
            host, port = "127.0.0.1", self.simulated_ami.port
            log.warning("outbound.simulated_asterisk", reason=reason,
                        effect="outbound calls go to the simulated Asterisk: nobody's phone rings")
        return AsteriskPlatform(
            host=host, port=port, username=username, secret=secret, dial_template=settings.outbound_dial,
            caller_id=settings.outbound_caller_id, ring_seconds=settings.outbound_ring_seconds,
        )

    async def _keep_house(self) -> None:
        """Drop call records older than `record_days` and spent lockout rows, at start and hourly,
        so the disk does not fill."""
        while True:
            now = time.time()
            try:
                dropped = await self.services.store.purge(
                    records_before=now - self.settings.record_days * 86400,
                    lockouts_before=now - self.settings.lockout_window,
                )
                await self.jobs.purge_jobs(now - self.settings.record_days * 86400, now - 86400)
            except StoreError as exc:
                log.error("service.purge_failed", error=str(exc))
            else:
                if dropped:
                    log.info("service.purged", records=dropped, older_than_days=self.settings.record_days)
            await asyncio.sleep(HOUSEKEEPING_SECONDS)

    async def _handle(self, call: Call) -> None:
        over = self.active > self.settings.max_calls
        self.metrics.active.inc()
        try:
            await run_call(call, self.services, refuse="over capacity" if over else None)
        finally:
            self.metrics.active.dec()


def check_outbound_use(settings: Settings) -> None:
    """For `ivr serve`: no open job API, and no outbound calls into a simulator, by accident.

    `SettingsError` when HTTP listens beyond loopback with the API on and no token; and when
    FastAGI or HTTP listen beyond loopback with IVR_AMI_HOST unset (jobs would "complete" against
    the simulated Asterisk while nobody's phone rings) — `IVR_AMI_HOST=sim` says it is meant.
    """
    if settings.api == "on" and not settings.api_tokens and not is_loopback(settings.http_host):
        raise SettingsError(
            f"IVR_API_TOKENS is empty while IVR_HTTP_HOST={settings.http_host} reaches beyond loopback: anyone "
            "could place calls through the outbound API; set IVR_API_TOKENS, or IVR_API=off"
        )
    exposed = [f"IVR_{name.upper()}={host}" for name, host in
               (("agi_host", settings.agi_host), ("http_host", settings.http_host)) if not is_loopback(host)]
    if settings.ami_host is None and exposed:
        raise SettingsError(
            f"IVR_AMI_HOST is unset, so outbound calls would go to the simulated Asterisk, yet "
            f"{' and '.join(exposed)} reach{'es' if len(exposed) == 1 else ''} beyond loopback: set IVR_AMI_HOST "
            "to the Asterisk Manager's host, or IVR_AMI_HOST=sim to simulate on purpose"
        )


def raise_open_files_limit() -> None:
    """Raise the open-files soft limit to the hard one: every call and HTTP client holds a
    descriptor, and a distribution's default soft limit (often 1,024) is soon reached.

    Never fails: when the limit cannot be raised, the service runs with what it has.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            log.warning("service.open_files_limit", limit=soft, wanted=hard, error=str(exc))
            return
    log.info("service.open_files_limit", limit=hard)


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then drain. Refuses the embedded sandbox by accident
    (`check_sandbox_use`: `SettingsError`)."""
    check_sandbox_use(settings)
    check_outbound_use(settings)
    raise_open_files_limit()
    async with open_services(settings) as services:
        service = Service(settings, services)
        await service.start()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        await stopping.wait()
        await service.stop()
