"""What every call shares: backends, stores, settings. Built once per process."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property

from ivr.flow.dialog import DialogConfig
from ivr.flow.records import CallRecord
from ivr.kimvoice import KimVoice
from ivr.settings import Settings
from ivr.store import Announcements, CallRecords, Lockouts
from ivr.tts import TtsCache

RecordSink = Callable[[CallRecord], Awaitable[None]]


@dataclass
class Services:
    kimvoice: KimVoice
    lockouts: Lockouts
    records: CallRecords
    announcements: Announcements
    tts: TtsCache
    settings: Settings
    sinks: list[RecordSink] = field(default_factory=list)

    @cached_property
    def dialog_config(self) -> DialogConfig:
        return DialogConfig(
            entry_timeout_ms=self.settings.entry_timeout_ms,
            please_wait_after=self.settings.please_wait_after,
            operator=self.settings.operator,
        )
