"""The identity probe: its fixed request, and the fingerprint read from an answer."""

from __future__ import annotations

import json
from typing import Any

from monitor.probe.identity import identity_body, read_fingerprint


def _answer(logprobs: Any = None, usage: Any = None, content: str = "Paris.") -> bytes:
    choice = {"index": 0, "message": {"role": "assistant", "content": content}, "logprobs": logprobs}
    return json.dumps({"choices": [choice], "usage": usage or {"prompt_tokens": 18}}).encode()


def test_the_request_is_fixed_greedy_short_and_asks_for_logprobs() -> None:
    body = json.loads(identity_body("m"))
    assert body == json.loads(identity_body("m"))
    assert body["temperature"] == 0 and body["max_tokens"] <= 4
    assert body["logprobs"] is True and body["top_logprobs"] == 5 and body["stream"] is False


def test_the_fingerprint_holds_tokens_count_and_first_token_logprobs() -> None:
    top = [{"token": "Paris", "logprob": -0.02}, {"token": "The", "logprob": -4.1}]
    content = [{"token": "Paris", "logprob": -0.02, "top_logprobs": top}, {"token": ".", "logprob": -0.1}]
    fp = read_fingerprint(_answer({"content": content}))
    assert not isinstance(fp, str)
    assert fp.prompt_tokens == 18 and fp.tokens == ("Paris", ".")
    assert dict(fp.top_logprobs) == {"Paris": -0.02, "The": -4.1}


def test_an_answer_without_logprobs_still_gives_count_and_text() -> None:
    fp = read_fingerprint(_answer(None))
    assert not isinstance(fp, str) and fp.tokens == ("Paris.",) and not fp.top_logprobs


def test_an_answer_without_usage_is_no_fingerprint() -> None:
    assert (
        read_fingerprint(_answer(usage={"completion_tokens": 2}))
        == "no usage.prompt_tokens in the identity answer"
    )
    assert read_fingerprint(b"<html>") == "identity answer is not JSON"


def test_a_host_answering_more_than_asked_is_kept_to_what_was_asked() -> None:
    top = [{"token": f"t{i}" + "x" * 500, "logprob": -float(i)} for i in range(50)]
    content = [{"token": "y" * 500, "logprob": -0.1, "top_logprobs": top}] * 40
    fp = read_fingerprint(_answer({"content": content}))
    assert not isinstance(fp, str)
    assert len(fp.tokens) == 4 and len(fp.top_logprobs) <= 10
    assert all(len(t) <= 64 for t in (*fp.tokens, *fp.top_logprobs))
