"""Starting and stopping the simulated network: one gateway port, one port per host, a CA for TLS
hosts, and run-time control of behaviours.

Every host port is served by the same aiohttp application; this module owns the listening sockets
itself (rather than one TCPSite per host) so that a host whose `down_mode` is "refuse" can stop
listening while it is down (clients get ECONNREFUSED, as from a dead machine) and listen again on
the same port when it comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp
import trustme
from aiohttp import web

from monitor.core.clock import SYSTEM_CLOCK, Clock
from monitor.sim.behaviour import host_rng, is_down
from monitor.sim.gateway import GatewayApp
from monitor.sim.host import HostApp
from monitor.sim.keys import Keyring
from monitor.sim.scenario import apply_changes, gateway_changes
from monitor.sim.specs import Behaviour, Scenario
from monitor.sim.state import GatewayState, SimHost, SimState
from monitor.sim.truth import gateway_truth, ground_truth, host_truth

log = logging.getLogger(__name__)

_BACKLOG = 512
_RECONCILE_EVERY = 0.02  # seconds; how late a "refuse" host may start or stop listening
_SHUTDOWN_TIMEOUT = 0.25  # hanging handlers are cancelled after this at stop


@dataclass(frozen=True, slots=True)
class SimHostInfo:
    name: str
    url: str  # exactly as the gateway lists it
    direct_url: str  # scheme://127.0.0.1:port, for calling the host directly
    port: int
    models: tuple[str, ...]
    tls: bool
    behaviour: Behaviour
    summary: str


class _Listener:
    """One host's listening socket, which can be closed and re-opened on the same port."""

    def __init__(self, factory: Any, bind_host: str, ssl_ctx: ssl.SSLContext | None) -> None:
        self._factory = factory
        self._bind_host = bind_host
        self._ssl = ssl_ctx
        self.port = 0
        self._sock: socket.socket | None = None
        self._server: asyncio.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        return self._sock is not None

    def open(self) -> asyncio.Task[None]:
        """Bind and listen now (synchronously, so connections queue at once); serve from a task."""
        family = socket.AF_INET6 if ":" in self._bind_host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._bind_host, self.port))
            sock.listen(_BACKLOG)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._sock = sock
        self._task = asyncio.get_running_loop().create_task(self._serve(sock))
        return self._task

    async def _serve(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._factory, sock=sock, ssl=self._ssl, backlog=_BACKLOG)

    def use(self, ssl_ctx: ssl.SSLContext) -> None:
        """Serve new connections with `ssl_ctx` (an open listener listens again, on the same port)."""
        self._ssl = ssl_ctx
        if self.listening:
            self.close()
            self.open()

    def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._server is not None:
            self._server.close()
        elif self._sock is not None:
            self._sock.close()
        self._sock = self._server = self._task = None


def _raise_nofile_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class SimNetwork:
    """A simulated LibertAI network (gateway and CRN hosts) on loopback ports.

    Use as `async with SimNetwork(scenario, seed=1) as net:`; `keys`, when given, are the only valid
    keys (otherwise the scenario's, and if it lists none, any non-empty key).
    """

    def __init__(
        self,
        scenario: Scenario,
        seed: int = 0,
        port: int = 0,
        host: str = "127.0.0.1",
        keys: Sequence[str] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.scenario = scenario
        self.seed = seed
        self._port = port
        self._bind_host = host
        # A wildcard bind still needs an address clients can use in URLs.
        self._public_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        valid = tuple(keys) if keys else scenario.keys
        self._state = SimState(
            scenario=scenario,
            seed=seed,
            keyring=Keyring.of(valid, scenario.blocked_keys),
            gateway=GatewayState(spec=scenario.gateway),
            clock=clock,
        )
        for spec in scenario.hosts:
            models = {m: model for m in spec.models if (model := scenario.model(m)) is not None}
            self._state.add_host(SimHost(spec, spec.behaviour, host_rng(seed, spec.name), models))
        self._ca = trustme.CA()
        self._listeners: dict[str, _Listener] = {}
        self._watched: set[str] = set()
        self._host_runner: web.AppRunner | None = None
        self._gateway_runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._reconciler: asyncio.Task[None] | None = None
        self._gateway_url = ""
        self._leaf_pem = b""

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> SimNetwork:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        _raise_nofile_limit()
        loop = asyncio.get_running_loop()
        self._state.started_at = self._state.clock.monotonic()
        try:
            await self._start_hosts()
            await self._start_gateway()
        except BaseException:
            await self.stop()
            raise
        self._reconciler = loop.create_task(self._reconcile_forever())

    async def _start_hosts(self) -> None:
        cert = self._ca.issue_cert("127.0.0.1", "localhost")
        self._leaf_pem = cert.cert_chain_pems[0].bytes()
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(server_ctx)
        runner = web.AppRunner(
            HostApp(self._state).application(),
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=_SHUTDOWN_TIMEOUT,
        )
        self._host_runner = runner
        await runner.setup()
        assert runner.server is not None
        tasks = []
        for host in self._state.hosts.values():
            listener = _Listener(runner.server, self._bind_host, server_ctx if host.spec.tls else None)
            self._listeners[host.name] = listener
            tasks.append(listener.open())
            scheme = "https" if host.spec.tls else "http"
            host.port = listener.port
            host.direct_url = f"{scheme}://{self._public_host}:{listener.port}"
            host.listed_url = host.spec.listed_as.format(
                scheme=scheme, host=self._public_host, port=listener.port
            )
            self._state.by_port[listener.port] = host
        await asyncio.gather(*tasks)
        for host in self._state.hosts.values():
            self._reconcile(host)

    async def _start_gateway(self) -> None:
        client_ctx = ssl.create_default_context()
        self._ca.configure_trust(client_ctx)
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, ssl=client_ctx))
        app = GatewayApp(
            self._state,
            session=self._client_session,
            ground_truth=self.ground_truth,
            set_host=lambda name, changes: self.set_host(name, **changes),
            set_gateway=lambda changes: self.set_gateway(**changes),
            renew_cert=self.renew_cert,
        ).application()
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=_SHUTDOWN_TIMEOUT
        )
        self._gateway_runner = runner
        await runner.setup()
        site = web.TCPSite(runner, self._bind_host, self._port, backlog=_BACKLOG)
        await site.start()
        port = runner.addresses[0][1]
        self._gateway_url = f"http://{self._public_host}:{port}"
        self._state.gateway.url = self._gateway_url

    async def stop(self) -> None:
        if self._reconciler is not None:
            self._reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconciler
            self._reconciler = None
        for listener in self._listeners.values():
            listener.close()
        for runner in (self._gateway_runner, self._host_runner):
            if runner is not None:
                await runner.cleanup()
        self._gateway_runner = self._host_runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client_session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "the network is not running"
        return self._session

    # -- "refuse" hosts: listening follows the host's up/down state ----------------------------------

    def _reconcile(self, host: SimHost) -> None:
        b = host.behaviour
        listener = self._listeners.get(host.name)
        if listener is None:
            return
        refuse = b.down_mode == "refuse" and is_down(b, self._state.elapsed())
        if refuse and listener.listening:
            listener.close()
        elif not refuse and not listener.listening:
            try:
                listener.open()
            except OSError as exc:  # someone took the port meanwhile; try again next tick
                log.warning("simulated host %s cannot listen again on %d: %s", host.name, listener.port, exc)
        # Only hosts that may have to change listening are watched: 5,000 idle hosts cost nothing.
        if b.down_mode == "refuse" or not listener.listening:
            self._watched.add(host.name)
        else:
            self._watched.discard(host.name)

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(_RECONCILE_EVERY)
            for name in list(self._watched):
                self._reconcile(self._state.hosts[name])

    # -- what tests read and change ----------------------------------------------------------------

    @property
    def gateway_url(self) -> str:
        return self._gateway_url

    @property
    def hosts(self) -> list[SimHostInfo]:
        return [
            SimHostInfo(
                name=h.name,
                url=h.listed_url,
                direct_url=h.direct_url,
                port=h.port,
                models=h.spec.models,
                tls=h.spec.tls,
                behaviour=h.behaviour,
                summary=h.behaviour.summary(),
            )
            for h in self._state.hosts.values()
        ]

    def host_url(self, name: str) -> str:
        """The URL to call a host directly (`scheme://127.0.0.1:port`), whatever the gateway lists."""
        return self._host(name).direct_url

    @property
    def keys_summary(self) -> str:
        """Which keys are accepted, without showing any of them."""
        n, blocked = len(self._state.keyring.valid), len(self._state.keyring.blocked)
        accepted = "any non-empty key" if n == 0 else f"{n} configured key{'s' if n > 1 else ''}"
        return accepted + (f" ({blocked} blocked)" if blocked else "")

    @property
    def ca_pem(self) -> bytes:
        pem: bytes = self._ca.cert_pem.bytes()
        return pem

    @property
    def tls_cert_pem(self) -> bytes:
        """PEM of the certificate every TLS host presents until `renew_cert` gives it another (for
        pinning rather than trusting the CA)."""
        return self._leaf_pem

    def renew_cert(self, name: str) -> bytes:
        """Give TLS host `name` a new certificate from the same CA, as a host recreated on another
        machine would show; its open connections are dropped. Returns the new certificate's PEM."""
        host = self._host(name)
        listener = self._listeners.get(name)
        if not host.spec.tls or listener is None:
            raise ValueError(f"simulated host {name!r} does not serve TLS")
        cert = self._ca.issue_cert("127.0.0.1", "localhost")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        listener.use(ctx)
        server = None if self._host_runner is None else self._host_runner.server
        for handler in [] if server is None else server.connections:
            transport = handler.transport
            sockname = None if transport is None else transport.get_extra_info("sockname")
            if sockname and sockname[1] == listener.port:
                handler.force_close()
        pem: bytes = cert.cert_chain_pems[0].bytes()
        return pem

    def ground_truth(self) -> dict[str, Any]:
        return ground_truth(self._state)

    def set_host(self, name: str, **changes: Any) -> dict[str, Any]:
        """Change a host's behaviour now; values as in TOML. Returns the host's ground-truth entry."""
        host = self._host(name)
        new = apply_changes(host.behaviour, changes, where=f"host {name!r}")
        if new.fault == "redirect" and new.redirect_to not in self._state.hosts:
            raise ValueError(f"host {name!r}: redirect_to must name another host, got {new.redirect_to!r}")
        host.behaviour = new
        for capacity in host.capacity.values():
            capacity.wake(new.slots)  # more slots (or none) serve the queue now
        self._reconcile(host)
        return host_truth(self._state, host, self._state.elapsed())

    def set_gateway(self, **changes: Any) -> dict[str, Any]:
        """Change the gateway's fault ("ok", "500", "html", "invalid_json", "hang"), upstream_timeout
        or routing ("ordered", "least_in_flight")."""
        self._state.gateway.spec = gateway_changes(self._state.gateway.spec, changes)
        return gateway_truth(self._state)

    def _host(self, name: str) -> SimHost:
        host = self._state.hosts.get(name)
        if host is None:
            raise ValueError(f"no simulated host {name!r}")
        return host
