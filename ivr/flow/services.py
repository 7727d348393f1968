"""What every call shares: backends, stores, settings. Built once per process."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

from ivr.backends.kimvoice import KimVoice
from ivr.catalog import PromptCatalog, default_prompts_dir
from ivr.flow.dialog import DialogConfig
from ivr.flow.guard import GuardLimits, LockoutStore, SignInGuard
from ivr.flow.netcodes import LockNetCodes
from ivr.flow.records import Announcements, CallRecords
from ivr.flow.texts import CodeTexts
from ivr.records import CallRecord
from ivr.settings import Settings
from ivr.tts import TtsCache

RecordSink = Callable[[CallRecord], Awaitable[None]]


class Store(CallRecords, Announcements, LockoutStore, Protocol):
    """Everything the line keeps across calls (`ivr.store.SqliteStore`)."""

    async def healthy(self) -> bool:
        """Whether the store can keep what it must now (file in place, answering, writes going through)."""
        ...

    async def purge(self, *, records_before: float, lockouts_before: float) -> int:
        """Drop call records and lockout rows too old to matter; the number of records dropped."""
        ...


@dataclass
class Services:
    kimvoice: KimVoice
    store: Store
    guard: SignInGuard
    tts: TtsCache
    settings: Settings
    sinks: list[RecordSink] = field(default_factory=list)
    texts: CodeTexts | None = None
    """The code by text message (Kimoby), when configured."""
    netcodes: LockNetCodes | None = None
    """Lock NetCodes (Codelocks), when configured."""

    @property
    def records(self) -> CallRecords:
        return self.store

    @property
    def announcements(self) -> Announcements:
        return self.store

    @cached_property
    def catalog(self) -> PromptCatalog:
        """The prompts' texts: a text message says in words what the caller heard."""
        return PromptCatalog.load(default_prompts_dir())

    @cached_property
    def dialog_config(self) -> DialogConfig:
        return DialogConfig(
            entry_timeout_ms=self.settings.entry_timeout_ms,
            please_wait_after=self.settings.please_wait_after,
            operator=self.settings.operator,
        )


def guard_limits(settings: Settings) -> GuardLimits:
    return GuardLimits(
        key_failures=settings.lockout_key_failures,
        caller_failures=settings.lockout_caller_failures,
        withheld_failures=settings.lockout_withheld_failures,
        global_failures=settings.lockout_global_failures,
        window=settings.lockout_window,
        duration=settings.lockout_duration,
        pace=settings.lockout_pace,
        pace_wait=settings.lockout_pace_wait,
        pace_queue=settings.lockout_pace_queue,
    )
