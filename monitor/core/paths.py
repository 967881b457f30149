"""Which API paths a host accepts, learned for free: what one answer to an invalid body means.

A paths probe POSTs a body with only `model` (no `messages`, `prompt` or `input`) to each optional
path. A host that does not serve the path refuses it before anything else: 400 "Invalid inference
path" (LibertAI's hosts, from their `allowed_paths`), or 404/405. A host that serves it hands the
body to its inference server, which rejects it as invalid (400 of another kind, 422) before any
token is computed: nothing is generated, nothing billed. Any other answer (401/403 about the key,
429, 5xx, no answer) says nothing of the path, which stays unknown until the next probe.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

__all__ = ["INVALID_PATH", "OPTIONAL_PATHS", "PathAnswer", "Paths", "path_answer"]

# The paths a paths probe asks about (images and audio are never asked: health-only models).
OPTIONAL_PATHS: Final = ("/v1/chat/completions", "/v1/completions", "/v1/messages", "/v1/embeddings")
INVALID_PATH: Final = "Invalid inference path"


class PathAnswer(enum.Enum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    UNKNOWN = "unknown"


def path_answer(status: int, message: str | None) -> PathAnswer:
    """What a host's answer (status, the error body's message) to an invalid body says of a path."""
    if status in (404, 405) or (
        status == 400 and message is not None and INVALID_PATH.lower() in message.lower()
    ):
        return PathAnswer.REFUSED
    if status in (200, 400, 422):
        return PathAnswer.ACCEPTED
    return PathAnswer.UNKNOWN


@dataclass(frozen=True, slots=True)
class Paths:
    """The paths of one (model, host) known to be accepted and refused, each sorted."""

    accepted: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()

    @classmethod
    def of(cls, answers: Iterable[tuple[str, PathAnswer]]) -> Paths:
        pairs = list(answers)
        return cls(
            tuple(sorted(p for p, a in pairs if a is PathAnswer.ACCEPTED)),
            tuple(sorted(p for p, a in pairs if a is PathAnswer.REFUSED)),
        )

    @property
    def known(self) -> bool:
        return bool(self.accepted or self.refused)

    def updated(self, newer: Paths) -> Paths:
        """What is known after `newer`: its answers win; a path it left unknown keeps its old one."""
        decided = set(newer.accepted) | set(newer.refused)
        accepted = set(newer.accepted) | {p for p in self.accepted if p not in decided}
        refused = set(newer.refused) | {p for p in self.refused if p not in decided}
        return Paths(tuple(sorted(accepted)), tuple(sorted(refused)))
