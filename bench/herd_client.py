"""One client process of the herd benchmark (bench/herd.py starts several): an application holding
many conversations at once, each a series of streamed chat completions through the openai SDK, one
turn after the other with a pause to "read" between them. Each turn sends the previous turn's
messages, the assistant's reply and a new user message, so that a host's prefix cache can answer it.

How a request finds its host depends on the router:

- `spread`, `single`: `AsyncFailoverTransport` following the monitor (`spread=True` / `False`);
- `gateway`: the simulated gateway (its own routing, set by the parent);
- `round_robin`: the given hosts in turn (each process starting at another one).

Every request is written as one JSON line to `--out` when the process ends.

    python -m bench.herd_client --router spread --monitor URL --gateway URL --hosts URL,URL ...
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import time
from pathlib import Path
from typing import Any

import httpx2
import openai

from bench.common import API_KEY
from monitor.client import HOST_HEADER, AsyncFailoverTransport
from monitor.sim.truth import normalized_url

ROUTERS = ("spread", "single", "gateway", "round_robin")
SYSTEM = "You are a helpful assistant. Answer briefly."


class Router:
    """The openai clients of one process and how a request picks one of them."""

    def __init__(self, kind: str, monitor: str, gateway: str, hosts: list[str], offset: int) -> None:
        self.kind = kind
        self.clients: list[tuple[str | None, openai.AsyncOpenAI]] = []
        self._turn = itertools.count(offset)
        if kind in ("spread", "single"):
            t = AsyncFailoverTransport(
                monitor, gateway_url=gateway, allowed_hosts="http://127.0.0.1:*", spread=kind == "spread"
            )
            self.clients.append((None, self._client(gateway, httpx2.AsyncClient(transport=t))))
        elif kind == "gateway":
            self.clients.append((None, self._client(gateway, httpx2.AsyncClient())))
        else:
            for host in hosts:
                self.clients.append((normalized_url(host), self._client(host, httpx2.AsyncClient())))

    @staticmethod
    def _client(base: str, http: httpx2.AsyncClient) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=base.rstrip("/") + "/v1", api_key=API_KEY, max_retries=0, timeout=120, http_client=http
        )

    def pick(self) -> tuple[str | None, openai.AsyncOpenAI]:
        if len(self.clients) == 1:
            return self.clients[0]
        return self.clients[next(self._turn) % len(self.clients)]

    async def aclose(self) -> None:
        for _, c in self.clients:
            await c.close()


async def turn(router: Router, model: str, messages: list[dict[str, str]], rec: dict[str, Any]) -> str:
    """One streamed completion; fills `rec` (host, TTFT from sending to the first content) and
    returns the reply's text."""
    host, client = router.pick()
    reply: list[str] = []
    t0 = time.perf_counter()
    rec["started"] = time.time()
    try:
        raw = await client.chat.completions.with_raw_response.create(
            model=model,
            messages=messages,  # type: ignore[arg-type]
            stream=True,
        )
        stream: Any = raw.parse()  # a stream: iterated, not awaited
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                if not reply:
                    rec["ttft_ms"] = round((time.perf_counter() - t0) * 1000, 2)
                reply.append(chunk.choices[0].delta.content)
        answered = raw.headers.get(HOST_HEADER)
        rec["host"] = normalized_url(answered) if answered else host
        rec["ok"] = bool(reply)
    except (openai.OpenAIError, httpx2.HTTPError) as exc:
        rec["error"] = type(exc).__name__
    rec["total_ms"] = round((time.perf_counter() - t0) * 1000, 2)
    return "".join(reply)


async def conversation_loop(
    router: Router, args: argparse.Namespace, slot: int, rng: random.Random, out: list[dict[str, Any]]
) -> None:
    """One place in the application: conversations one after the other until `until`."""
    for n in itertools.count():
        conv = f"{args.router}-p{args.process}-s{slot}-c{n}"
        messages = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Hello, this is conversation {conv}. Tell me a story."},
        ]
        for k in range(args.turns):
            if time.time() >= args.until:
                return
            rec: dict[str, Any] = {"conversation": conv, "turn": k, "ok": False}
            reply = await turn(router, args.model, messages, rec)
            out.append(rec)
            messages = [
                *messages,
                {"role": "assistant", "content": reply},
                {"role": "user", "content": f"Go on (turn {k + 2} of {conv})."},
            ]
            await asyncio.sleep(rng.uniform(args.think_min, args.think_max))


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    router = Router(args.router, args.monitor, args.gateway, args.hosts.split(","), args.process)
    rng = random.Random(args.process)
    out: list[dict[str, Any]] = []
    await asyncio.sleep(max(0.0, args.start_at - time.time()))
    # Conversations start spread over one think time, as users arriving, not all in one instant.
    tasks = []
    for slot in range(args.conversations):
        tasks.append(
            asyncio.create_task(
                _later(slot * args.think_max / args.conversations, router, args, slot, rng, out)
            )
        )
    await asyncio.gather(*tasks)
    await router.aclose()
    return out


async def _later(
    delay: float,
    router: Router,
    args: argparse.Namespace,
    slot: int,
    rng: random.Random,
    out: list[dict[str, Any]],
) -> None:
    await asyncio.sleep(delay)
    await conversation_loop(router, args, slot, rng, out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--router", choices=ROUTERS, required=True)
    p.add_argument("--monitor", required=True)
    p.add_argument("--gateway", required=True)
    p.add_argument("--hosts", default="", help="comma-separated host URLs (round_robin)")
    p.add_argument("--model", required=True)
    p.add_argument("--process", type=int, default=0)
    p.add_argument("--conversations", type=int, required=True, help="conversations held at once")
    p.add_argument("--turns", type=int, required=True)
    p.add_argument("--think-min", type=float, required=True)
    p.add_argument("--think-max", type=float, required=True)
    p.add_argument("--start-at", type=float, required=True, help="epoch seconds")
    p.add_argument("--until", type=float, required=True, help="epoch seconds: no turn starts after")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    records = asyncio.run(run(args))
    args.out.write_text("".join(json.dumps(r) + "\n" for r in records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
