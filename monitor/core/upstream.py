"""What a client must send to a host for a model id: the id hosts know and the extra body fields.

Pure, no I/O. Hosts know only base ids. LibertAI's gateway lists a reasoning model twice, as its
base id and as `{base}-thinking`, and when it forwards a request it maps the alias to the base id
with `chat_template_kwargs: {"enable_thinking": true}`, and the base id of a reasoning model with
`{"enable_thinking": false}`; hosts add nothing. A client that calls a host directly (the point of
`/v1/best`) must do the same, so every answer that names a model says what to send.

A reasoning model is one whose `-thinking` alias is listed (`aliases`: alias -> base id, as
discovery derives it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["THINKING_OFF", "THINKING_ON", "THINKING_SUFFIX", "is_reasoning", "upstream_request"]

THINKING_SUFFIX: Final = "-thinking"  # the gateway lists a reasoning model X also as X-thinking

THINKING_ON: Final[Mapping[str, Any]] = {"chat_template_kwargs": {"enable_thinking": True}}
THINKING_OFF: Final[Mapping[str, Any]] = {"chat_template_kwargs": {"enable_thinking": False}}
_NONE: Final[Mapping[str, Any]] = {}


def is_reasoning(model: str, aliases: Mapping[str, str]) -> bool:
    """Whether `model` is the base id of a reasoning model (its `-thinking` alias is listed)."""
    # Asked on every probe: a lookup of the alias, not a walk of every alias.
    return aliases.get(model + THINKING_SUFFIX) == model


def upstream_request(model: str, aliases: Mapping[str, str]) -> tuple[str, Mapping[str, Any]]:
    """(the id to put in the request, the extra body fields) for a client asking for `model`.

    The mappings returned are shared: callers must not change them.
    """
    base = aliases.get(model)
    if base is not None:
        return base, THINKING_ON
    if is_reasoning(model, aliases):
        return model, THINKING_OFF
    return model, _NONE
