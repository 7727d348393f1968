"""The embedded database: call records and lockout counters (SQLite by default)."""

from ivr.store._sqlite import CallRecords, Lockouts, SqliteStore

__all__ = ["CallRecords", "Lockouts", "SqliteStore"]
