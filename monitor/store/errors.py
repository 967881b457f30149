"""The store's error types. Every one is a `StoreError` whose message is one readable line saying
what failed and why (never SQL parameters, row contents or a password)."""

from __future__ import annotations


class StoreError(Exception):
    """A database operation failed. The message names the operation and the reason (the driver's
    error, never SQL parameters or row contents)."""


class UnsupportedDatabaseError(StoreError):
    """The database URL names a database or driver the store cannot use (a configuration error)."""


class MissingDriverError(UnsupportedDatabaseError):
    """The URL needs a driver that is not installed; the message names the extra to install."""


class SchemaTooNewError(StoreError):
    """The database is at a schema revision this version does not know (a newer version wrote it)."""
