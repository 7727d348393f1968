"""The embedded database: call records, lockout counts, announcements (SQLite).

It implements the interfaces the flow owns: `ivr.flow.records.CallRecords` and
`Announcements`, `ivr.flow.guard.LockoutStore`.
"""

from ivr.store._sqlite import SqliteStore

__all__ = ["SqliteStore"]
