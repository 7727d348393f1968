"""The embedded database: call records, lockout counts, outbound jobs (SQLite).

It implements the interfaces the flow owns: `ivr.flow.records.CallRecords` and
`Announcements`, `ivr.flow.guard.LockoutStore`; and the outbound side's `ivr.outbound.JobStore`.
"""

from ivr.store._sqlite import SqliteStore

__all__ = ["SqliteStore"]
