"""The key of one member: a host serving a model (its base id)."""

from __future__ import annotations

from typing import NamedTuple


class HostKey(NamedTuple):
    """(model, host): a tuple still, so it unpacks, compares and hashes as the pair it names."""

    model: str
    host: str
