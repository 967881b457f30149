"""HTTP handlers of the simulated gateway: discovery list, key check, a failing-over proxy, and the
`/_sim/*` control and ground-truth endpoints tests use.

The proxy tries a model's hosts in the listed order (`routing = "ordered"`), or, as LibertAI's
gateway does, fewest requests in flight from this gateway first (`routing = "least_in_flight"`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from monitor.sim.behaviour import is_listed
from monitor.sim.formats import HTML_ERROR_PAGE, dumps
from monitor.sim.host import VIA_HEADER
from monitor.sim.keys import KeyStatus, blocked_body, presented_key
from monitor.sim.state import SimState

_THINKING = "-thinking"
_PROXIED = ("/v1/chat/completions", "/v1/completions", "/v1/messages", "/v1/embeddings")
_HOP_HEADERS = ("Authorization", "x-api-key", "anthropic-version", "Content-Type", "Accept")

GroundTruthFn = Callable[[], dict[str, Any]]
SetHostFn = Callable[[str, dict[str, Any]], dict[str, Any]]
SetGatewayFn = Callable[[dict[str, Any]], dict[str, Any]]
RenewCertFn = Callable[[str], bytes]  # a TLS host's new certificate (PEM); ValueError: not TLS


def _json(status: int, obj: Any) -> web.Response:
    return web.Response(status=status, body=dumps(obj), content_type="application/json")


def _detail(status: int, detail: str) -> web.Response:
    return _json(status, {"detail": detail})


def models_listing(state: SimState) -> dict[str, dict[str, list[str]]]:
    """The gateway's static list as it stands now (churn applied); not filtered by health."""
    t = state.elapsed()
    out: dict[str, dict[str, list[str]]] = {}
    for model in state.scenario.models:
        servers = [h.listed_url for h in state.by_model.get(model.id, []) if is_listed(h.behaviour, t)]
        if not servers:
            continue
        out[model.id] = {"servers": servers}
        if model.reasoning:
            out[model.id + _THINKING] = {"servers": list(servers)}
    return out


class GatewayApp:
    def __init__(
        self,
        state: SimState,
        session: Callable[[], aiohttp.ClientSession],
        ground_truth: GroundTruthFn,
        set_host: SetHostFn,
        set_gateway: SetGatewayFn,
        renew_cert: RenewCertFn | None = None,
    ) -> None:
        self._state = state
        self._session = session
        self._ground_truth = ground_truth
        self._set_host = set_host
        self._set_gateway = set_gateway
        self._renew_cert = renew_cert

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._faults])
        app.router.add_get("/libertai/models", self.models)
        app.router.add_get("/libertai/auth/check", self.auth_check)
        for path in _PROXIED:
            app.router.add_post(path, self.proxy)
        app.router.add_get("/_sim/hosts", self.sim_hosts)
        app.router.add_post("/_sim/hosts/{name}", self.sim_set_host)
        app.router.add_post("/_sim/hosts/{name}/certificate", self.sim_renew_cert)
        app.router.add_get("/_sim/gateway", self.sim_gateway)
        app.router.add_post("/_sim/gateway", self.sim_set_gateway)
        return app

    @web.middleware
    async def _faults(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        if request.path.startswith("/_sim/"):
            resp: web.StreamResponse = await handler(request)
            return resp
        self._state.gateway.traffic.count(
            request.path, self._state.keyring.status(presented_key(request.headers))
        )
        fault = self._state.gateway.spec.fault
        if fault == "500":
            return _detail(500, "Internal Server Error")
        if fault == "html":
            # A maintenance page from a proxy in front of the gateway: 200, but not the API.
            return web.Response(body=HTML_ERROR_PAGE, content_type="text/html")
        if fault == "invalid_json":
            return web.Response(
                body=b'{"hermes-3-8b-tee": {"servers": ["https://', content_type="application/json"
            )
        if fault == "hang":
            await asyncio.Event().wait()
        resp = await handler(request)
        return resp

    async def models(self, request: web.Request) -> web.Response:
        return _json(200, models_listing(self._state))

    async def auth_check(self, request: web.Request) -> web.Response:
        status = self._state.keyring.status(presented_key(request.headers))
        if status is KeyStatus.VALID:
            return web.Response(text="OK")
        if status is KeyStatus.BLOCKED:
            return _json(403, blocked_body(self._state.keyring))
        return _detail(401, "Unauthorized")

    async def proxy(self, request: web.Request) -> web.StreamResponse:
        status = self._state.keyring.status(presented_key(request.headers))
        if status is KeyStatus.MISSING or status is KeyStatus.INVALID:
            return _detail(401, "Unauthorized")
        if status is KeyStatus.BLOCKED:
            return _json(403, blocked_body(self._state.keyring))
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _detail(422, "Request body is not valid JSON")
        model = body.get("model") if isinstance(body, dict) else None
        if not isinstance(model, str):
            return _detail(422, "Field 'model' is required")
        base = model
        if model.endswith(_THINKING):
            spec = self._state.scenario.model(model[: -len(_THINKING)])
            if spec is not None and spec.reasoning:
                base = spec.id
        if self._state.scenario.model(base) is None:
            return _detail(404, f"Model {model} not found")
        servers = models_listing(self._state).get(base, {}).get("servers", [])
        if not servers:
            return _detail(404, f"Model {model} not found")
        listed = {h.listed_url: h for h in self._state.by_model.get(base, [])}
        forwarded = {**body, "model": base}
        spec = self._state.scenario.model(base)
        if spec is not None and spec.reasoning:
            # As LibertAI's gateway: the alias thinks, the base id of a reasoning model does not.
            kwargs = body.get("chat_template_kwargs")
            extra = dict(kwargs) if isinstance(kwargs, dict) else {}
            forwarded["chat_template_kwargs"] = {**extra, "enable_thinking": model != base}
        payload = dumps(forwarded)
        headers = {k: v for k in _HOP_HEADERS if (v := request.headers.get(k)) is not None}
        headers[VIA_HEADER] = "gateway"
        headers["Content-Type"] = "application/json"
        timeout = aiohttp.ClientTimeout(sock_connect=5, sock_read=self._state.gateway.spec.upstream_timeout)
        in_flight = self._state.gateway.in_flight
        hosts = [listed[server] for server in servers]
        if self._state.gateway.spec.routing == "least_in_flight":
            hosts.sort(key=lambda h: in_flight.get(h.name, 0))  # stable: ties keep the listed order
        for host in hosts:
            in_flight[host.name] = in_flight.get(host.name, 0) + 1
            try:
                answer = await self._try(request, host.direct_url + request.path, payload, headers, timeout)
            finally:
                in_flight[host.name] -= 1
            if answer is not None:
                return answer
        return _detail(503, f"All servers unavailable for model {model}")

    async def _try(
        self,
        request: web.Request,
        url: str,
        payload: bytes,
        headers: dict[str, str],
        limits: aiohttp.ClientTimeout,
    ) -> web.StreamResponse | None:
        """One host's answer relayed to the client, or None to try the next host."""
        try:
            upstream = await self._session().post(
                url, data=payload, headers=headers, allow_redirects=False, timeout=limits
            )
        except (aiohttp.ClientError, TimeoutError, OSError):
            return None  # connect error or no answer: next host
        if upstream.status >= 500 or 300 <= upstream.status < 400:
            upstream.release()
            return None
        if upstream.status >= 400:
            # The host's 4xx is the client's problem (bad key, unknown model): pass it back.
            try:
                data = await upstream.read()
            except (aiohttp.ClientError, TimeoutError):
                return None
            finally:
                upstream.release()
            return web.Response(status=upstream.status, body=data, content_type="application/json")
        return await self._relay(request, upstream)

    async def _relay(self, request: web.Request, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
        resp = web.StreamResponse(
            status=upstream.status,
            headers={"Content-Type": upstream.headers.get("Content-Type", "application/json")},
        )
        try:
            await resp.prepare(request)
            async for chunk in upstream.content.iter_any():
                await resp.write(chunk)
        except (aiohttp.ClientError, TimeoutError):
            # Failure mid-stream: the real gateway just ends the stream; there is no failing over now.
            pass
        finally:
            upstream.release()
        await resp.write_eof()
        return resp

    # -- /_sim: ground truth and run-time control ----------------------------------------------

    async def sim_hosts(self, request: web.Request) -> web.Response:
        return _json(200, self._ground_truth())

    async def sim_gateway(self, request: web.Request) -> web.Response:
        return _json(200, self._set_gateway({}))

    async def sim_set_host(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self._state.hosts:
            return _detail(404, f"No simulated host {name!r}")
        changes = await self._changes(request)
        if isinstance(changes, web.Response):
            return changes
        try:
            return _json(200, self._set_host(name, changes))
        except ValueError as exc:
            return _detail(422, str(exc))

    async def sim_renew_cert(self, request: web.Request) -> web.Response:
        """A new certificate for a TLS host, as a host recreated elsewhere shows: its SHA-256."""
        name = request.match_info["name"]
        if name not in self._state.hosts or self._renew_cert is None:
            return _detail(404, f"No simulated host {name!r}")
        try:
            pem = self._renew_cert(name)
        except ValueError as exc:
            return _detail(422, str(exc))
        der = ssl.PEM_cert_to_DER_cert(pem.decode())
        return _json(200, {"name": name, "sha256": hashlib.sha256(der).hexdigest()})

    async def sim_set_gateway(self, request: web.Request) -> web.Response:
        changes = await self._changes(request)
        if isinstance(changes, web.Response):
            return changes
        try:
            return _json(200, self._set_gateway(changes))
        except ValueError as exc:
            return _detail(422, str(exc))

    @staticmethod
    async def _changes(request: web.Request) -> dict[str, Any] | web.Response:
        try:
            changes = json.loads(await request.read())
        except ValueError:
            return _detail(422, "Body must be a JSON object of changes")
        if not isinstance(changes, dict):
            return _detail(422, "Body must be a JSON object of changes")
        return changes
