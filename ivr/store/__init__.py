"""The embedded database: call records, lockout counters, announcements (SQLite by default)."""

from ivr.store._sqlite import Announcements, CallRecords, Lockouts, SqliteStore

__all__ = ["Announcements", "CallRecords", "Lockouts", "SqliteStore"]
