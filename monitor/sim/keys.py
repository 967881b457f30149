"""Which API keys the simulated network accepts, and what a request's credentials are."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


class KeyStatus(enum.Enum):
    MISSING = "missing"  # no credentials at all
    INVALID = "invalid"  # credentials, but not a key of this network
    VALID = "valid"
    BLOCKED = "blocked"


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request carries: `Authorization: Bearer K` (OpenAI SDK, the monitor) or
    `x-api-key: K` (Anthropic SDK). None when it carries neither."""
    auth = headers.get("Authorization")
    if auth is not None:
        scheme, _, token = auth.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""
    return headers.get("x-api-key")


@dataclass(frozen=True, slots=True)
class Keyring:
    """`valid` empty means any non-empty key is valid, so SDKs work with whatever key a user types."""

    valid: frozenset[str] = frozenset()
    blocked: frozenset[str] = frozenset()
    # What the gateway and the hosts answer a blocked key: 403 and LibertAI's error object.
    blocked_reason: str = "No credits."
    blocked_code: str = "no_credits"

    @classmethod
    def of(cls, valid: Iterable[str], blocked: Iterable[str]) -> Keyring:
        return cls(frozenset(valid), frozenset(blocked))

    def status(self, key: str | None) -> KeyStatus:
        if key is None:
            return KeyStatus.MISSING
        if not key:
            return KeyStatus.INVALID
        if key in self.blocked:
            return KeyStatus.BLOCKED
        if not self.valid or key in self.valid:
            return KeyStatus.VALID
        return KeyStatus.INVALID


def blocked_body(keyring: Keyring) -> dict[str, dict[str, str]]:
    """The 403 body for a blocked key, in LibertAI's shape."""
    return {
        "error": {
            "message": keyring.blocked_reason,
            "type": "invalid_request_error",
            "code": keyring.blocked_code,
        }
    }
